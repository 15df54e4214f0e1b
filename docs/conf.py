"""Sphinx configuration for sklearn_certify."""

import os
import sys
import warnings
from pathlib import Path

# Document the checkout being built, not whichever copy of the package happens to be installed
# (sphinx-build does not put the working directory on sys.path). The gallery examples run in
# this process and therefore use the same copy.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs" / "_ext"))  # gallery_order, docs_checks

import sklearn_certify

os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings("ignore", message="Matplotlib is currently using agg")

project = "sklearn_certify"
author = "The sklearn_certify developers"
copyright = "2026, The sklearn_certify developers"
release = sklearn_certify.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "docs_checks",  # docs/_ext: -W fails on autosummary rows without a description
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "generated/*.examples", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip", "auto_examples/*.json",
                    "auto_examples/*.md5", "sg_execution_times.rst"]

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

html_theme = "pydata_sphinx_theme"
html_title = "sklearn_certify"
html_theme_options = {"navigation_with_keys": False}

# No network at build time: intersphinx reads small local inventories that list the objects
# these pages reference (docs/_inventories/make_inventories.py writes them), never a URL.
INVENTORY_DIR = Path(__file__).resolve().parent / "_inventories"
intersphinx_mapping = {
    "python": ("https://docs.python.org/3/", str(INVENTORY_DIR / "python.inv")),
    "numpy": ("https://numpy.org/doc/stable/", str(INVENTORY_DIR / "numpy.inv")),
    "sklearn": ("https://scikit-learn.org/stable/", str(INVENTORY_DIR / "sklearn.inv")),
    "joblib": ("https://joblib.readthedocs.io/en/stable/", str(INVENTORY_DIR / "joblib.inv")),
    "torch": ("https://docs.pytorch.org/docs/stable/", str(INVENTORY_DIR / "torch.inv")),
    "cvxpy": ("https://www.cvxpy.org/", str(INVENTORY_DIR / "cvxpy.inv")),
}
# Every Python reference to one of these packages must resolve (through the inventories above);
# with -W an unresolved one fails the build instead of rendering as unlinked code. References
# to this package and everything outside Python are left to Sphinx's defaults.
EXTERNAL_PACKAGES = ("collections", "numpy", "scipy", "sklearn", "joblib", "torch", "cvxpy",
                     "skorch", "matplotlib")
nitpicky = True
nitpick_ignore_regex = [
    (r"(?!py:).*", r".*"),
    (r"py:.*", rf"(?!(?:{'|'.join(EXTERNAL_PACKAGES)})\.).*"),
]

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    # The main DPA example first; the order is listed in docs/_ext/gallery_order.py.
    "within_subsection_order": "gallery_order.ExampleOrder",
    "doc_module": ("sklearn_certify",),
    "backreferences_dir": None,
}
