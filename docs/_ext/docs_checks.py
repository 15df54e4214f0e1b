"""Checks that make ``sphinx-build -W`` fail when the built docs would mislead a reader.

* An ``autosummary`` table must not have rows without a description (the default class
  template made "Attributes" tables of dataclass fields with empty descriptions).
* A class's page must document every public method and property the class gets from this
  package, inherited ones included: ``fit``, ``predict`` and ``certify`` belong on
  ``DPAClassifier``'s page, not only on its base class's.
* A constant (``ALL_ROWS``, ``COST_UNITS``) shows the ``#:`` comment above its definition,
  not the docstring of its type (``str(object='') -> str``): autodoc looks for the comment
  in the module the page names, which only re-exports the constant.
* No built page may load a script or stylesheet from the network (the docs are read
  offline: formulas, tables and styles must work without a connection), and every local
  script or stylesheet a page loads must exist in the build.

Dangling cross-references are caught by ``nitpicky`` in docs/conf.py.
"""

import importlib
import inspect
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from docutils import nodes
from sphinx import addnodes
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging

logger = logging.getLogger(__name__)

PACKAGE = "sklearn_certify"
MEMBER_TYPES = ("method", "property", "attribute", "classmethod", "staticmethod")


# --- autosummary rows -----------------------------------------------------------------------


def warn_empty_autosummary_rows(app, doctree, docname):
    for table in doctree.findall(nodes.table):
        if "autosummary" not in table.get("classes", []):
            continue
        for row in table.findall(nodes.row):
            entries = list(row.findall(nodes.entry))
            if len(entries) >= 2 and not entries[1].astext().strip():
                logger.warning(
                    "autosummary table row %r has no description (give the object a "
                    "docstring, or leave it out of the table)",
                    entries[0].astext(),
                    location=(docname, row.line),
                    type="docs_checks",
                    subtype="empty_autosummary",
                )


# --- constants show their own comment -------------------------------------------------------


def constant_comment(name):
    """The ``#:`` comment of the constant ``name`` in the submodule that defines it, or None."""
    package, attr = name.rsplit(".", 1)
    value = getattr(sys.modules.get(package), attr, None)
    for module_name in sorted(m for m in list(sys.modules) if m.startswith(package + ".")):
        if getattr(sys.modules[module_name], attr, None) is not value:
            continue
        comment = ModuleAnalyzer.for_module(module_name).find_attr_docs().get(("", attr))
        if comment:
            return [line for line in comment if line is not None]
    return None


def use_constant_comments(app, what, name, obj, options, lines):
    if what != "data" or not name.startswith(PACKAGE + "."):
        return
    if "\n".join(lines).strip() != inspect.cleandoc(type(obj).__doc__ or ""):
        return  # autodoc found the constant's own documentation
    comment = constant_comment(name)
    if comment is None:
        logger.warning("constant %s has no #: comment above its definition", name,
                       type="docs_checks", subtype="constant_comment")
        comment = []
    lines[:] = comment


# --- class pages list their inherited members ------------------------------------------------


def defining_class(cls, name):
    """The first class in ``cls``'s MRO whose own namespace holds ``name``."""
    return next(base for base in cls.__mro__ if name in vars(base))


def is_project_class(cls, package=PACKAGE):
    return cls.__module__ == package or cls.__module__.startswith(package + ".")


def project_members(cls, package=PACKAGE):
    """Public methods and properties of ``cls`` that ``package`` defines, inherited or not.

    Members that ``cls`` inherits from other libraries (sklearn's ``get_params``,
    ``Exception.with_traceback``) are left out: their own documentation covers them.
    """
    names = set()
    for name in dir(cls):
        if name.startswith("_"):
            continue
        value = inspect.getattr_static(cls, name)
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if not (inspect.isfunction(value) or isinstance(value, property)):
            continue
        if is_project_class(defining_class(cls, name), package):
            names.add(name)
    return names


def foreign_base_names(classes, package=PACKAGE):
    """Names of the classes outside ``package`` that ``classes`` inherit from.

    docs/conf.py passes them to autodoc's ``inherited-members`` option: a class page then
    documents what the class inherits from this package's base classes and leaves out what
    it inherits from sklearn, torch or Python.
    """
    return sorted({base.__name__ for cls in classes for base in cls.__mro__[1:]
                   if not is_project_class(base, package)})


