"""Poison, refit and compare with the certificate: the attack harness."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.base import clone

from sklearn_certify.attacks._base import (
    PAIR_UNIT,
    PoisoningAttack,
    check_budget,
    check_training_set,
    measures,
)
from sklearn_certify.attacks._frontier import (
    FrontierCheck,
    clean_row_key,
    finite_vote_miss,
    poisoned_row_key,
)
from sklearn_certify.bounds import bagging_kept_probability

__all__ = [
    "CertificateViolationError",
    "CertificateViolationWarning",
    "check_evaluation",
    "evaluate_under_attack",
]

#: Certificate units counted in whole rows (a radius ``r`` covers ``r`` of them); the
#: others are l2 norms, and a radius ``R`` covers norms strictly below ``R``.
_COUNT_UNITS = ("samples", "rows", "label_flips")

#: Seeds are drawn from RandomState, which takes integers below ``2**32``.
_SEED_SPAN = 2**32


class CertificateViolationWarning(UserWarning):
    """An attack changed more certified predictions than the certificate allows."""


class CertificateViolationError(RuntimeError):
    """Raised instead of :class:`CertificateViolationWarning` with ``on_violation="raise"``."""


@dataclass(frozen=True)
class _Smoothing:
    """How a smoothing classifier predicts: enough to bound a finite vote's failures.

    ``n_votes`` draws of the smoothed classifier decide :meth:`predict`, by counting votes
    (``rule="votes"``) or by averaging member probabilities (``rule="mean"``). ``sigma`` is
    the Gaussian noise level, None for bagging (whose radius is not Gaussian).
    """

    alpha: float
    sigma: float | None
    n_votes: int
    rule: str


def _smoothing(estimator) -> _Smoothing | None:
    """The vote model of a probabilistic certificate, None for a deterministic one."""
    from sklearn_certify.ensemble import BaseVoteEnsemble
    from sklearn_certify.smoothing import RandomizedSmoothingClassifier

    params = estimator.get_params(deep=False)
    if "alpha" not in params:
        return None
    if isinstance(estimator, BaseVoteEnsemble):
        rule = "mean" if params["bound"] == "hoeffding" else "votes"
        n_votes = params["n_estimators"]
    elif isinstance(estimator, RandomizedSmoothingClassifier):
        rule, n_votes = "votes", params["n_samples"]
    else:
        raise ValueError(
            f"{type(estimator).__name__} certificates hold with probability 1 - alpha, and "
            "evaluate_under_attack can bound the certified changes such a certificate allows "
            "for the vote-certified ensembles (RABClassifier, DenoisedSmoothingClassifier, "
            "CertifiedBaggingClassifier, PartitionedRABClassifier) and "
            "RandomizedSmoothingClassifier only."
        )
    sigma = float(params["sigma"]) if "sigma" in params else None
    return _Smoothing(float(params["alpha"]), sigma, int(n_votes), rule)


def _check_estimator(estimator) -> _Smoothing | None:
    if not (hasattr(estimator, "fit") and hasattr(estimator, "certify")):
        raise TypeError(
            "estimator must be an unfitted certified classifier with fit and certify (e.g. "
            f"DPAClassifier), got {type(estimator).__name__}."
        )
    seed = estimator.get_params(deep=False).get("random_state")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise ValueError(
            f"estimator.random_state must be an int, got {seed!r}: the poisoned set is refit "
            "with the same seed as the clean one, as the certificate assumes."
        )
    return _smoothing(estimator)


def _covers_test_input(estimator, unit: str) -> bool:
    """Whether the radius also covers a perturbation of the test input.

    Test-time smoothing certifies the input alone; RAB with ``test_noise=True`` smooths the
    test input together with the training set, so its radius covers both at once.
    """
    return unit == "input_l2" or (
        unit == "l2" and bool(estimator.get_params(deep=False).get("test_noise", False))
    )


def _check_test_set(X, X_test, y_test) -> tuple[np.ndarray, np.ndarray]:
    X_test, y_test = np.asarray(X_test), np.asarray(y_test)
    if X_test.shape[1:] != X.shape[1:]:
        raise ValueError(
            f"X_test rows must have the shape of the rows of X {X.shape[1:]}, got "
            f"{X_test.shape[1:]}."
        )
    if y_test.ndim != 1 or y_test.shape[0] != X_test.shape[0]:
        raise ValueError(
            f"y_test must be 1-d with one label per row of X_test ({X_test.shape[0]}), got "
            f"shape {y_test.shape}."
        )
    return X_test, y_test


def _check_budgets(budgets, unit: str) -> list:
    if unit == PAIR_UNIT:  # one pair (rows, l2), or a sequence of pairs
        sequence = isinstance(budgets, (tuple, list, np.ndarray))
        one = sequence and len(budgets) == 2 and all(np.ndim(b) == 0 for b in budgets)
        values = [budgets] if one or not sequence else list(budgets)
    else:
        values = np.asarray(budgets, dtype=object).reshape(-1) if np.ndim(budgets) else [budgets]
    if len(values) == 0:
        raise ValueError("budgets must hold at least one budget.")
    try:
        return [
            check_budget(b.item() if np.ndim(b) == 0 and hasattr(b, "item") else b, unit)
            for b in values
        ]
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"budgets: {exc}") from exc


def _radius_unit(estimator) -> str | None:
    """What the estimator's radius counts, known before training (None when it does not say)."""
    from sklearn_certify.partition import DPAClassifier, PartitionedRABClassifier
    from sklearn_certify.smoothing import RandomizedSmoothingClassifier

    if isinstance(estimator, RandomizedSmoothingClassifier):
        return "input_l2"
    if isinstance(estimator, PartitionedRABClassifier):
        return PAIR_UNIT
    if isinstance(estimator, DPAClassifier):
        label_flip = estimator.get_params(deep=False)["threat_model"] == "label_flip"
        return "label_flips" if label_flip else "samples"
    unit = getattr(type(estimator), "_certificate_unit", None)  # a class attribute
    return unit if isinstance(unit, str) else None


