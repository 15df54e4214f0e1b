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

import docs_checks

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
    # Copies MathJax (bundled in the wheel) into _static/mathjax: formulas render offline.
    "sphinx-mathjax-offline",
    "matplotlib.sphinxext.plot_directive",  # the user guide's figures
    "myst_parser",  # benchmarks.rst includes benchmarks/RESULTS.md
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    # docs/_ext: -W fails on autosummary rows without a description, class pages that leave
    # out inherited methods, and pages that load scripts or stylesheets from the network.
    "docs_checks",
]
# The copy of MathJax that sphinx-mathjax-offline ships, never a CDN (the docs are read offline).
mathjax_path = "mathjax/tex-chtml.js"
# Only reStructuredText pages; Markdown (RESULTS.md) comes in through ``.. include::``.
source_suffix = {".rst": "restructuredtext"}
# RESULTS.md goes from "##" sections to "####" tables (no "###"), which is fine to read.
suppress_warnings = ["myst.header"]

templates_path = ["_templates"]
exclude_patterns = ["_build", "generated/*.examples", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip", "auto_examples/*.json",
                    "auto_examples/*.md5", "sg_execution_times.rst",
                    "auto_examples/sg_execution_times.rst"]

autosummary_generate = True
# A class's page documents what it inherits from this package (``fit``, ``predict``,
# ``certify`` on every estimator) but not what it inherits from sklearn, torch or Python,
# whose documentation covers those: autodoc leaves out members of the classes named here.
API_MODULES = ["sklearn_certify", *(f"sklearn_certify.{name}" for name in (
    "attacks", "bounds", "convex", "datasets", "denoisers", "ensemble", "metrics", "nets",
    "partition", "plotting", "smoothing"))]
autodoc_default_options = {
    "members": True,
    "inherited-members": ",".join(
        docs_checks.foreign_base_names(docs_checks.public_classes(API_MODULES))),
}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

html_theme = "pydata_sphinx_theme"
html_title = "sklearn_certify"
html_theme_options = {"navigation_with_keys": False}
# docs/_static/custom.css: a wider text column, wrapped API titles, scrolling tables.
html_static_path = ["_static"]
html_css_files = ["custom.css"]

# The user guide's figures (``.. plot::``): run the library on small data at build time, shown
# at their natural size (100 dpi), with no links to their source or other formats.
plot_formats = [("png", 100)]
plot_html_show_source_link = False
plot_html_show_formats = False
plot_rcparams = {"font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10,
                 "xtick.labelsize": 10, "ytick.labelsize": 10, "legend.fontsize": 9,
                 "figure.dpi": 100, "savefig.dpi": 100}
plot_pre_code = "import numpy as np\nimport matplotlib.pyplot as plt\n"

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
nitpicky = True

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
    # No sg_execution_times page: it loads jQuery, DataTables and Bootstrap from CDNs.
    "write_computation_times": False,
}
