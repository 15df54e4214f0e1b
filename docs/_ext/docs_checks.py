"""A check that makes ``sphinx-build -W`` fail when an API page would show an empty table.

``autosummary`` tables must not have rows without a description (the default class
template made "Attributes" tables of dataclass fields with empty descriptions).
Dangling references to other projects are caught by ``nitpicky`` in docs/conf.py.
"""

from docutils import nodes
from sphinx.util import logging

logger = logging.getLogger(__name__)


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


def setup(app):
    app.connect("doctree-resolved", warn_empty_autosummary_rows)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
