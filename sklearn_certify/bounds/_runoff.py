"""Run-off election certificates (Rezaei et al., 2023) over DPA and FA members.

Round 1: every member votes for its top-scoring class (first maximum); the two
classes with most votes (ties to the smaller index) go to a run-off. Round 2:
each member prefers the first finalist if it scores it strictly higher (a tie
counts for the second, as in the official code); the finalist with more
preferences wins, ties to the smaller index.

An *abstaining* member (an empty partition) takes part in neither round: it
votes for no class and prefers neither finalist. A poison may turn any member
into a voter with any scores or into an abstainer; each such change moves a
round-one gap by at most 2 (and two gaps by at most 2 + 1) and the run-off
margin by at most 2, so the bounds below hold with abstainers too.
"""

from __future__ import annotations

import numpy as np

from sklearn_certify._validation import check_scalar_int
from sklearn_certify.bounds._fa import fa_bucket_learners, resolve_shifts

__all__ = ["fa_runoff_radius", "runoff_predict", "runoff_radius"]

_INF = np.iinfo(np.int64).max // 4


def _check_scores(scores) -> np.ndarray:
    scores = np.asarray(scores)
    if scores.ndim != 3:
        raise ValueError(
            f"scores must have shape (n_samples, n_members, n_classes), got {scores.shape}."
        )
    if not np.issubdtype(scores.dtype, np.number) or np.issubdtype(
        scores.dtype, np.complexfloating
    ):
        raise ValueError(f"scores must be real-valued, got dtype {scores.dtype}.")
    if scores.shape[2] < 2 or scores.shape[1] < 1:
        raise ValueError(f"scores needs at least 1 member and 2 classes, got shape {scores.shape}.")
    if np.issubdtype(scores.dtype, np.floating) and np.any(np.isnan(scores)):
        raise ValueError("scores must not contain NaN; check the members' outputs.")
    return scores


def _check_abstain(abstain, scores: np.ndarray) -> np.ndarray:
    """``abstain`` as a boolean (n_samples, n_members) mask (``None``: nobody abstains)."""
    n_samples, n_members, _ = scores.shape
    if abstain is None:
        return np.zeros((n_samples, n_members), dtype=bool)
    mask = np.asarray(abstain)
    if mask.dtype != bool:
        raise TypeError(f"abstain must be a boolean array, got dtype {mask.dtype}.")
    if mask.shape not in ((n_members,), (n_samples, n_members)):
        raise ValueError(
            f"abstain must have shape (n_members,) = ({n_members},) or (n_samples, n_members) "
            f"= ({n_samples}, {n_members}), got {mask.shape}."
        )
    return np.broadcast_to(mask, (n_samples, n_members))


