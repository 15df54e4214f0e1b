"""Command line of ``python -m sklearn_certify`` (installed as ``sklearn-certify`` too).

Each sub-command lives in its own module exposing ``add_parser(subparsers)``
(which registers the sub-command and sets ``func`` to its runner) and is
listed in :data:`COMMAND_MODULES`. A user error is one line on stderr and exit
status 2 (see :mod:`sklearn_certify.cli._parser`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from sklearn_certify.cli._parser import CLIError, Parser

__all__ = ["COMMAND_MODULES", "build_parser", "main", "package_version"]

#: Modules of this package that each add one sub-command.
COMMAND_MODULES: tuple[str, ...] = ("bound", "demo", "certify", "evaluate")

#: Name of the console script declared in setup.cfg.
CONSOLE_SCRIPT = "sklearn-certify"


def package_version() -> str:
    """The installed distribution's version, else ``sklearn_certify.__version__``.

    Returns
    -------
    str
        The version string (``"unknown"`` if neither is available).
    """
    try:
        return metadata.version("sklearn_certify")
    except metadata.PackageNotFoundError:
        import sklearn_certify

        return getattr(sklearn_certify, "__version__", "unknown")


def _prog() -> str:
    invoked = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return CONSOLE_SCRIPT if invoked.startswith(CONSOLE_SCRIPT) else "python -m sklearn_certify"


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available sub-command.

    Returns
    -------
    argparse.ArgumentParser
        Parser whose errors are one line on stderr with exit status 2.
    """
    parser = Parser(
        prog=_prog(),
        description="Certificates against training-data poisoning for scikit-learn classifiers.",
        epilog="Each command writes its tables and figures into the folder given by --out.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    subparsers = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", required=True
    )
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").add_parser(subparsers)
    return parser


@contextmanager
def _one_line_warnings(prog: str):
    """Show warnings as ``prog: warning: message`` lines (no source location)."""

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"{prog}: warning: {' '.join(str(message).split())}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen sub-command.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    int
        Exit status: 0 on success, 2 on a user error (reported as one line on
        stderr). argparse errors, ``--help`` and ``--version`` exit through
        ``SystemExit`` (status 2, 0 and 0).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"{parser.prog} {args.command}"
    try:
        with _one_line_warnings(prog):
            return int(args.func(args) or 0)
    except CLIError as exc:
        print(f"{prog}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
