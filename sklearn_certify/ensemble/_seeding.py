"""Per-member seeds derived only from ``(seed, member_id, purpose)``.

``seed`` is the ensemble's base seed (``seed_``, drawn once from the user's ``random_state``).
Every source of randomness of ensemble member ``m`` (weight initialisation, batch order, the
``random_state`` parameters of sklearn estimators, the noise a member view adds) is drawn from
``numpy.random.SeedSequence([seed, member_id, purpose])``, through :func:`member_seed` (and
:func:`sklearn_seed`, its 31-bit sibling for sklearn parameters). Nothing else enters, so a
member is reproducible on its own: adding, removing or resizing other members cannot change it
(see "Partition independence" in the user guide's scaling page).
"""

from __future__ import annotations

import hashlib
import numbers

import numpy as np

__all__ = ["PURPOSES", "member_seed"]

#: The purposes the engine itself draws seeds for, and their entropy words. Any other string is
#: a user purpose, mapped to a word of its own (see :func:`member_seed`).
PURPOSES = {
    "sklearn": 0,  # random_state parameters of sklearn estimators (31-bit, see sklearn_seed)
    "torch_init": 1,  # torch's generator while a member is initialised and trained
    "shuffle": 2,  # the torch.Generator that orders a member's batches
    "view": 4,  # a member view applied to training batches
    "test_view": 5,  # a member view applied to the rows being scored
    "step": 6,  # a member's training step and augmentation (keyed draws, see TrainingStep)
}
_CHUNK_STEP = 3  # vectorized chunks' dropout draws, keyed by chunk and step, not by member
_USER_PURPOSE_BIT = 1 << 31


def _purpose_word(purpose) -> int:
    if not isinstance(purpose, str) or not purpose:
        raise TypeError(f"purpose must be a non-empty string, got {purpose!r}.")
    if purpose in PURPOSES:
        return PURPOSES[purpose]
    digest = hashlib.sha256(purpose.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little") | _USER_PURPOSE_BIT


def member_seed(seed: int, member_id: int, purpose: str) -> int:
    """The seed of one source of randomness of one ensemble member.

    Derived from ``numpy.random.SeedSequence([seed, member_id, word])``, where ``word`` is
    fixed by ``purpose``, and nothing else: the same arguments give the same seed in every
    process, on every platform, whatever other members exist. The engines draw every member's
    randomness through it; use it in a member view
    (:class:`~sklearn_certify.ensemble.MemberPlan`) or any code that must draw a member's
    randomness the way the engine draws it, never from a global generator.

    Parameters
    ----------
    seed : int
        The ensemble's non-negative base seed (e.g. ``DPAClassifier.seed_``, drawn from the
        user's ``random_state``).
    member_id : int
        The member's id, ``>= 0``.
    purpose : str
        What the seed is for. The engine's own purposes are ``"torch_init"``, ``"shuffle"``,
        ``"view"`` (the seeds a member view receives while training), ``"test_view"``
        (while scoring) and ``"step"`` (the key of a member's training step and
        augmentation); any other non-empty string names a purpose of the caller's, mapped to
        an entropy word of its own (the first four bytes of its SHA-256 digest, high bit set,
        so it never equals an engine purpose).

    Returns
    -------
    int
        A seed in ``[0, 2**63)``, e.g. for ``torch.Generator().manual_seed``.

    Examples
    --------
    >>> from sklearn_certify.ensemble import member_seed
    >>> member_seed(0, 3, "view") == member_seed(0, 3, "view")
    True
    >>> len({member_seed(0, 3, "view"), member_seed(0, 4, "view"), member_seed(1, 3, "view"),
    ...      member_seed(0, 3, "test_view"), member_seed(0, 3, "my noise")})
    5
    """
    word = _purpose_word(purpose)
    return _seed63(_member_sequence(seed, member_id, word))


def _member_sequence(seed: int, member_id: int, word: int) -> np.random.SeedSequence:
    """``SeedSequence([seed, member_id, word])`` after checking ``seed`` and ``member_id``.

    Every per-member seed is derived here (:func:`member_seed`, :func:`sklearn_seed`).
    """
    seed = _check_non_negative_int("seed", seed)
    member_id = _check_non_negative_int("member_id", member_id)
    return np.random.SeedSequence([seed, member_id, word])


def _check_non_negative_int(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a non-negative int, got {value!r}.")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value}.")
    return int(value)


def _seed63(sequence: np.random.SeedSequence) -> int:
    state = sequence.generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) | (int(state[1]) >> 1))


def sklearn_seed(seed: int, member_id: int) -> int:
    """Int in ``[0, 2**31)`` seeding the ``random_state`` params of member ``member_id``."""
    sequence = _member_sequence(seed, member_id, PURPOSES["sklearn"])
    return int(sequence.generate_state(1)[0] >> 1)


def chunk_step_seed(seed: int, chunk: int, step: int) -> int:
    """Seed of torch's generator for step ``step`` of vectorized chunk ``chunk`` (dropout).

    Keyed by chunk and step, not by member: the chunk is ``member_id // chunk_size`` and a
    member's slot in it is ``member_id % chunk_size``, so what a member draws is a function of
    its own id (and the chunk size, which depends on no data).
    """
    return _seed63(np.random.SeedSequence([int(seed), int(chunk), int(step), _CHUNK_STEP]))


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