#: How the messages name each kind of change (see PoisoningAttack.changes).
_CHANGE_WORDS = {
    "rows": "inserts or deletes rows",
    "features": "changes features",
    "labels": "changes labels",
}


def _check_threat_model(estimator, attack, budgets: list) -> None:
    """Refuse positive budgets whose poisoning the certificate cannot measure."""
    unit = _radius_unit(estimator)
    positive = [b for b in budgets if np.any(np.asarray(b) > 0)]
    if unit is None or not positive:
        return
    if unit == "input_l2":
        raise ValueError(
            f"budgets: {positive[0]} {attack.unit} poisons the training set, but "
            f"{type(estimator).__name__}'s certificate (input_l2) covers a perturbation of "
            "the test input only, the training set being trusted: evaluate it at budget 0 "
            "(a backdoor at budget 0 is its test-time trigger alone)."
        )
    unmeasured = [_CHANGE_WORDS[c] for c in sorted(attack.changes) if not measures(unit, {c})]
    if unmeasured:
        raise ValueError(
            f"{type(attack).__name__} {' and '.join(unmeasured)}, which a certificate "
            f"counting {unit} does not measure: the attack is outside the threat model of "
            f"{type(estimator).__name__}'s certificate."
        )


def _check_budgets_fit(attack, X, y, X_eval, budgets: list) -> None:
    """Refuse a budget the attack cannot spend on ``(X, y)`` (per evaluated test point).

    Pairs ``(rows, l2)`` are checked at the largest of each part.
    """
    largest = (
        tuple(map(max, zip(*budgets, strict=True))) if attack.unit == PAIR_UNIT else max(budgets)
    )
    if not attack.per_target:
        attack.validate_budget(X, y, largest)
        return
    for i in range(X_eval.shape[0]):
        try:
            attack.validate_budget(X, y, largest, target=X_eval[i])
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"Against evaluated test point {i}: {exc}") from exc


