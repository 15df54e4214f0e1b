"""The certified methods of ``certify``, ``evaluate`` and ``demo``: one entry each.

An entry of :data:`METHODS` names a method's estimator class; everything else is read from
the library, never restated: its options and their defaults (the constructor's signature
and ``get_params()`` of a default instance), the choices of a string option (the class's
parameter constraints), what its radius counts (the unit
:func:`~sklearn_certify.attacks.evaluate_under_attack` reads before training) and whether it
holds exactly or with probability ``1 - alpha`` (an ``alpha`` parameter). Every check of the
options and the training rows is the estimator's own, run by :func:`check_fit` before any
training. Adding a method is one entry of :data:`METHODS` (and, for a new parameter, one
of :data:`OPTIONS`).
"""

from __future__ import annotations

import argparse
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from sklearn.base import BaseEstimator, ClassifierMixin, clone

from sklearn_certify.cli._parser import (
    CLIError,
    open_fraction,
    positive_float,
    positive_int,
    size_or_fraction,
)

__all__ = [
    "BASE_ESTIMATORS",
    "METHODS",
    "OPTIONS",
    "UNIT_WORDS",
    "Method",
    "add_method_options",
    "build",
    "check_fit",
    "described",
    "method_params",
]

#: What a certificate's radius counts, in words, for each certificate unit.
UNIT_WORDS = {
    "samples": "training rows inserted + deleted",
    "rows": "training rows inserted, deleted or modified",
    "label_flips": "training labels flipped",
    "l2": "l2 norm of the training-feature change",
    "input_l2": "l2 norm of the test-input change",
}


@dataclass(frozen=True)
class Method:
    """A certified method of the command line.

    Parameters
    ----------
    key : str
        Its ``--method`` name.
    estimator : str
        Name of its estimator class in :mod:`sklearn_certify`.
    description : str
        What it does, in a few words (``--method`` help).
    """

    key: str
    estimator: str
    description: str

    @property
    def cls(self) -> type:
        """The estimator class."""
        import sklearn_certify

        return getattr(sklearn_certify, self.estimator)

    def defaults(self) -> dict:
        """The library's defaults: ``get_params()`` of a default instance."""
        return _defaults(self.estimator)

    def parameters(self) -> tuple[str, ...]:
        """Its parameters the command line sets, in :data:`OPTIONS` order."""
        return tuple(name for name in OPTIONS if name in self.defaults())

    @property
    def exact(self) -> bool:
        """True if the certificate holds exactly, False if with probability ``1 - alpha``."""
        return "alpha" not in self.defaults()

    def unit(self, **params) -> str:
        """What the radius of an estimator with ``params`` counts (a certificate unit)."""
        from sklearn_certify.attacks._evaluate import _radius_unit

        return _radius_unit(self.cls(None, **params))


@cache
def _defaults(estimator: str) -> dict:
    import sklearn_certify

    return getattr(sklearn_certify, estimator)(None).get_params(deep=False)


METHODS = {
    method.key: method
    for method in (
        Method(
            "dpa",
            "DPAClassifier",
            "Deep Partition Aggregation, Finite Aggregation with --spread > 1",
        ),
        Method("rab", "RABClassifier", "RAB, members trained on noisy copies of the training set"),
        Method(
            "denoised",
            "DenoisedSmoothingClassifier",
            "denoised smoothing, members trained on denoised noisy copies (see --denoiser)",
        ),
        Method(
            "cohen",
            "RandomizedSmoothingClassifier",
            "randomized smoothing of the test input (Cohen et al.), the training set trusted",
        ),
        Method(
            "bagging",
            "CertifiedBaggingClassifier",
            "bagging (Jia, Cao & Gong), members trained on --sample-size rows drawn with "
            "replacement",
        ),
    )
}


@dataclass(frozen=True)
class Option:
    """How the command line spells one constructor parameter.

    Parameters
    ----------
    help : str
        What it does; which methods it applies to and their defaults are added.
    type : callable, default=None
        Option value type; None: one of the choices the library's constraints allow.
    metavar : str, default=None
        Placeholder in the help.
    convert : callable, default=None
        Turns the typed value into the parameter's value.
    negate : bool, default=False
        A boolean whose library default is True: the flag ``--no-<name>`` sets it False.
    """

    help: str
    type: Callable | None = None
    metavar: str | None = None
    convert: Callable | None = None
    negate: bool = False

    def flag(self, name: str) -> str:
        """The option as typed, e.g. ``--n-partitions``."""
        return f"--{'no-' if self.negate else ''}{name.replace('_', '-')}"


def _bundled_denoiser(name: str):
    from sklearn_certify.denoisers import load_bundled

    return load_bundled(name)


def _bundled_names() -> list[str]:
    from sklearn_certify.denoisers import BUNDLED

    return sorted(BUNDLED)


