"""Scores of certificates: certified accuracy, its curve, median radius, a scorer.

Certified accuracy at radius ``r`` is the fraction of samples whose
certified prediction is correct, not abstained, and whose radius is ``>= r``
(non-strict, as Cohen et al.'s analysis; ``strict=True`` gives RAB's ``> r``).
"""

from __future__ import annotations

import numbers
from typing import Literal

import numpy as np
from sklearn.utils.multiclass import unique_labels

from sklearn_certify._certificate import Certificate
from sklearn_certify._pipeline import certify

__all__ = [
    "certified_accuracy",
    "certified_accuracy_curve",
    "certified_against_rows",
    "make_certified_scorer",
    "median_certified_radius",
]


#: Units whose radii are real numbers (the others count samples or labels).
_REAL_UNITS = ("l2", "input_l2")


def _certified_correct(y_true, certificate: Certificate) -> np.ndarray:
    if not isinstance(certificate, Certificate):
        raise TypeError(
            f"certificate must be a Certificate (from estimator.certify), got "
            f"{type(certificate).__name__}."
        )
    y_true = np.asarray(y_true)
    if y_true.shape != certificate.prediction.shape:
        raise ValueError(
            f"y_true has shape {y_true.shape} but the certificate covers "
            f"{len(certificate)} samples; pass the labels of the certified samples."
        )
    _check_label_types(y_true, certificate.prediction)
    return (certificate.prediction == y_true) & ~certificate.abstain


def _check_label_types(y_true: np.ndarray, prediction: np.ndarray) -> None:
    """Refuse labels that can never equal the predictions (strings against numbers).

    Compared as they are, every row would count as wrong and the accuracy would be 0.0
    without a word; scikit-learn's ``score`` refuses the same mix.
    """
    if not y_true.size:
        return
    try:
        unique_labels(y_true, prediction)
    except ValueError as exc:
        given, predicted = y_true.ravel()[:1].tolist()[0], prediction.ravel()[:1].tolist()[0]
        raise ValueError(
            f"y_true holds {y_true.dtype} labels such as {given!r}, but the certificate "
            f"predicts {prediction.dtype} labels such as {predicted!r} ({exc}). Pass y_true "
            "in the label values the estimator was fitted on."
        ) from exc


def _check_radius(radius) -> float:
    if isinstance(radius, bool) or not isinstance(radius, numbers.Real) or not radius >= 0:
        raise ValueError(f"radius must be a non-negative number, got {radius!r}.")
    return radius


def certified_accuracy(
    y_true, certificate: Certificate, radius: float = 0, *, strict: bool = False
) -> float:
    """Fraction of samples certified correct at ``radius``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, in the same label values as ``certificate.prediction``.
    certificate : Certificate
        From ``estimator.certify(X)``.
    radius : float, default=0
        Attack size, in ``certificate.unit``.
    strict : bool, default=False
        Require ``certificate.radius > radius`` instead of ``>=``.

    Returns
    -------
    float
        Certified accuracy in [0, 1]; 0.0 for an empty certificate.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify import Certificate
    >>> from sklearn_certify.metrics import certified_accuracy
    >>> cert = Certificate(np.array([0, 1, 1, 0]), np.array([0, 3, 1, 2]),
    ...                    np.zeros(4, bool), "samples")
    >>> certified_accuracy([1, 1, 1, 0], cert, radius=2)
    0.5
    """
    correct = _certified_correct(y_true, certificate)
    radius = _check_radius(radius)
    covered = certificate.radius > radius if strict else certificate.radius >= radius
    return float(np.mean(correct & covered)) if len(certificate) else 0.0


