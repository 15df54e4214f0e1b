"""The README, the user guide, the examples and the docstrings say only what is true."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = (".py", ".rst", ".md")
# Build outputs and generated copies of the sources (the gallery copies every example).
GENERATED = ("docs/_build/", "docs/auto_examples/", "docs/generated/", "build/", "dist/")


def project_files(suffixes=TEXT_SUFFIXES):
    """Tracked files with one of ``suffixes`` (every such file when git is not available)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout.decode()
        names = [name for name in out.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        names = [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*") if p.is_file()]
        names = [n for n in names if not n.startswith((".", "sklearn_certify.egg-info"))]
    return sorted(
        ROOT / name
        for name in names
        if name.endswith(suffixes) and not name.startswith(GENERATED)
        and (ROOT / name).is_file()
    )


def find(pattern, files):
    """``path:line: text`` for every match of ``pattern`` (matches may span lines)."""
    hits = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(pattern, text, flags=re.I):
            line = text.count("\n", 0, match.start()) + 1
            hits.append(f"{path.relative_to(ROOT)}:{line}: {' '.join(match.group().split())}")
    return hits


# --- convex bounds: U* bounds the poisoned *training* loss, not the test loss ---------------

CONVEX_TEST_LOSS_CLAIMS = [
    r"bounds?\s+on\s+(?:the\s+)?poisoned\s+test\s+loss",
    r"certified\s+(?:upper\s+)?bounds?\s+on\s+(?:the\s+)?test\s+loss",
    r"\bbounds\s+(?:the\s+)?(?:poisoned\s+)?test\s+loss",
]


@pytest.mark.parametrize("pattern", CONVEX_TEST_LOSS_CLAIMS)
def test_no_surface_calls_the_convex_bound_a_test_loss_bound(pattern):
    files = [p for p in project_files() if p.name != "test_docs.py"]
    assert not find(pattern, files)


def test_convex_user_guide_states_what_u_star_bounds_and_when_it_approximates_test_loss():
    text = " ".join((ROOT / "docs" / "user_guide" / "convex.rst").read_text().split())
    assert "training** loss" in text and "oracle** sphere/slab defence" in text
    for assumption in ("oracle defence", "convex loss", "removes no (or few) clean points",
                       "large training set"):
        assert assumption in text, assumption


# --- the docs describe only what ships -----------------------------------------------------


def doc_pages():
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.rst"))]


def known_classifier_names():
    import skorch
    from sklearn.utils import all_estimators

    import sklearn_certify
    from sklearn_certify import ensemble, privacy

    names = {name for name, _ in all_estimators()}
    names.update(name for name in dir(skorch) if name.endswith("Classifier"))
    names.update(name for name in dir(sklearn_certify) if name.endswith("Classifier"))
    names.update(name for name in dir(ensemble) if name.endswith("Classifier"))
    names.update(name for name in dir(privacy) if name.endswith("Classifier"))
    return names


def test_docs_name_only_classifiers_that_exist():
    pages = [p for p in doc_pages() if not str(p.relative_to(ROOT)).startswith(GENERATED)]
    known = known_classifier_names()
    missing = [hit for hit in find(r"\b[A-Z]\w*Classifier\b", pages)
               if hit.rsplit(": ", 1)[1] not in known]
    assert not missing


def test_docs_name_only_denoisers_that_exist():
    from sklearn_certify import denoisers

    pages = [p for p in doc_pages() if not str(p.relative_to(ROOT)).startswith(GENERATED)]
    missing = [hit for hit in find(r"(?-i:\b[A-Z]\w*Denoiser\b)", pages)
               if hit.rsplit(": ", 1)[1] not in denoisers.__all__]
    assert not missing


def test_every_user_guide_page_has_content():
    for page in (ROOT / "docs" / "user_guide").glob("*.rst"):
        lines = [line for line in page.read_text().splitlines() if line.strip()]
        body = [line for line in lines if not line.startswith(("..", "==", "--"))]
        assert len(body) > 3, f"{page.name} is an empty page"


# --- the gallery opens with the main DPA example -------------------------------------------


def gallery_sort_key():
    """The sort key docs/conf.py hands to sphinx-gallery, resolved as sphinx-gallery does."""
    import importlib
    import runpy

    conf = runpy.run_path(str(ROOT / "docs" / "conf.py"))
    key = conf["sphinx_gallery_conf"]["within_subsection_order"]
    assert isinstance(key, str), "give sphinx-gallery a picklable name, not an object"
    if key in ("FileNameSortKey", "ExampleTitleSortKey", "FileSizeSortKey",
               "NumberOfCodeLinesSortKey"):
        key = f"sphinx_gallery.sorting.{key}"
    module, name = key.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)(str(ROOT / "examples"))


def test_gallery_lists_every_example_with_the_dpa_digits_example_first():
    examples = sorted(p.name for p in (ROOT / "examples").glob("plot_*.py"))
    ordered = sorted(examples, key=gallery_sort_key())
    assert ordered[0] == "plot_dpa_digits.py"
    assert ordered[-2:] == ["plot_convex_bounds.py", "plot_convex_bound_limits.py"]


# --- the project cites only itself ----------------------------------------------------------

# Notes that are not part of the project (spelled in pieces so this file does not match itself).
OUTSIDE_CITATIONS = [
    re.escape("DESIGN" + ".md"),
    r"\bDESIGN\s+(?:§|section\s+)?\d",
    re.escape("../" + "shared"),
    r"\breference/[\w./-]*\.md\b",
    r"\breference\s+notes\b",
]


def test_no_file_cites_notes_outside_the_project():
    files = [p for p in project_files()
             if not p.relative_to(ROOT).as_posix().startswith("benchmarks/")]
    hits = [hit for pattern in OUTSIDE_CITATIONS for hit in find(pattern, files)]
    message = "cite the user guide (docs/user_guide/certificates.rst) instead:"
    assert not hits, "\n".join([message, *hits])


RULE_LABELS = ["rule-independence", "rule-hashing", "rule-statistics",
               "rule-trusted-preprocessing", "rule-degenerate", "rule-soundness-tests"]


def test_user_guide_states_the_certificate_rules():
    text = (ROOT / "docs" / "user_guide" / "certificates.rst").read_text()
    assert "Rules that keep a certificate honest" in text
    for label in RULE_LABELS:
        assert f".. _{label}:" in text, label


# --- FA and run-off: the text says what the gallery's figure shows ---------------------------


def test_no_page_claims_fa_or_runoff_often_certify_more():
    pages = [p for p in project_files((".rst", ".md", ".py"))
             if p.relative_to(ROOT).as_posix().startswith(("docs/", "examples/", "README"))]
    assert not find(r"\boften\s+(?:certif\w*\s+more|larger|bigger|higher)", pages)


def test_fa_runoff_example_prints_the_comparison_its_text_describes():
    text = (ROOT / "examples" / "plot_dpa_fa_runoff.py").read_text()
    assert "What the figure shows" in text and "vs DPA: ahead at" in text


# --- index, install and API pages -----------------------------------------------------------


def readme_usage():
    return re.search(r"```python\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.S)[1]


def test_index_quickstart_is_the_readme_usage_example_and_shows_a_gallery_figure():
    index = (ROOT / "docs" / "index.rst").read_text()
    block = re.search(r"\.\. code-block:: python\n\n(.*?)\n\n(?! )", index, flags=re.S)[1]
    assert [line.strip() for line in block.splitlines()] == [
        line.strip() for line in readme_usage().splitlines()
    ]
    figure = re.search(r"\.\. figure:: auto_examples/images/(sphx_glr_(\w+?)_\d+\.png)", index)
    assert figure and (ROOT / "examples" / f"{figure[2]}.py").is_file()


def test_install_page_gives_the_cpu_only_torch_line_for_the_pinned_version():
    pinned = re.search(r"pip install torch==([\w.]+)", (ROOT / "README.md").read_text())[1]
    cpu_line = (f"pip install torch=={pinned} --index-url "
                "https://download.pytorch.org/whl/cpu")
    install = (ROOT / "docs" / "install.rst").read_text()
    assert cpu_line in install and "CUDA" in install
    assert cpu_line in (ROOT / "README.md").read_text()


def load_inventory_script():
    import importlib.util

    path = ROOT / "docs" / "_inventories" / "make_inventories.py"
    spec = importlib.util.spec_from_file_location("make_inventories", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_intersphinx_reads_the_committed_local_inventories_written_by_the_script():
    import runpy
    import zlib

    script = load_inventory_script()
    mapping = runpy.run_path(str(ROOT / "docs" / "conf.py"))["intersphinx_mapping"]
    assert set(mapping) == set(script.INVENTORIES)
    for project, (url, inventory) in mapping.items():
        # A local file, never a URL: the docs are built without network access.
        path = Path(inventory)
        assert path.is_file() and path.parent == ROOT / "docs" / "_inventories", inventory
        assert url == script.INVENTORIES[project][1] and url.startswith("https://")
        data = path.read_bytes()
        header_end = data.index(b"zlib.\n") + len(b"zlib.\n")
        assert data[:header_end].startswith(b"# Sphinx inventory version 2\n")
        lines = zlib.decompress(data[header_end:]).decode().splitlines()
        assert lines == script.inventory_lines(project), (
            f"{path.name} is stale: run python docs/_inventories/make_inventories.py"
        )


def test_install_page_lists_every_extra_with_the_packages_setup_cfg_gives_it():
    import configparser

    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "setup.cfg")
    extras = config["options.extras_require"]
    install = " ".join((ROOT / "docs" / "install.rst").read_text().split())
    for extra, requirements in extras.items():
        entry = re.search(rf"``{extra}`` (.*?)(?= ``\w+`` [A-Z`]|$)", install)
        assert entry, f"docs/install.rst does not describe the extra {extra!r}"
        for requirement in requirements.split():
            if requirement.startswith("%("):  # all = %(test)s ...: named, not listed
                assert requirement[2:-2] in entry[1], (extra, requirement)
                continue
            name = re.match(r"[\w.-]+", requirement)[0]
            assert name in entry[1], f"install.rst: extra {extra!r} does not list {name}"


def test_install_page_says_which_extras_bring_pandas_for_the_gallery():
    install = " ".join((ROOT / "docs" / "install.rst").read_text().split())
    assert "pandas is not installed by ``pip install -e .``" in install
    assert "The ``test`` and ``docs`` extras bring it" in install
    assert "not part of ``all``" not in install
    for example in find(r"^import pandas", sorted((ROOT / "examples").glob("plot_*.py"))):
        name = example.split(":", 1)[0].rsplit("/", 1)[-1]
        assert f"sphx_glr_auto_examples_{name}" in install, name


# --- docs/_ext/docs_checks.py: what makes the docs build fail -------------------------------


def docs_checks():
    import importlib.util

    path = ROOT / "docs" / "_ext" / "docs_checks.py"
    spec = importlib.util.spec_from_file_location("docs_checks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REMOTE_PAGE = """<html><head>
<link rel="stylesheet" href="https://cdn.example.org/bootstrap.min.css" />
<link rel="stylesheet" href="_static/local.css" />
<link rel="icon" href="https://example.org/favicon.ico" />
<script src="//cdn.example.org/jquery.js"></script>
<script src="_static/missing.js?v=1"></script>
<script>window.inline = 1;</script>
</head><body><a href="https://example.org/paper.pdf">paper</a>
<img src="http://example.org/figure.png" /></body></html>
"""


def test_asset_check_flags_remote_and_missing_scripts_stylesheets_and_images(tmp_path):
    checks = docs_checks()
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "local.css").write_text("")
    page = tmp_path / "page.html"
    page.write_text(REMOTE_PAGE)
    assert checks.asset_problems(page, tmp_path) == [
        "loads https://cdn.example.org/bootstrap.min.css from the network",
        "loads //cdn.example.org/jquery.js from the network",
        "loads _static/missing.js?v=1, which is not in the build",
        "loads http://example.org/figure.png from the network",
    ]
    (tmp_path / "_static" / "missing.js").write_text("")
    page.write_text(REMOTE_PAGE.replace("https://cdn", "_static/cdn").replace("//cdn", "x")
                    .replace("http://example.org/figure.png", "../outside.png"))
    assert checks.asset_problems(page, tmp_path) == [
        "loads _static/cdn.example.org/bootstrap.min.css, which is not in the build",
        "loads x.example.org/jquery.js, which is not in the build",
        "loads ../outside.png from outside the build",
    ]


ESTIMATORS = ("DPAClassifier", "RABClassifier", "DenoisedSmoothingClassifier",
              "RandomizedSmoothingClassifier", "CertifiedBaggingClassifier")


@pytest.mark.parametrize("name", ESTIMATORS)
def test_member_check_expects_inherited_methods_on_each_estimator_page(name):
    import sklearn_certify

    members = docs_checks().project_members(getattr(sklearn_certify, name))
    assert {"fit", "predict", "predict_proba", "certify"} <= members
    assert not members & {"get_params", "set_params", "score", "set_score_request"}


def test_autodoc_leaves_out_only_what_classes_inherit_from_other_libraries():
    import runpy

    excluded = runpy.run_path(str(ROOT / "docs" / "conf.py"))["autodoc_default_options"]
    excluded = set(excluded["inherited-members"].split(","))
    assert {"BaseEstimator", "ClassifierMixin", "object", "Exception"} <= excluded
    assert not excluded & {"BaseCertifiedEnsemble", "BaseSmoothingEnsemble", "PoisoningAttack"}


def sphinx_build(source, out):
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(source), str(out)],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "MPLBACKEND": "Agg"},
    )


TINY_CONF = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
sys.path.insert(0, {str(ROOT / "docs" / "_ext")!r})
extensions = ["sphinx.ext.autodoc", "numpydoc", "docs_checks"]
numpydoc_show_class_members = False
suppress_warnings = ["ref.ref", "ref.term"]  # sklearn's docstrings cite its user guide
"""


TINY_PAGE = """Tiny
====

.. autoclass:: sklearn_certify.DPAClassifier
   :members:

.. autodata:: sklearn_certify.ensemble.ALL_ROWS

.. raw:: html

   {script}
"""


@pytest.mark.slow
def test_docs_checks_fail_the_strict_build_on_missing_members_and_remote_scripts(tmp_path):
    """The checks of docs/_ext/docs_checks.py fail ``sphinx-build -W`` (as CI runs it)."""
    import runpy

    conf, page = tmp_path / "conf.py", tmp_path / "index.rst"
    conf.write_text(TINY_CONF)
    page.write_text(TINY_PAGE.format(script='<script src="https://cdn.example.org/x.js"></script>'))
    failed = sphinx_build(tmp_path, tmp_path / "bad")
    assert failed.returncode != 0
    assert "does not document certify, estimators_, fit" in failed.stderr
    assert "index.html loads https://cdn.example.org/x.js from the network" in failed.stderr

    # What docs/conf.py does: inherited members, less those of other libraries' classes.
    options = runpy.run_path(str(ROOT / "docs" / "conf.py"))["autodoc_default_options"]
    conf.write_text(TINY_CONF + f"autodoc_default_options = {options!r}\n")
    page.write_text(TINY_PAGE.format(script="<script>var local = 1;</script>"))
    passed = sphinx_build(tmp_path, tmp_path / "good")
    assert passed.returncode == 0, passed.stderr
    # A re-exported constant shows the comment above its definition, not str's docstring.
    built = (tmp_path / "good" / "index.html").read_text()
    assert "every member sees every row" in built and "str(object" not in built


# --- the built docs (docs/_build/html, when a build is there) --------------------------------


def built_pages():
    """HTML pages of the last docs build whose source is still part of the docs."""
    import runpy

    from sphinx.util.matching import Matcher

    html = ROOT / "docs" / "_build" / "html"
    if not (html / "index.html").is_file():
        pytest.skip("the docs are not built (sphinx-build -W -b html docs docs/_build/html)")
    excluded = Matcher(runpy.run_path(str(ROOT / "docs" / "conf.py"))["exclude_patterns"])
    sources = {p.relative_to(ROOT / "docs").with_suffix("").as_posix()
               for p in (ROOT / "docs").rglob("*.rst")}
    sources = {name for name in sources if not excluded(name + ".rst")}
    return html, [html / f"{name}.html" for name in sorted(sources)
                  if (html / f"{name}.html").is_file()]


def test_built_docs_load_no_script_or_stylesheet_from_the_network():
    html, pages = built_pages()
    checks = docs_checks()
    problems = [f"{page.relative_to(html)}: {problem}"
                for page in pages for problem in checks.asset_problems(page, html)]
    assert not problems
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()


@pytest.mark.parametrize("name", ESTIMATORS)
def test_built_estimator_pages_document_fit_predict_and_certify(name):
    html, _ = built_pages()
    page = (html / "generated" / f"sklearn_certify.{name}.html").read_text()
    for method in ("fit", "predict", "predict_proba", "certify", "predict_members"):
        if method == "predict_members" and name == "RandomizedSmoothingClassifier":
            continue
        assert f'id="sklearn_certify.{name}.{method}"' in page, method


@pytest.mark.parametrize("page", ["dpa", "bagging", "test_time_smoothing", "convex"])
def test_user_guide_pages_draw_their_figure_with_the_library(page):
    text = (ROOT / "docs" / "user_guide" / f"{page}.rst").read_text()
    figure = re.search(r"\.\. plot::\n(?:   :.*\n(?:        .*\n)*)*\n((?:   .*\n|\n)+)", text)
    assert figure and "from sklearn_certify" in figure[1]


def test_user_guide_links_the_benchmark_page_instead_of_citing_results_md():
    pages = sorted((ROOT / "docs" / "user_guide").glob("*.rst"))
    assert not find(r"``benchmarks/RESULTS\.md``", pages)
    assert "   /benchmarks" in (ROOT / "docs" / "user_guide" / "index.rst").read_text()
    assert ".. include:: ../benchmarks/RESULTS.md" in (ROOT / "docs" / "benchmarks.rst").read_text()
