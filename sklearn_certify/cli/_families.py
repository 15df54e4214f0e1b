"""The certificate families the ``demo`` sub-command puts side by side, and what each promises.

Every family is fitted on the bundled digits and certified on a test split;
:data:`FAMILIES` says, in words printed next to each result, what the attacker
may do, what the radius counts and whether the certificate holds exactly or
with probability ``1 - alpha``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sklearn_certify.cli._methods import METHODS, UNIT_WORDS

__all__ = [
    "ALPHA",
    "FAMILIES",
    "Family",
    "build_estimator",
    "load_family_data",
    "mean_member_accuracy",
]

#: Level of the three smoothing certificates: each holds with probability >= 1 - ALPHA.
ALPHA = 0.001


@dataclass(frozen=True)
class Family:
    """One certificate family of the demo.

    Parameters
    ----------
    key : str
        Name on the command line and in the output files.
    name : str
        Short name in tables and figures.
    attacker : str
        What the attacker may change.
    radii : tuple of float
        Reference radii of the printed table, in the family's unit.
    """

    key: str
    name: str
    attacker: str
    radii: tuple

    @property
    def counts(self) -> str:
        """What the radius counts (the x axis of its panel), from the method registry."""
        return UNIT_WORDS[METHODS[self.key].unit()]

    @property
    def exact(self) -> bool:
        """True if the certificate holds exactly, False if with probability ``1 - alpha``."""
        return METHODS[self.key].exact

    @property
    def holds(self) -> str:
        """``"exactly"`` or ``"w.p. >= 1 - alpha"`` with alpha's value (table cells)."""
        return "exactly" if self.exact else f"w.p. >= {1 - ALPHA:g}"

    @property
    def holds_words(self) -> str:
        """The same in words (figure titles)."""
        return "exactly" if self.exact else f"with probability >= 1 - alpha = {1 - ALPHA:g}"


FAMILIES = {
    "dpa": Family(
        "dpa",
        "DPA",
        "inserts or deletes whole training rows (any features, any labels)",
        (1, 5, 10),
    ),
    "rab": Family(
        "rab",
        "RAB",
        "moves training features (e.g. a backdoor trigger); labels and test input stay as they are",
        (0.1, 0.25, 0.5),
    ),
    "denoised": Family(
        "denoised",
        "denoised smoothing",
        "moves training features, as for RAB; members train on denoised noisy copies",
        (0.1, 0.25, 0.5),
    ),
    "cohen": Family(
        "cohen",
        "test-time smoothing",
        "moves the test input (evasion); the training set is trusted",
        (0.25, 0.5, 1.0),
    ),
}


def build_estimator(key: str, settings: dict):
    """The unfitted certified estimator of family ``key``.

    Parameters
    ----------
    key : str
        A key of :data:`FAMILIES`.
    settings : dict
        The demo's settings: ``n_partitions``, ``spread``, ``election``, ``epochs``,
        ``n_members``, ``n_samples``, ``mlp_epochs``, ``device``, ``seed``, ``verbose``.

    Returns
    -------
    estimator
        A :class:`~sklearn_certify.DPAClassifier`, :class:`~sklearn_certify.RABClassifier`,
        :class:`~sklearn_certify.DenoisedSmoothingClassifier` or
        :class:`~sklearn_certify.RandomizedSmoothingClassifier`.
    """
    from sklearn_certify.nets import make_digits_mlp, make_digits_net

    s = settings
    estimator = METHODS[key].cls  # the class the registry names
    common = {"random_state": s["seed"]}
    ensemble = {**common, "n_estimators": s["n_members"], "alpha": ALPHA, "verbose": s["verbose"]}
    mlp = {"max_epochs": s["mlp_epochs"], "batch_size": 32, "lr": 0.1, "device": s["device"]}
    if key == "dpa":
        net = make_digits_net(max_epochs=s["epochs"], device=s["device"])
        return estimator(
            net,
            n_partitions=s["n_partitions"],
            spread=s["spread"],
            election=s["election"],
            engine="vectorized",
            verbose=s["verbose"],
            **common,
        )
    if key == "rab":
        return estimator(make_digits_mlp(**mlp), sigma=0.5, test_noise=False, **ensemble)
    if key == "denoised":
        from sklearn_certify.denoisers import load_bundled

        denoiser = load_bundled("digits", device=s["device"])
        return estimator(make_digits_mlp(**mlp), denoiser, sigma=0.25, **ensemble)
    deep = {**mlp, "hidden": 128, "depth": 2, "max_epochs": 4 * s["mlp_epochs"], "batch_size": 64}
    return estimator(
        make_digits_mlp(**{**deep, "lr": 0.05}),
        sigma=0.5,
        n_select=100,
        n_samples=s["n_samples"],
        alpha=ALPHA,
        **common,
    )


def load_family_data(key: str, n_train: int | None, n_test: int | None):
    """Training and test digits of family ``key``, and where its test rows come from.

    DPA trains a CNN on (n, 1, 8, 8) images; the smoothing families use flat rows;
    denoised smoothing certifies the digits the bundled denoiser never saw.

    Parameters
    ----------
    key : str
        A key of :data:`FAMILIES`.
    n_train, n_test : int or None
        Keep only the first rows of each split (``--quick``); None keeps all.

    Returns
    -------
    X, y, X_test, y_test : ndarray
    source : str
        The call whose rows the ``row`` column of the certificates indexes.
    """
    from sklearn_certify.datasets import load_digits, load_digits_for_denoising

    if key == "denoised":
        X, y = load_digits_for_denoising(split="train")
        X_test, y_test = load_digits_for_denoising(split="test")
        source = 'load_digits_for_denoising(split="test")'
    else:
        shape = "image" if key == "dpa" else "flat"
        X, y = load_digits(shape=shape, split="train")
        X_test, y_test = load_digits(shape=shape, split="test")
        source = 'load_digits(split="test")'
    return X[:n_train], y[:n_train], X_test[:n_test], y_test[:n_test], source


def mean_member_accuracy(clf, X_test, y_test) -> float | None:
    """Mean accuracy of an ensemble's members on ``X_test`` (None for test-time smoothing)."""
    if not hasattr(clf, "predict_members"):
        return None
    return float(np.mean(clf.predict_members(X_test) == np.asarray(y_test)[:, None]))
