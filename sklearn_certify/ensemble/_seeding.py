"""Per-member seeds derived only from ``(random_state, member_id)``.

Every source of randomness of ensemble member ``m`` (weight initialisation, batch order, the
``random_state`` parameters of sklearn estimators) is drawn from
``numpy.random.SeedSequence([random_state, member_id, purpose])``. Nothing else enters, so a member
is reproducible on its own: adding, removing or resizing other members cannot change it
(DESIGN.md section 4.1).
"""

from __future__ import annotations

import numbers

import numpy as np

# Purposes (third entropy word) so the streams of one member never overlap.
_SKLEARN = 0
_TORCH_INIT = 1
_SHUFFLE = 2
_CHUNK_STEP = 3


def check_member_seed_args(random_state, member_ids, n_subsets: int) -> np.ndarray:
    """Validate ``random_state`` and ``member_ids``; return ``member_ids`` as an int64 array."""
    if isinstance(random_state, (bool, np.bool_)) or not isinstance(random_state, numbers.Integral):
        raise TypeError(
            "random_state must be a non-negative int (the ensemble's base seed), got "
            f"{random_state!r}; meta-estimators draw it once from check_random_state(...)."
        )
    if random_state < 0:
        raise ValueError(f"random_state must be a non-negative int, got {random_state}.")
    if member_ids is None:
        return np.arange(n_subsets, dtype=np.int64)
    ids = np.asarray(member_ids)
    if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
        raise TypeError(
            "member_ids must be a 1-d sequence of non-negative ints (one per subset), got "
            f"{member_ids!r}."
        )
    ids = ids.astype(np.int64)
    if ids.size != n_subsets:
        raise ValueError(
            f"member_ids has {ids.size} entries but {n_subsets} subsets were given; pass one id "
            "per subset."
        )
    if ids.size and ids.min() < 0:
        raise ValueError("member_ids must be non-negative ints.")
    if np.unique(ids).size != ids.size:
        raise ValueError("member_ids must be unique: two members would share all their randomness.")
    return ids


def _sequence(random_state: int, member_id: int, purpose: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(random_state), int(member_id), purpose])


def sklearn_seed(random_state: int, member_id: int) -> int:
    """Int in ``[0, 2**31)`` seeding the ``random_state`` params of member ``member_id``."""
    return int(_sequence(random_state, member_id, _SKLEARN).generate_state(1)[0] >> 1)


def torch_init_seed(random_state: int, member_id: int) -> int:
    """Seed of torch's generator while member ``member_id`` is initialised and trained."""
    state = _sequence(random_state, member_id, _TORCH_INIT).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) | (int(state[1]) >> 1))


def shuffle_seed(random_state: int, member_id: int) -> int:
    """Seed of the ``torch.Generator`` that orders member ``member_id``'s training batches."""
    state = _sequence(random_state, member_id, _SHUFFLE).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) | (int(state[1]) >> 1))


def chunk_step_seed(random_state: int, chunk: int, step: int) -> int:
    """Seed of torch's generator for step ``step`` of vectorized chunk ``chunk`` (dropout).

    The chunk is ``member_id // chunk_size`` and a member's slot in it is
    ``member_id % chunk_size``, so what a member draws is a function of its own id (and the
    chunk size, which depends on no data).
    """
    words = [int(random_state), int(chunk), int(step), _CHUNK_STEP]
    state = np.random.SeedSequence(words).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) | (int(state[1]) >> 1))


def seed_random_state_params(estimator, seed: int) -> None:
    """Set every ``random_state`` / ``*__random_state`` parameter of ``estimator`` in place.

    Parameters are visited in sorted order and each receives an int drawn from a
    ``numpy.random.RandomState(seed)``, as :class:`sklearn.ensemble.BaggingClassifier` does.
    """
    rng = np.random.RandomState(seed)
    to_set = {}
    for key in sorted(estimator.get_params(deep=True)):
        if key == "random_state" or key.endswith("__random_state"):
            to_set[key] = int(rng.randint(np.iinfo(np.int32).max))
    if to_set:
        estimator.set_params(**to_set)