#: The constructor parameters the command line sets, by parameter name.
OPTIONS = {
    "n_partitions": Option(
        "number of partitions k, at most the number of training rows; each member trains on "
        "about 1/k of them and radii reach about k/2",
        positive_int,
        "K",
    ),
    "spread": Option(
        "Finite Aggregation spread d: each training row trains d of the k*d members; 1 is "
        "plain DPA; --threat-model general only",
        positive_int,
        "D",
    ),
    "election": Option(
        "how the members' outputs are combined: plurality vote, or the run-off election of "
        "Rezaei et al. 2023 over the members' scores"
    ),
    "threat_model": Option(
        "what the attacker may do and the radius counts: general = insert and delete "
        "training rows (radius: training rows inserted + deleted); label_flip = only flip "
        "training labels, the features are trusted (SS-DPA; radius: training labels flipped)"
    ),
    "hash": Option(
        "--threat-model general only: how a training row's partition is chosen from its "
        "features: digest = SHA-256 of the row (any numbers), pixel_sum = sum of the row "
        "modulo k*d as in the official DPA code (integer features 0..255)"
    ),
    "n_estimators": Option("number of members, at least 2", positive_int, "N"),
    "sample_size": Option(
        "training rows each member draws with replacement: a count, or a fraction of the "
        "training rows",
        size_or_fraction,
        "K",
    ),
    "sigma": Option("standard deviation of the smoothing noise in feature units", positive_float),
    "alpha": Option(
        "the certificates hold with probability 1 - alpha (evaluate tolerates the certified "
        "changes a sound certificate may show at that level)",
        open_fraction,
    ),
    "n_samples": Option(
        "noisy copies of each test input that bound its class probability and vote for its "
        "prediction; the time grows with it, and so does the largest radius",
        positive_int,
        "N",
    ),
    "test_noise": Option(
        "score test inputs as given; by default each member adds its fixed noise vector to "
        "them, and the radius then covers a change of the test input too",
        negate=True,
    ),
    "denoiser": Option(
        "the bundled denoiser to train the members on (digits: 64 features in [0, 1], "
        "certified rows it never saw, e.g. load_digits_for_denoising's); default: none, the "
        "members train on the plain noisy copies",
        metavar="NAME",
        convert=_bundled_denoiser,
    ),
}

#: Base estimators the command line can build (each preprocesses inside the member: sound).
BASE_ESTIMATORS = ("ridge", "logreg", "tree", "knn")

#: What ``--base`` builds, in words.
_BASE_WORDS = (
    "ridge = standardize + RidgeClassifier, logreg = standardize + LogisticRegression, tree = "
    "DecisionTreeClassifier, knn = standardize + 1-nearest neighbour"
)


def base_estimator(name: str):
    """The unfitted base estimator ``--base name`` builds."""
    from sklearn.linear_model import LogisticRegression, RidgeClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    return {
        "ridge": lambda: make_pipeline(StandardScaler(), RidgeClassifier()),
        "logreg": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        "tree": DecisionTreeClassifier,
        "knn": lambda: make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=1)),
    }[name]()


# ---------------------------------------------------------------------- parsing
def _methods_of(name: str) -> list[Method]:
    return [method for method in METHODS.values() if name in method.parameters()]


def _choices(name: str) -> list[str] | None:
    """The values the library's parameter constraints allow for a string parameter."""
    from sklearn.utils._param_validation import StrOptions

    if name == "denoiser":
        return _bundled_names()
    for method in _methods_of(name):
        for constraint in getattr(method.cls, "_parameter_constraints", {}).get(name, ()):
            if isinstance(constraint, StrOptions):
                return sorted(constraint.options)
    return None


def _defaults_words(name: str) -> str:
    """``"0.5 for rab, 0.25 for denoised and cohen"``: the library default of each method."""
    by_value: dict[str, list[str]] = {}
    for method in _methods_of(name):
        value = method.defaults()[name]
        by_value.setdefault("none" if value is None else str(value), []).append(method.key)
    if len(by_value) == 1:
        return next(iter(by_value))
    return ", ".join(f"{value} for {' and '.join(keys)}" for value, keys in by_value.items())


def _applies_to(name: str) -> str:
    keys = [method.key for method in _methods_of(name)]
    return "--method " + (keys[0] if len(keys) == 1 else f"{', '.join(keys[:-1])} or {keys[-1]}")


