"""What every benchmark script shares: replacing its own section of ``RESULTS.md``."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def write_section(section: str) -> None:
    """Replace the section titled by ``section``'s first line, or append it; keep the others.

    A section runs from its ``## `` title line to the next ``## `` title (or the end), and
    sections are separated by one blank line.
    """
    title = section.split("\n", 1)[0]
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    body = section.strip("\n") + "\n"
    start = text.find("\n" + title + "\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + body
    else:
        end = text.find("\n## ", start + 1)
        rest = "\n" + text[end + 1 :] if end != -1 else ""
        text = text[: start + 1] + body + rest
    RESULTS.write_text(text)
