"""The loop engine: clone, seed and fit one estimator per subset through joblib."""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.utils import _safe_indexing
from sklearn.utils.parallel import Parallel, delayed

from sklearn_certify.ensemble._seeding import (
    seed_random_state_params,
    shuffle_seed,
    sklearn_seed,
    torch_init_seed,
)
from sklearn_certify.ensemble._skorch import configure_member_net, nested_nets, torch_seeded


def make_member(estimator, random_state: int, member_id: int, n_classes: int):
    """An unfitted, seeded, configured clone of ``estimator`` for member ``member_id``."""
    member = clone(estimator)
    seed_random_state_params(member, sklearn_seed(random_state, member_id))
    for net in nested_nets(member):
        configure_member_net(net, n_classes, shuffle_seed(random_state, member_id))
    return member


def fit_one_member(estimator, X, y, indices, random_state: int, member_id: int, n_classes: int):
    """Fit member ``member_id`` on ``X[indices], y[indices]`` (rows in exactly that order)."""
    member = make_member(estimator, random_state, member_id, n_classes)
    X_m = _safe_indexing(X, indices)
    y_m = y[indices]
    nets = nested_nets(member)
    if nets:
        with torch_seeded(torch_init_seed(random_state, member_id), nets):
            member.fit(X_m, y_m)
    else:
        member.fit(X_m, y_m)
    return member


def fit_loop(estimator, X, y, subsets, member_ids, *, n_classes, random_state, n_jobs, verbose):
    """Fit one member per subset with ``sklearn.utils.parallel.Parallel``."""
    jobs = (
        delayed(fit_one_member)(estimator, X, y, idx, random_state, int(mid), n_classes)
        for idx, mid in zip(subsets, member_ids, strict=True)
    )
    parallel = Parallel(n_jobs=n_jobs, verbose=max(0, int(verbose) - 1), return_as="generator")
    results = parallel(jobs)
    if verbose:
        from tqdm.auto import tqdm

        results = tqdm(results, total=len(subsets), desc="fitting members", unit="member")
    return list(results)


def as_index_array(subset, n_samples: int, position: int) -> np.ndarray:
    """Validate one subset: a 1-d array of in-range integer row indices."""
    arr = np.asarray(subset)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(
            f"subsets[{position}] must be a 1-d array of integer row indices, got dtype "
            f"{arr.dtype} and shape {arr.shape}."
        )
    if arr.size == 0:
        raise ValueError(
            f"subsets[{position}] is empty: a member cannot be trained on no rows. Leave empty "
            "partitions out of the call (pass member_ids for the others) and give them an "
            "abstaining member."
        )
    if arr.min() < -n_samples or arr.max() >= n_samples or arr.min() < 0:
        raise ValueError(
            f"subsets[{position}] holds row indices outside [0, {n_samples}); indices must address "
            "rows of X."
        )
    return arr.astype(np.intp, copy=False)