def _checked(estimator, attack, X, y, X_test, y_test, budgets, row_key=None):
    """Every check made before training, and the checked arrays.

    Returns ``(smoothing, X, y, X_test, y_test, budgets, rows, X_eval, row_key)``: the vote
    model, the data, the budgets, the evaluated test rows and their attacked inputs, and
    the clean rows' trusted keys (None for an estimator that takes none).
    """
    if not isinstance(attack, PoisoningAttack):
        raise TypeError(f"attack must be a PoisoningAttack, got {type(attack).__name__}.")
    smoothing = _check_estimator(estimator)
    X, y = check_training_set(X, y)
    row_key = clean_row_key(estimator, row_key, X.shape[0])
    X_test, y_test = _check_test_set(X, X_test, y_test)
    budgets = _check_budgets(budgets, attack.unit)
    rows = attack.evaluation_rows(y_test)
    if rows.size == 0:
        raise ValueError(
            f"{type(attack).__name__} is evaluated on no row of y_test (a backdoor needs test "
            "points of classes other than its target_label)."
        )
    X_eval = attack.test_inputs(X_test[rows])
    attack.validate_estimator(estimator)
    _check_threat_model(estimator, attack, budgets)
    _check_budgets_fit(attack, X, y, X_eval, budgets)
    return smoothing, X, y, X_test, y_test, budgets, rows, X_eval, row_key


def check_evaluation(
    estimator, attack: PoisoningAttack, X, y, X_test, y_test, budgets, *, row_key=None
) -> None:
    """Make the checks of :func:`evaluate_under_attack`, which it makes before any training.

    The estimator and the attack must fit together (the certificate counts what the
    attack changes), and every budget must be one the attack can spend on ``(X, y)`` (for
    a per-target attack, against every evaluated test point): an impossible last budget is
    refused before the first fit, not after the earlier ones. Nothing is trained or
    poisoned.

    Parameters
    ----------
    estimator, attack, X, y, X_test, y_test, budgets, row_key :
        As in :func:`evaluate_under_attack`.

    Raises
    ------
    TypeError, ValueError
        What :func:`evaluate_under_attack` would raise before training anything.

    Examples
    --------
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from sklearn_certify import RABClassifier
    >>> from sklearn_certify.attacks import LabelFlipAttack
    >>> from sklearn_certify.attacks._evaluate import check_evaluation
    >>> from sklearn_certify.datasets import load_digits
    >>> X, y = load_digits(split="train")
    >>> rab = RABClassifier(DecisionTreeClassifier(), random_state=0)
    >>> check_evaluation(rab, LabelFlipAttack(), X, y, X[:5], y[:5], [0, 3])
    Traceback (most recent call last):
    ...
    ValueError: LabelFlipAttack changes labels, which a certificate counting l2 does not ...
    """
    _checked(estimator, attack, X, y, X_test, y_test, budgets, row_key)


def _fraction(count: int, total: int) -> float:
    return count / total if total else float("nan")


def _fit(estimator, X, y, row_key):
    """A clone of ``estimator`` fitted on ``(X, y)`` (with the rows' keys, if it takes them)."""
    keys = {} if row_key is None else {"row_key": row_key}
    return clone(estimator).fit(X, y, **keys)


def _refit(estimator, clean_model, result, row_key):
    """The model on the poisoned set (the clean model itself when nothing changed).

    A keyed estimator gets the poisoned rows' keys: a kept row keeps its clean key (it
    stays in its partition), an inserted row gets a fresh one.
    """
    if result.is_clean:
        return clean_model
    keys = None if row_key is None else poisoned_row_key(row_key, result)
    # writable copies: the result's arrays are read-only, which torch warns about
    return _fit(estimator, np.array(result.X), np.array(result.y), keys)