def certified_accuracy_curve(
    y_true, certificate: Certificate, radii=None
) -> tuple[np.ndarray, np.ndarray]:
    """Certified accuracy as a function of the attack size.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    certificate : Certificate
        From ``estimator.certify(X)``.
    radii : array-like, default=None
        Attack sizes to evaluate. By default every integer ``0..max`` for
        ``"samples"`` / ``"label_flips"`` certificates, and ``0`` plus every
        distinct certified radius of a correct sample for ``"l2"`` and
        ``"input_l2"`` (the corners of the step function).

    Returns
    -------
    radii : ndarray of shape (n_radii,)
        Attack sizes, increasing.
    accuracy : ndarray of shape (n_radii,)
        Certified accuracy at each size (non-increasing).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify import Certificate
    >>> from sklearn_certify.metrics import certified_accuracy_curve
    >>> cert = Certificate(np.array([0, 1, 1, 0]), np.array([0, 3, 1, 2]),
    ...                    np.zeros(4, bool), "samples")
    >>> r, acc = certified_accuracy_curve([1, 1, 1, 0], cert)
    >>> r.tolist(), acc.tolist()
    ([0, 1, 2, 3], [0.75, 0.75, 0.5, 0.25])
    """
    correct = _certified_correct(y_true, certificate)
    if radii is None:
        good = certificate.radius[correct]
        if certificate.unit in _REAL_UNITS:
            radii = np.unique(np.concatenate([[0.0], good.astype(float)]))
        else:
            radii = np.arange(int(good.max()) + 1 if good.size else 1)
    else:
        radii = np.asarray(radii)
        if radii.ndim != 1 or np.any(~np.isfinite(radii)) or np.any(radii < 0):
            raise ValueError("radii must be a 1-d array of finite, non-negative attack sizes.")
        radii = np.sort(radii)
    n = max(len(certificate), 1)
    accuracy = (correct[None, :] & (certificate.radius[None, :] >= radii[:, None])).sum(1) / n
    return radii, accuracy.astype(float)


def median_certified_radius(
    y_true, certificate: Certificate, *, convention: Literal["largest", "dpa_script"] = "largest"
) -> float:
    """Attack size up to which at least half the samples stay certified correct.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    certificate : Certificate
        From ``estimator.certify(X)``.
    convention : {"largest", "dpa_script"}, default="largest"
        ``"largest"``: the largest radius ``r`` with certified accuracy
        ``>= 0.5``, and NaN when even ``r = 0`` falls below one half.
        ``"dpa_script"``: what the official DPA scripts print as "Robustness
        certificate" (and the DPA paper's Table 1 reports): one **more** than
        ``"largest"``, i.e. the first attack size at which certified accuracy
        drops below one half, and 0 when clean certified accuracy is below one
        half. Only for integer units.

    Returns
    -------
    float
        The median certified radius.

    Examples
    --------
    Certificates ``[wrong, 0, 1, 2]`` give certified accuracy 0.75, 0.5, 0.25
    at radii 0, 1, 2:

    >>> import numpy as np
    >>> from sklearn_certify import Certificate
    >>> from sklearn_certify.metrics import median_certified_radius
    >>> cert = Certificate(np.array([1, 0, 0, 0]), np.array([0, 0, 1, 2]),
    ...                    np.zeros(4, bool), "samples")
    >>> median_certified_radius([0, 0, 0, 0], cert)
    1.0
    >>> median_certified_radius([0, 0, 0, 0], cert, convention="dpa_script")
    2.0
    """
    if convention not in ("largest", "dpa_script"):
        raise ValueError(f"convention must be 'largest' or 'dpa_script', got {convention!r}.")
    if convention == "dpa_script" and certificate.unit in _REAL_UNITS:
        raise ValueError(
            "convention='dpa_script' applies to integer radii (DPA), not unit "
            f"{certificate.unit!r}."
        )
    radii, accuracy = certified_accuracy_curve(y_true, certificate)
    above = np.flatnonzero(accuracy >= 0.5)
    if convention == "dpa_script":
        return float(radii[above[-1]] + 1) if above.size else 0.0
    return float(radii[above[-1]]) if above.size else float("nan")


