"""Train the members of a certified ensemble from a member plan, and read their outputs.

This is the engine behind :class:`sklearn_certify.DPAClassifier` and every certified ensemble
built on :class:`BaseCertifiedEnsemble`. A :class:`MemberPlan` describes the run: which members
(ids and total count), the rows each member sees (index arrays into one shared ``X``, or all
rows), and an optional per-member view of a batch (noise, say). Two engines fit the members:

``"loop"``
    :func:`sklearn.base.clone` per member, seeded from ``(seed, member_id)`` alone,
    fitted through :class:`sklearn.utils.parallel.Parallel` with members batched per task, so
    ``n_jobs`` and every joblib backend (loky, threading, dask, ray) work. Any sklearn
    classifier, Pipeline or skorch net.
``"vectorized"``
    skorch nets only: all members of a chunk are stacked with :mod:`torch.func` and trained
    together with one batched forward/backward per step on the net's ``device``; they come
    back as a :class:`StackedMembers`.

Both keep **partition independence** (user guide, scaling page): member ``m`` is a
deterministic function of its rows of ``X`` and ``y`` (through the view, if any), the base
``seed`` (an estimator's ``seed_``, drawn once from its ``random_state``) and its member id.
Results do not depend on ``n_jobs``: loop-engine members train with one thread, and the
vectorized engine's kernels are batched over members.
"""

from __future__ import annotations

from sklearn_certify.ensemble._augment import KeyedAugmentation
from sklearn_certify.ensemble._base import (
    AbstainMember,
    BaseCertifiedEnsemble,
    ConstantMember,
    DegenerateMemberWarning,
)
from sklearn_certify.ensemble._certified_net import CertifiedNeuralNetClassifier
from sklearn_certify.ensemble._dp_step import DPSGDStep
from sklearn_certify.ensemble._fit import (
    ENGINES,
    EngineFallbackWarning,
    fit_members,
    member_outputs,
)
from sklearn_certify.ensemble._plan import ALL_ROWS, MemberPlan
from sklearn_certify.ensemble._seeding import member_seed
from sklearn_certify.ensemble._stacked import StackedMembers
from sklearn_certify.ensemble._step import TrainingStep
from sklearn_certify.ensemble._threads import MEMBER_THREADS
from sklearn_certify.ensemble._vote import BOUNDS, BaseVoteEnsemble

__all__ = [
    "ALL_ROWS",
    "BOUNDS",
    "ENGINES",
    "MEMBER_THREADS",
    "AbstainMember",
    "BaseCertifiedEnsemble",
    "BaseVoteEnsemble",
    "CertifiedNeuralNetClassifier",
    "ConstantMember",
    "DPSGDStep",
    "DegenerateMemberWarning",
    "EngineFallbackWarning",
    "KeyedAugmentation",
    "MemberPlan",
    "StackedMembers",
    "TrainingStep",
    "fit_members",
    "member_outputs",
    "member_seed",
]