def _training_cost(result, budget, attack, unit: str):
    """The poisoning's size in the certificate's unit (0 for a test-time certificate)."""
    spent = result.spent
    if spent is None or np.any(np.asarray(spent) > np.asarray(budget)):
        raise RuntimeError(
            f"{type(attack).__name__} spent {spent} {attack.unit} with a budget of {budget}."
        )
    if unit == "input_l2":
        if not result.is_clean:
            raise ValueError(
                f"{type(attack).__name__} {result.describe()}, but a certificate in input_l2 "
                "covers a perturbation of the test input only, the training set being "
                "trusted: evaluate it with budgets that leave the training set clean (a "
                "backdoor at budget 0 is its test-time trigger alone)."
            )
        return 0.0
    cost = result.cost(unit)
    if cost is None:
        raise ValueError(
            f"{type(attack).__name__} {result.describe()}, which a certificate counting "
            f"{unit} does not measure: the attack is outside the certificate's threat model."
        )
    return cost


def _point_costs(train_cost, input_norm: np.ndarray, unit: str) -> np.ndarray:
    """Per evaluated point, the size the certificate must cover.

    ``train_cost`` is one cost (a global attack) or one per point (a per-target attack).
    """
    if unit == PAIR_UNIT:  # (rows, l2) per point; the test input is not smoothed
        return np.broadcast_to(np.asarray(train_cost, dtype=float), (input_norm.size, 2))
    train = np.broadcast_to(np.asarray(train_cost), input_norm.shape)
    if unit in _COUNT_UNITS:
        return train
    return np.sqrt(train.astype(np.float64) ** 2 + input_norm**2)


def _largest(cost: np.ndarray, unit: str):
    """The largest per-point cost: a number, or for ``"rows+l2"`` the largest of each part."""
    if unit == PAIR_UNIT:
        return int(cost[:, 0].max()), float(cost[:, 1].max())
    return cost.max().item()


def _certified(cert, cost: np.ndarray) -> np.ndarray:
    if cert.unit in _COUNT_UNITS:
        return ~cert.abstain & (cert.radius >= cost)
    return ~cert.abstain & (cert.radius > cost)