def add_method_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--method``, ``--base`` and every :data:`OPTIONS` entry (unset unless given).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The sub-command's parser.
    """
    methods = "; ".join(
        f"{m.key} = {m.description} (radius: {UNIT_WORDS[m.unit()]}; holds "
        f"{'exactly' if m.exact else 'with probability 1 - alpha'})"
        for m in METHODS.values()
    )
    parser.add_argument(
        "--method",
        choices=tuple(METHODS),
        default="dpa",
        help=f"the certified classifier: {methods} (default: %(default)s)",
    )
    parser.add_argument(
        "--base",
        choices=BASE_ESTIMATORS,
        default="ridge",
        help=f"the base estimator (of each member, or the one cohen smooths): {_BASE_WORDS}; "
        "each member fits its own scaler (default: %(default)s)",
    )
    for name, option in OPTIONS.items():
        help_text = f"{_applies_to(name)} only: {option.help}"
        if option.negate:
            parser.add_argument(
                option.flag(name), dest=name, action="store_const", const=False, help=help_text
            )
            continue
        parser.add_argument(
            option.flag(name),
            dest=name,
            type=option.type,
            choices=_choices(name) if option.type is None else None,
            metavar=option.metavar,
            help=f"{help_text} (default: {_defaults_words(name)})",
        )


def method_params(args) -> dict:
    """The parameters given on the command line, refusing those of other methods.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options.

    Returns
    -------
    dict
        Parameter name to value; parameters not given keep the library's default.
    """
    method = METHODS[args.method]
    params = {}
    for name, option in OPTIONS.items():
        value = getattr(args, name)
        if value is None:
            continue
        if name not in method.parameters():
            raise CLIError(f"{option.flag(name)} applies to {_applies_to(name)} only; drop it.")
        params[name] = value
    return params


def build(args, params: dict):
    """The unfitted estimator of ``--method`` with ``params``, ``--base`` and ``--seed``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options (``method``, ``base``, ``seed``, and ``n_jobs``, ``verbose`` if any).
    params : dict
        From :func:`method_params`.

    Returns
    -------
    estimator
        The certified classifier.
    """
    method = METHODS[args.method]
    kwargs = {
        name: OPTIONS[name].convert(value) if OPTIONS[name].convert else value
        for name, value in params.items()
    }
    run = {
        "random_state": args.seed,
        "n_jobs": getattr(args, "n_jobs", None),
        "verbose": int(getattr(args, "verbose", False)),
    }
    kwargs.update({k: v for k, v in run.items() if k in method.defaults() and v is not None})
    return method.cls(base_estimator(args.base), **kwargs)


def described(args, params: dict) -> tuple[dict, str]:
    """The method's settings (library defaults filled in) and a one-line description.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options.
    params : dict
        From :func:`method_params`.

    Returns
    -------
    settings : dict
        ``method``, ``estimator`` and every parameter of :meth:`Method.parameters`.
    line : str
        E.g. ``"RABClassifier (n_estimators=100, sigma=0.5, ...; base ridge)"``.
    """
    method = METHODS[args.method]
    values = {name: params.get(name, method.defaults()[name]) for name in method.parameters()}
    shown = ", ".join(f"{name}={value}" for name, value in values.items())
    settings = {"method": method.key, "estimator": method.estimator, **values}
    return settings, f"{method.estimator} ({shown}; base {args.base})"


# ---------------------------------------------------------------------- checks
class _ChecksPassed(Exception):
    """Raised by :class:`_StandIn` when the estimator starts training: its checks passed."""


class _StandIn(ClassifierMixin, BaseEstimator):
    """A base estimator that stops the fit as soon as a member would be trained."""

    def fit(self, X, y):
        raise _ChecksPassed

    def predict(self, X):
        raise _ChecksPassed

    def predict_proba(self, X):
        raise _ChecksPassed


def _option_words(text: str, names) -> str:
    """The library's message, its ``name=``, ``name <=``, ``'name' parameter`` as options."""
    for name in names:
        text = re.sub(rf"\b{name}(?=\s*[<>]?=|' parameter)", OPTIONS[name].flag(name), text)
    return text


def check_fit(estimator, X, y, key: str) -> None:
    """Run the estimator's own checks of its options and of ``(X, y)``, training nothing.

    The estimator is fitted with a stand-in base estimator that stops the fit when the
    first member would be trained, after every check the library makes before training.

    Parameters
    ----------
    estimator : estimator
        From :func:`build`.
    X, y : ndarray
        The training rows.
    key : str
        The ``--method``.

    Raises
    ------
    CLIError
        With the library's message, its parameter names spelled as options.
    """
    probe = clone(estimator).set_params(estimator=_StandIn())
    if "n_jobs" in probe.get_params(deep=False):
        probe.set_params(n_jobs=None, verbose=0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the real fit warns
            probe.fit(X, y)
    except _ChecksPassed:
        return
    except (TypeError, ValueError) as exc:
        words = _option_words(" ".join(str(exc).split()), METHODS[key].parameters())
        raise CLIError(f"--method {key}: {words}") from exc