def make_certified_scorer(radius: float = 0, *, strict: bool = False):
    """A scorer for ``GridSearchCV(scoring=...)``: certified accuracy at ``radius``.

    The scorer calls :func:`sklearn_certify.certify` on the fitted estimator
    (passing X through a Pipeline's earlier steps) and warns with
    :class:`~sklearn_certify.UnsoundPipelineWarning` when such a step was fit
    on the training data and is not frozen.

    Parameters
    ----------
    radius : float, default=0
        Attack size at which to score, in the estimator's certificate unit.
    strict : bool, default=False
        Require radius ``>`` instead of ``>=``.

    Returns
    -------
    callable
        ``scorer(estimator, X, y) -> float``.

    Examples
    --------
    >>> from sklearn_certify.metrics import make_certified_scorer
    >>> scorer = make_certified_scorer(radius=2)
    >>> scorer
    make_certified_scorer(radius=2)
    """
    radius = _check_radius(radius)
    return _CertifiedScorer(radius, strict)


class _CertifiedScorer:
    def __init__(self, radius, strict):
        self.radius = radius
        self.strict = strict

    def __call__(self, estimator, X, y, **kwargs) -> float:
        return certified_accuracy(y, certify(estimator, X), self.radius, strict=self.strict)

    def __repr__(self) -> str:
        strict = ", strict=True" if self.strict else ""
        return f"make_certified_scorer(radius={self.radius}{strict})"


def certified_against_rows(
    certificate: Certificate,
    n_rows: int,
    epsilon: float,
    *,
    norm: Literal["l2", "linf"] = "l2",
    n_features: int | None = None,
) -> np.ndarray:
    """Whether each prediction is certified against ``n_rows`` rows moved by ``epsilon`` each.

    For an ``"l2"`` certificate (training-set smoothing): ``r`` poisoned rows, each moved by
    at most ``epsilon`` (l2, or l-infinity with ``norm="linf"`` over ``n_features``
    features), perturb the training set by at most ``sqrt(r) * epsilon`` in l2 (times
    ``sqrt(n_features)`` for l-infinity). A prediction is certified against every such attack
    when it does not abstain and that total is strictly below its radius (the theorem's
    condition is strict).

    Parameters
    ----------
    certificate : Certificate
        A certificate with ``unit="l2"``.
    n_rows : int
        Number of perturbed training rows, >= 1.
    epsilon : float
        Largest perturbation of one row, >= 0, in ``norm``.
    norm : {"l2", "linf"}, default="l2"
        The norm ``epsilon`` is measured in.
    n_features : int, default=None
        Features per row; required for ``norm="linf"``.

    Returns
    -------
    ndarray of bool of shape (n_samples,)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify import Certificate
    >>> from sklearn_certify.metrics import certified_against_rows
    >>> cert = Certificate(np.array([0, 1]), np.array([1.0, 0.3]), np.array([False, False]),
    ...                    "l2")
    >>> certified_against_rows(cert, 4, 0.2).tolist()  # total 0.4
    [True, False]
    >>> certified_against_rows(cert, 4, 8 / 255, norm="linf", n_features=64).tolist()
    [True, False]
    """
    from sklearn_certify.bounds import l2_radius_per_sample, linf_to_l2

    if not isinstance(certificate, Certificate):
        raise TypeError(f"certificate must be a Certificate, got {type(certificate).__name__}.")
    if certificate.unit != "l2":
        raise ValueError(
            f"certified_against_rows needs an l2 certificate over the training set, got "
            f"unit={certificate.unit!r}."
        )
    if norm not in ("l2", "linf"):
        raise ValueError(f"norm must be 'l2' or 'linf', got {norm!r}.")
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) or not epsilon >= 0:
        raise ValueError(f"epsilon must be a non-negative number, got {epsilon!r}.")
    if norm == "linf":
        if n_features is None:
            raise ValueError("norm='linf' needs n_features (features per row).")
        epsilon = float(linf_to_l2(epsilon, n_features))
    elif n_features is not None:
        raise ValueError("n_features only applies to norm='linf'.")
    budget = l2_radius_per_sample(certificate.radius, n_rows)  # radius / sqrt(n_rows)
    return ~certificate.abstain & (budget > epsilon)
