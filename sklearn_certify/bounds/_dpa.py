"""Deep Partition Aggregation certificate (Levine & Feizi, 2021, Theorem 1)."""

from __future__ import annotations

import numpy as np

from sklearn_certify._validation import check_counts

__all__ = ["dpa_radius", "plurality_vote"]


def plurality_vote(votes: np.ndarray) -> np.ndarray:
    """Class index with the most votes in each row; ties go to the smaller index.

    Parameters
    ----------
    votes : ndarray of shape (n_samples, n_classes)
        Vote counts.

    Returns
    -------
    ndarray of shape (n_samples,)
        int64 class indices.

    Examples
    --------
    >>> from sklearn_certify.bounds import plurality_vote
    >>> plurality_vote([[2, 6, 6], [4, 4, 2]]).tolist()
    [1, 0]
    """
    votes = check_counts("votes", votes, ndim=2)
    return np.argmax(votes, axis=1).astype(np.int64)


def dpa_radius(votes) -> tuple[np.ndarray, np.ndarray]:
    """Plurality prediction and DPA certified radius from per-class vote counts.

    Each poisoned training sample (an insertion or a deletion) lands in one
    partition, so it can change at most one member's vote. The plurality
    class ``c`` (ties to the smaller index) provably survives any poisoning
    whose symmetric difference with the clean training set is at most

    .. math::

        \\rho = \\min_{c' \\ne c} \\left\\lfloor
        \\frac{n_c - n_{c'} - \\mathbb{1}[c' < c]}{2} \\right\\rfloor .

    Votes need not sum to the number of members: a member that abstains
    (e.g. trained on an empty partition) simply votes for no class, and a
    poison that makes it vote closes a gap by one, which the bound covers.

    Parameters
    ----------
    votes : array-like of shape (n_samples, n_classes)
        Non-negative integer vote counts, ``n_classes >= 2``.

    Returns
    -------
    prediction : ndarray of shape (n_samples,)
        Class index with the most votes, ties to the smaller index.
    radius : ndarray of shape (n_samples,)
        int64 certified number of inserted plus deleted training samples.

    Examples
    --------
    >>> from sklearn_certify.bounds import dpa_radius
    >>> prediction, radius = dpa_radius([[5, 3, 2], [3, 5, 2], [4, 4, 2]])
    >>> prediction.tolist(), radius.tolist()
    ([0, 1, 0], [1, 0, 0])
    """
    votes = check_counts("votes", votes, ndim=2)
    if votes.shape[1] < 2:
        raise ValueError(f"votes must have at least 2 class columns, got {votes.shape[1]}.")
    prediction = np.argmax(votes, axis=1)
    rows = np.arange(votes.shape[0])
    classes = np.arange(votes.shape[1])
    winner_votes = votes[rows, prediction]
    # [c' < c]: the challenger wins ties against c when it has the smaller index.
    gaps = winner_votes[:, None] - votes - (classes[None, :] < prediction[:, None])
    gaps[rows, prediction] = np.iinfo(np.int64).max
    radius = np.min(gaps, axis=1) // 2
    return prediction.astype(np.int64), radius.astype(np.int64)
