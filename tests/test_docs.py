"""The README, the user guide, the examples and the docstrings say only what is true."""

import re
import subprocess
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

    names = {name for name, _ in all_estimators()}
    names.update(name for name in dir(skorch) if name.endswith("Classifier"))
    names.update(name for name in dir(sklearn_certify) if name.endswith("Classifier"))
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
    assert ordered[-1] == "plot_convex_bounds.py"


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