def _ceil_half(x):
    return -(-x // 2)


def _election(scores, abstain):
    """Round-1 votes and the run-off outcome; all arrays vectorized over samples.

    Returns the members' round-1 votes (-1 for abstainers), the vote counts, the prediction,
    the other finalist, ``prefers[i, j, c]`` (member j is voting and scores the prediction
    strictly above class c) and the number of voting members per sample.
    """
    n_samples, _, n_classes = scores.shape
    rows = np.arange(n_samples)
    voting = ~abstain
    first = np.where(voting, np.argmax(scores, axis=2), -1)  # first maximum: smaller index
    votes = np.zeros((n_samples, n_classes), dtype=np.int64)
    sample_of, member_of = np.nonzero(voting)
    np.add.at(votes, (sample_of, first[sample_of, member_of]), 1)
    order = np.argsort(-votes, axis=1, kind="stable")
    m1, m2 = order[:, 0], order[:, 1]
    n_voting = voting.sum(axis=1)
    s_m1 = scores[rows, :, m1]
    s_m2 = scores[rows, :, m2]
    e = 2 * np.sum((s_m1 > s_m2) & voting, axis=1) - n_voting
    prediction = np.where(e > 0, m1, np.where(e < 0, m2, np.minimum(m1, m2)))
    second = m1 + m2 - prediction
    prefers = (scores[rows, :, prediction][:, :, None] > scores) & voting[:, :, None]
    return first, votes, prediction, second, prefers, n_voting


def runoff_predict(scores, abstain=None) -> np.ndarray:
    """Run-off election prediction from members' real-valued outputs.

    Parameters
    ----------
    scores : array-like of shape (n_samples, n_members, n_classes)
        Member outputs (logits, probabilities or decision values).
    abstain : array-like of bool of shape (n_members,) or (n_samples, n_members), default=None
        Members that take part in neither round (their scores are ignored).

    Returns
    -------
    ndarray of shape (n_samples,)
        Class index elected in the run-off.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify.bounds import runoff_predict
    >>> ranks = [[0, 1, 2], [0, 2, 1], [1, 2, 0], [1, 2, 0], [2, 1, 0]]
    >>> scores = np.array([[[3 - r.index(c) for c in range(3)] for r in ranks]])
    >>> runoff_predict(scores).tolist()
    [1]
    """
    scores = _check_scores(scores)
    return _election(scores, _check_abstain(abstain, scores))[2].astype(np.int64)


def _pair_cost(g1, g2):
    """Poisons needed to close gaps g1 and g2 (>= 0) when each poison cuts (2, 1) or (1, 2)."""
    return np.maximum(np.maximum(_ceil_half(g1), _ceil_half(g2)), -(-(g1 + g2) // 3))


def runoff_radius(scores, abstain=None) -> tuple[np.ndarray, np.ndarray]:
    """Run-off election prediction and its DPA certified radius.

    Each poison changes one member arbitrarily (its vote and its ranking). The
    prediction ``p`` (run-off winner) falls only if (R1) two other classes
    both overtake ``p`` in round 1, or (R2) some class ``c`` reaches the
    run-off and beats ``p`` in it. The certificate is the cheapest such attack
    minus one; the cost of R1 uses the closed form
    ``max(ceil(g1/2), ceil(g2/2), ceil((g1+g2)/3))`` of the official DP table.

    Parameters
    ----------
    scores : array-like of shape (n_samples, n_members, n_classes)
        Each member's real-valued outputs, in member (partition) order.
    abstain : array-like of bool of shape (n_members,) or (n_samples, n_members), default=None
        Members that take part in neither round (empty partitions); their scores are ignored.

    Returns
    -------
    prediction : ndarray of shape (n_samples,)
        Run-off winner.
    radius : ndarray of shape (n_samples,)
        int64 certified number of inserted plus deleted training samples.

    Examples
    --------
    Seven members ranking 3x ``0>1>2``, 2x ``1>0>2``, 2x ``2>0>1``: plain DPA
    certifies 0 poisons, the run-off certifies 1.

    >>> import numpy as np
    >>> from sklearn_certify.bounds import runoff_radius
    >>> ranks = 3 * [[0, 1, 2]] + 2 * [[1, 0, 2]] + 2 * [[2, 0, 1]]
    >>> scores = np.array([[[3 - r.index(c) for c in range(3)] for r in ranks]])
    >>> runoff_radius(scores)
    (array([0]), array([1]))
    """
    scores = _check_scores(scores)
    n_samples, _, n_classes = scores.shape
    rows = np.arange(n_samples)
    classes = np.arange(n_classes)
    _, votes, prediction, second, prefers, n_voting = _election(
        scores, _check_abstain(abstain, scores)
    )

    def gap(a):  # votes each class must gain on a[i] to overtake it in round 1
        return votes[rows, a][:, None] - votes + (classes[None, :] > a[:, None])

    other = classes[None, :] != prediction[:, None]
    g_pred = np.maximum(gap(prediction), 0)
    cost1 = _pair_cost(g_pred[:, :, None], g_pred[:, None, :])
    pair_ok = other[:, :, None] & other[:, None, :] & (classes[:, None] != classes[None, :])[None]
    cert_r1 = np.where(pair_ok, cost1, _INF).reshape(n_samples, -1).min(axis=1)

    e_pred = 2 * prefers.sum(axis=1) - n_voting[:, None]  # E_p[c] over the voting members
    reach = _ceil_half(np.maximum(gap(second), 0))
    win = _ceil_half(np.maximum(e_pred + (classes[None, :] > prediction[:, None]), 0))
    cert_r2 = np.where(other, np.maximum(reach, win), _INF).min(axis=1)
    radius = np.minimum(cert_r1, cert_r2) - 1
    return prediction.astype(np.int64), np.maximum(radius, 0).astype(np.int64)


def _need(gap, power):
    """Smallest r whose r largest powers sum to >= gap (0 when gap <= 0).

    ``gap`` has shape (...,), ``power`` shape (..., n_buckets).
    """
    ordered = -np.sort(-power, axis=-1)
    cumulative = np.cumsum(ordered, axis=-1)
    reached = cumulative >= gap[..., None]
    r = np.where(reached.any(axis=-1), np.argmax(reached, axis=-1) + 1, _INF)
    return np.where(gap <= 0, 0, r)


def fa_runoff_radius(
    scores, n_partitions: int, spread: int, shifts=None, abstain=None
) -> tuple[np.ndarray, np.ndarray]:
    """Run-off election prediction and its Finite Aggregation certified radius.

    The election is as in :func:`runoff_radius` over all ``k*d`` learners; a
    poison now changes one bucket, i.e. up to ``spread`` learners, and the
    costs are computed from per-bucket powers as in :func:`fa_radius`.

    Parameters
    ----------
    scores : array-like of shape (n_samples, n_partitions * spread, n_classes)
        Each learner's real-valued outputs, **in learner-id order**.
    n_partitions, spread : int
        ``k`` and ``d``.
    shifts : array-like of shape (spread,), default=None
        Bucket-to-learner shifts; ``None`` uses the official :func:`fa_shifts`.
    abstain : array-like of bool of shape (n_learners,) or (n_samples, n_learners), default=None
        Learners that take part in neither round (all their buckets empty).

    Returns
    -------
    prediction : ndarray of shape (n_samples,)
        Run-off winner.
    radius : ndarray of shape (n_samples,)
        int64 certified number of inserted plus deleted training samples.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify.bounds import fa_runoff_radius
    >>> ranks = ["210", "021", "012", "021", "021", "021"]
    >>> scores = np.array([[[3 - r.index(str(c)) for c in range(3)] for r in ranks]])
    >>> fa_runoff_radius(scores, n_partitions=3, spread=2)
    (array([0]), array([1]))
    """
    scores = _check_scores(scores)
    k = check_scalar_int("n_partitions", n_partitions, min_value=1)
    d = check_scalar_int("spread", spread, min_value=1)
    shifts = resolve_shifts(k, d, shifts)
    n_samples, n_learners, n_classes = scores.shape
    if n_learners != k * d:
        raise ValueError(
            f"scores has {n_learners} members but n_partitions * spread = {k * d}; pass every "
            "learner's outputs in learner-id order."
        )
    bucket_learners = fa_bucket_learners(k, d, shifts)
    rows = np.arange(n_samples)
    classes = np.arange(n_classes)
    mask = _check_abstain(abstain, scores)
    first, votes, prediction, second, prefers, n_voting = _election(scores, mask)
    onehot = (first[:, :, None] == classes).astype(np.int64)  # (n, L, C); abstainers: none
    per_bucket = onehot[:, bucket_learners, :].sum(axis=2)  # (n, B, C): learners voting c
    # an abstaining learner can lower a run-off margin by 1 (it starts preferring the other)
    abstaining = mask[:, bucket_learners].sum(axis=2)  # (n, B)

    def to(a, m):
        """Poisoned buckets needed for class m[i] to overtake a[i] in round 1."""
        g = votes[rows, a] - votes[rows, m] + (m > a)
        power = d + per_bucket[rows, :, a] - per_bucket[rows, :, m]
        return _need(g, power)

    best = np.full(n_samples, _INF, dtype=np.int64)
    for c1 in range(n_classes):
        c1v = np.full(n_samples, c1)
        # R2: class c1 reaches the run-off against the current runner-up and wins it.
        reach = np.where(second == c1, 0, to(second, c1v))
        pref_bucket = 2 * prefers[:, :, c1][:, bucket_learners].sum(axis=2) + abstaining
        margin = 2 * prefers[:, :, c1].sum(axis=1) - n_voting + (c1 > prediction)
        win = _need(margin, pref_bucket)
        best = np.where(prediction != c1, np.minimum(best, np.maximum(reach, win)), best)
        for c2 in range(c1 + 1, n_classes):
            c2v = np.full(n_samples, c2)
            g1 = votes[rows, prediction] - votes[:, c1] + (c1 > prediction)
            g2 = votes[rows, prediction] - votes[:, c2] + (c2 > prediction)
            power = (
                d
                + 2 * per_bucket[rows, :, prediction]
                - per_bucket[:, :, c1]
                - per_bucket[:, :, c2]
            )
            both = np.maximum(
                np.maximum(to(prediction, c1v), to(prediction, c2v)), _need(g1 + g2, power)
            )
            valid = (prediction != c1) & (prediction != c2)
            best = np.where(valid, np.minimum(best, both), best)
    radius = np.minimum(best, k * d + 1) - 1
    return prediction.astype(np.int64), np.maximum(radius, 0).astype(np.int64)