def _kept(smoothing: _Smoothing, model, p_lower: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """The top class's probability that a poisoning of size ``cost`` cannot go below.

    ``Phi(Phi^-1(p_lower) - c / sigma)`` for Gaussian smoothing (Neyman-Pearson); for
    bagging, :func:`~sklearn_certify.bounds.bagging_kept_probability` at the fitted model's
    training size and sample size; the model's own ``_kept_probability`` where it has one.
    """
    kept = getattr(model, "_kept_probability", None)
    if kept is not None:  # an ensemble that knows its own (e.g. the DP lens's group privacy)
        return kept(p_lower, cost)
    if smoothing.sigma is None:
        return bagging_kept_probability(
            p_lower, model.n_train_, model.sample_size_, np.minimum(cost, model.n_train_)
        )
    return stats.norm.cdf(stats.norm.ppf(p_lower) - cost / smoothing.sigma)


def _failure_bound(smoothing: _Smoothing | None, cert, cost: np.ndarray, model=None) -> np.ndarray:
    """Per point, a bound on the probability that a certified prediction changes.

    Zero for a deterministic certificate. For a smoothing or bagging certificate ``alpha``
    (its bound on the top class's probability ``p_A`` is wrong) plus the chance that a
    finite vote misses a prediction that did hold. At a poisoning of size ``c`` the
    argument behind the radius keeps the top class's probability at least ``q``
    (:func:`_kept`; bagging reads the clean ``model``'s sizes); ``predict`` keeps the
    class whenever more than half of its ``n`` votes (or of its averaged probability) go
    to it, which fails
    with probability at most ``P(Binomial(n, q) <= n / 2)`` (Hoeffding's
    ``exp(-2 n (q - 1/2)^2)`` for averaged probabilities).
    """
    if smoothing is None:
        return np.zeros(cost.shape[0])
    p_lower = np.clip(np.asarray(cert.p_lower, dtype=float), 0.0, 1.0)
    q = _kept(smoothing, model, p_lower, cost)
    miss = finite_vote_miss(q, smoothing.n_votes, smoothing.rule)
    return np.minimum(1.0, smoothing.alpha + miss)


def _mean_bound(smoothing: _Smoothing | None, bounds: np.ndarray) -> float:
    """The certified points' mean failure bound: 0 if deterministic, NaN if none certified."""
    if smoothing is None:
        return 0.0
    return float(bounds.mean()) if bounds.size else float("nan")


def _tolerated(smoothing: _Smoothing | None, bounds: np.ndarray) -> int:
    """Certified changes a sound certificate can show: the binomial ``1 - alpha`` quantile.

    ``bounds`` are the certified points' failure bounds, mean ``p``. Beyond ``n p``, the tail
    of a sum of independent failures with these probabilities is at most that of
    ``Binomial(n, p)`` (Hoeffding, 1956), so a count above the returned number (the
    quantile, at least ``n p``) has probability at most ``alpha`` for independent points.
    """
    if smoothing is None or bounds.size == 0:
        return 0
    mean = float(bounds.mean())
    quantile = stats.binom.ppf(1.0 - smoothing.alpha, bounds.size, mean)
    return int(max(quantile, np.ceil(bounds.size * mean)))


def _attack_model(estimator, clean_model, smoothing, attack, X, y, row_key):
    """The model handed to the attack.

    The clean model for a deterministic certificate. A smoothing certificate's probability
    is over the classifier's noise, which the poisoned refit shares with the clean model
    (same ``random_state``); an attacker reading that model would know the draws the
    statistics assume independent of the poisoning. It gets a model of the same
    classifier trained on the same clean data with ``random_state + 1`` instead (and
    nothing when it does not read models).
    """
    if smoothing is None:
        return clean_model
    if not attack.reads_model:
        return None
    seed = int(estimator.get_params(deep=False)["random_state"])
    other_draws = clone(estimator).set_params(random_state=(seed + 1) % _SEED_SPAN)
    return _fit(other_draws, X, y, row_key)


def evaluate_under_attack(
    estimator,
    attack: PoisoningAttack,
    X,
    y,
    X_test,
    y_test,
    budgets,
    *,
    row_key=None,
    on_violation: str = "warn",
) -> list[dict]:
    """Poison the training set at each budget, refit, and hold the result to the certificate.

    The estimator is fitted on the clean set and certifies the evaluation points (the test
    points the attack targets). For each budget the attack poisons the training set (once
    for a global attack, once per test point for a per-target attack, which is then handed
    that point), a clone of the estimator with the same parameters, ``random_state``
    included, is fitted on the poisoned set, and its predictions on the attacked inputs
    (with the attack's test-time trigger, if it has one) are compared with the clean
    model's: with the certificate's class where it certifies, with the clean model's own
    ``predict`` elsewhere (a smoothing classifier's certificate selects its class on
    separate draws, and may name another one where it abstains).

    Where the certificate covers the test input, it is computed on the clean test input
    and the trigger's norm counts towards the cost: for
    :class:`~sklearn_certify.RandomizedSmoothingClassifier` (unit ``"input_l2"``, the
    training set trusted, so only a clean training set is accepted) and for
    :class:`~sklearn_certify.RABClassifier` with ``test_noise=True``, whose radius covers
    the training and the test perturbation together: the cost of point ``i`` is then
    ``sqrt(||Delta_train||^2 + ||delta_x_i||^2)``. Otherwise (DPA, RAB without test noise)
    the certificate is computed on the attacked input itself and only the training set
    counts. A prediction is *certified at that cost* when it is not an abstention and its
    radius is at least the cost (strictly above it for an l2 radius).

    :class:`~sklearn_certify.PartitionedRABClassifier` certifies a frontier in
    ``"rows+l2"``: the poisoned rows keep their trusted keys (``row_key``, positions by
    default; an inserted row gets a fresh key), each poisoning is measured as the pair
    ``(rows, l2)`` (:meth:`~sklearn_certify.attacks.PoisonResult.cost`), and a prediction
    is certified at that cost when its frontier at ``rows`` rows is above ``l2``. Any
    attack can be evaluated against it, :class:`~sklearn_certify.attacks.MixedAttack` with
    budgets ``(rows, l2)``.

    A deterministic certificate (DPA in all its variants) tolerates no certified
    prediction changed. A smoothing or bagging certificate
    (:class:`~sklearn_certify.CertifiedBaggingClassifier`, unit ``"rows"``) holds with
    probability ``1 - alpha``; it
    tolerates up to the ``1 - alpha`` quantile of ``Binomial(n_certified, p)`` (and at
    least its mean ``n_certified * p``), where ``p`` averages the certified points'
    failure bounds: ``alpha``, plus the probability that the poisoned classifier's finite
    vote misses a smoothed prediction that the certificate keeps (negligible unless the
    cost is close to the radius; for a frontier, the chance that more partitions' finite
    votes miss their class than the frontier has rows to spare, as the user guide's mixed
    certificate page derives). More changes
    than that are reported (:class:`CertificateViolationWarning`, or
    :class:`CertificateViolationError`).

    The binomial tolerance treats the points' failures as independent. That holds for
    :class:`~sklearn_certify.RandomizedSmoothingClassifier`, whose noise is drawn per
    point, but the points of a :class:`~sklearn_certify.RABClassifier` (or of a bagging
    classifier) share its members,
    so their failures are correlated: the expected number of changes stays below
    ``n_certified * p`` whatever the correlation, but the count may exceed the tolerance
    more often than ``alpha`` (one unlucky ensemble can fail many points at once), and
    staying within it does not prove the certificate. The statistics also assume a poisoning
    chosen without knowing the classifier's noise: an attack that reads the model is handed
    one trained with ``random_state + 1``.

    Parameters
    ----------
    estimator : estimator
        Unfitted certified classifier with an integer ``random_state``: a
        :class:`~sklearn_certify.DPAClassifier` in any variant, a
        :class:`~sklearn_certify.RABClassifier`, a
        :class:`~sklearn_certify.CertifiedBaggingClassifier`, a
        :class:`~sklearn_certify.PartitionedRABClassifier` or a
        :class:`~sklearn_certify.RandomizedSmoothingClassifier`.
    attack : PoisoningAttack
        The attack; its budgets are in ``attack.unit``.
    X, y : array-like
        Clean training set.
    X_test, y_test : array-like
        Test set: the attack is evaluated on ``attack.evaluation_rows(y_test)`` (all rows,
        or for a backdoor those of the other classes) with ``attack.test_inputs`` applied;
        clean accuracy is measured on all of ``X_test`` as given.
    budgets : sequence of int or float, or of pairs
        Attack sizes in ``attack.unit``, each evaluated in turn; for unit ``"rows+l2"``
        pairs ``(rows, l2)`` (one pair, or a sequence of them).
    row_key : array-like of int of shape (n_samples,), default=None
        Trusted, unique keys of the clean training rows, for an estimator partitioned by
        them (one whose ``fit`` takes ``row_key``: ``PartitionedRABClassifier``); ``None``
        keys them by position. Refused for other estimators.
    on_violation : {"warn", "raise"}, default="warn"
        What more certified changes than tolerated trigger.

    Returns
    -------
    list of dict
        One row per budget (``pandas.DataFrame(rows)`` makes a table) with: ``attack``,
        ``estimator``, ``budget``, ``budget_unit``, ``cost`` (the largest per-point cost in
        ``radius_unit``; for ``"rows+l2"`` the pair of the largest rows and the largest
        l2), ``radius_unit``, ``n_points`` (evaluated test points),
        ``clean_accuracy`` (of the poisoned model(s) on the clean test set),
        ``attack_success`` (fraction of evaluated points where the attack reached its
        goal, :meth:`PoisoningAttack.succeeded`), ``certified_accuracy`` (clean model's
        certified predictions that are correct, certified at the cost), ``n_certified``,
        ``certified_changed`` (fraction of the certified predictions the attack changed;
        NaN when none is certified), ``n_certified_changed``, ``failure_bound`` (mean
        per-point bound on the probability that a certified prediction changes: 0 for a
        deterministic certificate, NaN when none is certified), ``n_tolerated`` and
        ``changed_tolerance`` (the certified changes a sound certificate may show, as a
        count and a fraction: 0 for a deterministic certificate), ``uncertified_changed``
        (the changed fraction among the other points: near 1 when the certificate is
        tight against this attack) and
        ``violation`` (more certified changes than tolerated).

    Raises
    ------
    CertificateViolationError
        With ``on_violation="raise"``, at the first budget where the attack changed more
        certified predictions than tolerated.
    ValueError
        When ``estimator.random_state`` is not an int, when its certificates are
        probabilistic but not those of a smoothing classifier of this package, when the
        attack changes what the certificate does not count (rows or features against a
        label-flip certificate; inserted rows or labels against RAB; any training change
        against test-time smoothing), when a budget is more than the attack can spend, or
        when ``row_key`` is given to an estimator that takes none (or is not one unique
        integer key per training row). All of these are checked before anything is
        trained, as far as the attack declares what it changes and what it can spend
        (:attr:`~sklearn_certify.attacks.PoisoningAttack.changes`,
        :meth:`~sklearn_certify.attacks.PoisoningAttack.validate_budget`); each
        poisoning's cost is checked again once it is made.

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn_certify import DPAClassifier
    >>> from sklearn_certify.attacks import PartitionInsertionAttack, evaluate_under_attack
    >>> from sklearn_certify.datasets import load_digits
    >>> X, y = load_digits(split="train")
    >>> X_test, y_test = load_digits(split="test")
    >>> clf = DPAClassifier(KNeighborsClassifier(1), n_partitions=11, random_state=0)
    >>> rows = evaluate_under_attack(clf, PartitionInsertionAttack(random_state=0), X, y,
    ...                              X_test[:5], y_test[:5], budgets=[0, 4])
    >>> [(r["budget"], r["certified_changed"], r["uncertified_changed"]) for r in rows]
    [(0, 0.0, nan), (4, 0.0, 1.0)]

    A clean-label backdoor replacing rows of digit 1 against RAB: the cost is the l2 norm
    of the training change together with the trigger on each test digit.

    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn_certify import RABClassifier
    >>> from sklearn_certify.attacks import BackdoorAttack
    >>> X, y = load_digits(digits=(1, 7), split="train")
    >>> X_test, y_test = load_digits(digits=(1, 7), split="test")
    >>> rab = RABClassifier(LogisticRegression(), n_estimators=20, sigma=1.0, alpha=0.05,
    ...                     random_state=0)
    >>> backdoor = BackdoorAttack(target_label=1, variant="clean_label", mode="modify",
    ...                           strength=0.1, random_state=0)
    >>> rows = evaluate_under_attack(rab, backdoor, X, y, X_test, y_test, budgets=[0, 4])
    >>> [(r["budget"], round(r["cost"], 2), r["violation"]) for r in rows]
    [(0, 0.1, False), (4, 0.22, False)]
    """
    if on_violation not in ("warn", "raise"):
        raise ValueError(f"on_violation must be 'warn' or 'raise', got {on_violation!r}.")
    smoothing, X, y, X_test, y_test, budgets, rows, X_eval, row_key = _checked(
        estimator, attack, X, y, X_test, y_test, budgets, row_key
    )
    X_clean, y_eval = X_test[rows], y_test[rows]
    clean_model = _fit(estimator, X, y, row_key)
    if _radius_unit(estimator) == PAIR_UNIT:  # the frontier, not its r = 0 column
        unit = PAIR_UNIT
    else:
        unit = clean_model.certify(X_clean[:1]).unit
    if _covers_test_input(estimator, unit):
        X_certified = X_clean
        delta = (X_eval.astype(np.float64) - X_clean.astype(np.float64)).reshape(rows.size, -1)
        input_norm = np.sqrt(np.sum(delta**2, axis=1))
    else:
        X_certified = X_eval
        input_norm = np.zeros(rows.size)
    cert = clean_model.certify(X_certified)
    frontier = FrontierCheck(clean_model, X_certified, row_key) if unit == PAIR_UNIT else None
    # A certified prediction is held to the certificate's class. The others are compared with
    # the clean model's own predict: a smoothing classifier's certify selects its class on
    # separate draws and may name another class where it abstains, which no attack caused.
    clean_prediction = clean_model.predict(X_certified)
    attack_model = _attack_model(estimator, clean_model, smoothing, attack, X, y, row_key)
    correct = (cert.prediction == y_eval) & ~cert.abstain
    table = []
    for budget in budgets:
        if attack.per_target:
            results, costs, predictions, accuracies = [], [], [], []
            for i in range(X_eval.shape[0]):
                result = attack.poison(X, y, budget, model=attack_model, target=X_eval[i])
                costs.append(_training_cost(result, budget, attack, unit))
                model = _refit(estimator, clean_model, result, row_key)
                predictions.append(model.predict(X_eval[i : i + 1])[0])
                accuracies.append(model.score(X_test, y_test))
                results.append(result)
            train_cost, prediction = np.asarray(costs), np.asarray(predictions)
            accuracy = float(np.mean(accuracies))
        else:
            result = attack.poison(X, y, budget, model=attack_model)
            train_cost = _training_cost(result, budget, attack, unit)
            model = _refit(estimator, clean_model, result, row_key)
            prediction = model.predict(X_eval)
            accuracy = float(model.score(X_test, y_test))
            results = [result] * X_eval.shape[0]
        cost = _point_costs(train_cost, input_norm, unit)
        if frontier is None:
            certified = _certified(cert, cost)
            failure = _failure_bound(smoothing, cert, cost, clean_model)
        else:
            slack = frontier.slack(cost[:, 0].astype(np.int64), cost[:, 1])
            certified = ~cert.abstain & (slack >= 0)
            failure = frontier.failure_bound(results, np.maximum(slack, 0))
        changed = np.where(certified, prediction != cert.prediction, prediction != clean_prediction)
        success = attack.succeeded(clean_prediction, prediction, y_eval)
        n_certified = int(certified.sum())
        n_certified_changed = int(np.sum(changed & certified))
        bounds = failure[certified]
        n_tolerated = _tolerated(smoothing, bounds)
        row = {
            "attack": type(attack).__name__,
            "estimator": type(estimator).__name__,
            "budget": budget,
            "budget_unit": attack.unit,
            "cost": _largest(cost, unit),
            "radius_unit": unit,
            "n_points": int(X_eval.shape[0]),
            "clean_accuracy": accuracy,
            "attack_success": float(np.mean(success)),
            "certified_accuracy": float(np.mean(correct & certified)),
            "n_certified": n_certified,
            "certified_changed": _fraction(n_certified_changed, n_certified),
            "n_certified_changed": n_certified_changed,
            "failure_bound": _mean_bound(smoothing, bounds),
            "n_tolerated": n_tolerated,
            "changed_tolerance": _fraction(n_tolerated, n_certified),
            "uncertified_changed": _fraction(
                int(np.sum(changed & ~certified)), int(np.sum(~certified))
            ),
            "violation": n_certified_changed > n_tolerated,
        }
        table.append(row)
        if row["violation"]:
            message = (
                f"{row['attack']} at budget {budget} {attack.unit} (cost up to {row['cost']} "
                f"{unit}) changed {n_certified_changed} of the {n_certified} predictions "
                f"{row['estimator']} certified against it"
            )
            if smoothing is None:
                message += "."
            else:
                message += (
                    f", more than the {n_tolerated} a certificate holding with probability "
                    f"1 - alpha = {1 - smoothing.alpha:g} leaves room for."
                )
            if on_violation == "raise":
                raise CertificateViolationError(message)
            warnings.warn(message, CertificateViolationWarning, stacklevel=2)
    return table
