"""Command line of ``python -m sklearn_certify``.

Each sub-command lives in its own module exposing ``add_parser(subparsers)``
(which registers the sub-command and sets ``func`` to its runner) and is
listed in :data:`COMMAND_MODULES`.
"""

from __future__ import annotations

import argparse
import importlib

#: Modules of this package that each add one sub-command.
COMMAND_MODULES: tuple[str, ...] = ("bound", "demo", "certify")


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="python -m sklearn_certify",
        description="Certificates against training-data poisoning for scikit-learn classifiers.",
    )
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen sub-command; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(args.func(args) or 0)
