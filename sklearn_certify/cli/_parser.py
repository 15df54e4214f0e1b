"""What every sub-command shares: the user-error type, the parser class and option value types.

A user error (bad option value, unreadable or malformed input, unwritable
output) is reported as one line on stderr with exit status 2 and no
traceback: argparse errors through :class:`Parser`, every later check by
raising :class:`CLIError`, which :func:`sklearn_certify.cli.main` prints.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

__all__ = [
    "CLIError",
    "Parser",
    "n_jobs",
    "non_negative_int",
    "open_fraction",
    "out_folder",
    "percentile",
    "poison_fraction",
    "positive_float",
    "positive_int",
    "seed",
    "size_or_fraction",
]

#: An integer as typed (``size_or_fraction`` reads it as a count, anything else as a fraction).
_INTEGER = re.compile(r"[+-]?[0-9]+")

#: Largest seed NumPy's RandomState accepts.
MAX_SEED = 2**32 - 1


class CLIError(Exception):
    """A user error: printed as one line on stderr, exit status 2, no traceback."""


class Parser(argparse.ArgumentParser):
    """``ArgumentParser`` whose errors are one line on stderr (exit status 2).

    argparse prints the usage block before the error; on a terminal that buries
    the message, so the usage is replaced by a pointer to ``--help``.
    """

    def error(self, message: str) -> NoReturn:
        """Print ``message`` as one line on stderr and exit with status 2."""
        text = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {text} (see {self.prog} --help)\n")


def _number(text: str, kind: Callable[[str], float], requirement: str, accept) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {requirement}, got {text!r}") from None
    if not accept(value):
        raise argparse.ArgumentTypeError(f"expected {requirement}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """Option value type: an integer ``>= 1``.

    Parameters
    ----------
    text : str
        The value as typed.

    Returns
    -------
    int
        The parsed value.
    """
    return _number(text, int, "an integer >= 1", lambda v: v >= 1)


def non_negative_int(text: str) -> int:
    """Option value type: an integer ``>= 0``.

    Parameters
    ----------
    text : str
        The value as typed.

    Returns
    -------
    int
        The parsed value.
    """
    return _number(text, int, "an integer >= 0", lambda v: v >= 0)


def seed(text: str) -> int:
    """Option value type: a random seed in ``0 .. 2**32 - 1``.

    Parameters
    ----------
    text : str
        The value as typed.

    Returns
    -------
    int
        The parsed value.
    """
    return _number(text, int, f"an integer in 0..{MAX_SEED}", lambda v: 0 <= v <= MAX_SEED)


def n_jobs(text: str) -> int:
    """Option value type: a joblib ``n_jobs`` (a non-zero integer, -1 for all cores).

    Parameters
    ----------
    text : str
        The value as typed.

    Returns
    -------
    int
        The parsed value.
    """
    return _number(text, int, "a non-zero integer (-1: all cores)", lambda v: v != 0)


def open_fraction(text: str) -> float:
    """Option value type: a number strictly between 0 and 1.

    Parameters
    ----------
    text : str
        The value as typed.

    Returns
    -------
    float
        The parsed value.
    """
    return _number(text, float, "a number strictly between 0 and 1", lambda v: 0.0 < v < 1.0)


def poison_fraction(text: str) -> float:
    """Option value type: a poison fraction in ``[0, 1)``.

    Parameters
    ----------
    text : str
        The value as typed.

    Returns
    -------
    float
        The parsed value.
    """
    return _number(text, float, "a number in [0, 1)", lambda v: 0.0 <= v < 1.0)


def positive_float(text: str) -> float:
    """Option value type: a finite number ``> 0``.

    Parameters
    ----------
    text : str
        The value as typed.

    Returns
    -------
    float
        The parsed value.
    """
    return _number(text, float, "a finite number > 0", lambda v: math.isfinite(v) and v > 0)


def percentile(text: str) -> float:
    """Option value type: a percentile in ``(0, 100]``.

    Parameters
    ----------
    text : str
        The value as typed.

    Returns
    -------
    float
        The parsed value.
    """
    return _number(text, float, "a number in (0, 100]", lambda v: 0.0 < v <= 100.0)


def size_or_fraction(text: str) -> int | float:
    """Option value type: a count ``>= 1``, or a fraction in ``(0, 1]`` (written with a point).

    Parameters
    ----------
    text : str
        The value as typed.

    Returns
    -------
    int or float
        The count, or the fraction.
    """
    if _INTEGER.fullmatch(text.strip()):
        return positive_int(text)
    return _number(text, float, "an integer >= 1 or a number in (0, 1]", lambda v: 0 < v <= 1)


def out_folder(text: str) -> Path:
    """Option value type of ``--out``: a non-empty folder name.

    An empty value (often an unset shell variable) would mean the current
    folder; it is refused instead.

    Parameters
    ----------
    text : str
        The value as typed.

    Returns
    -------
    Path
        The folder.
    """
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder name, got ''")
    return Path(text)