def public_classes(module_names):
    """Every class that the modules ``module_names`` export in ``__all__``."""
    classes = []
    for module_name in module_names:
        module = importlib.import_module(module_name)
        classes += [value for name in getattr(module, "__all__", ())
                    if inspect.isclass(value := getattr(module, name))]
    return classes


def documented_members(class_desc):
    """Names of the members documented inside a class's ``desc`` node."""
    content = next(iter(class_desc.findall(addnodes.desc_content)))
    return {
        sig["fullname"].rsplit(".", 1)[-1]
        for desc in content.findall(addnodes.desc)
        if desc.get("objtype") in MEMBER_TYPES
        for sig in desc.findall(addnodes.desc_signature)
        if sig.get("fullname")
    }


def documented_classes(doctree):
    """``(class object, desc node)`` for each class of this package a page documents."""
    for desc in doctree.findall(addnodes.desc):
        if desc.get("domain") != "py" or desc.get("objtype") not in ("class", "exception"):
            continue
        sig = next(iter(desc.findall(addnodes.desc_signature)))
        module, fullname = sig.get("module"), sig.get("fullname")
        if not module or not module.startswith(PACKAGE) or desc.get("no-index"):
            continue
        obj = importlib.import_module(module)
        for part in fullname.split("."):
            obj = getattr(obj, part)
        yield obj, desc


def warn_missing_class_members(app, doctree, docname):
    for cls, desc in documented_classes(doctree):
        missing = sorted(project_members(cls) - documented_members(desc))
        if missing:
            logger.warning(
                "the page of %s does not document %s (inherited members belong on the "
                "class's page: see the inherited-members option in docs/conf.py)",
                cls.__qualname__, ", ".join(missing),
                location=docname, type="docs_checks", subtype="class_members",
            )


# --- no remote assets ------------------------------------------------------------------------


class _AssetCollector(HTMLParser):
    """Collects the scripts, stylesheets and images an HTML page loads."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.assets = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img") and attrs.get("src"):
            self.assets.append(attrs["src"])
        elif tag == "link" and attrs.get("href") and re.search(
            r"\b(stylesheet|preload|modulepreload)\b", attrs.get("rel") or ""
        ):
            self.assets.append(attrs["href"])


def page_assets(html):
    """The URLs of the scripts, stylesheets, preloads and images an HTML page loads."""
    collector = _AssetCollector()
    collector.feed(html)
    collector.close()
    return collector.assets


def is_remote(url):
    """True for an absolute URL with a scheme or host (``https://``, ``//cdn...``)."""
    parts = urlsplit(url)
    return bool(parts.netloc) or parts.scheme not in ("", "file")


def asset_problems(page, root):
    """What is wrong with the scripts, stylesheets and images the HTML file ``page`` loads."""
    problems = []
    for url in page_assets(page.read_text(encoding="utf-8")):
        if is_remote(url):
            problems.append(f"loads {url} from the network")
            continue
        path = unquote(urlsplit(url).path)
        if path and not (page.parent / path).resolve().is_relative_to(root.resolve()):
            problems.append(f"loads {url} from outside the build")
        elif path and not (page.parent / path).is_file():
            problems.append(f"loads {url}, which is not in the build")
    return problems


def built_pages(app):
    """The HTML files this build wrote: one per document, and the index and search pages."""
    root = Path(app.outdir)
    pages = {Path(app.builder.get_outfilename(docname)) for docname in app.env.found_docs}
    pages |= {root / f"{name}.html" for name in ("genindex", "py-modindex", "search")}
    return sorted(page for page in pages if page.is_file())


def warn_remote_assets(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    root = Path(app.outdir)
    for page in built_pages(app):
        for problem in asset_problems(page, root):
            logger.warning("%s %s (the docs must work offline)",
                           page.relative_to(root).as_posix(), problem,
                           type="docs_checks", subtype="remote_asset")


def setup(app):
    # Before numpydoc rewrites the docstring (it runs at the default priority, 500).
    app.connect("autodoc-process-docstring", use_constant_comments, priority=100)
    app.connect("doctree-resolved", warn_empty_autosummary_rows)
    app.connect("doctree-resolved", warn_missing_class_members)
    # After every other build-finished handler (sphinx-mathjax-offline copies MathJax then).
    app.connect("build-finished", warn_remote_assets, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
