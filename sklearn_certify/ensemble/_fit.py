"""Train the members of a certified ensemble from a member plan, and read their outputs.

:func:`fit_members` checks its inputs and hands them to :func:`train_members`, the training
entry that :class:`~sklearn_certify.ensemble.BaseCertifiedEnsemble` calls after validating
once at its own boundary; :func:`member_outputs` likewise checks and hands over to the
scoring of :mod:`._outputs`.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from sklearn_certify.ensemble._loop import fit_loop
from sklearn_certify.ensemble._net_config import unsupported_reason
from sklearn_certify.ensemble._outputs import member_outputs_impl
from sklearn_certify.ensemble._plan import MemberPlan
from sklearn_certify.ensemble._skorch import check_net, is_skorch_net, nested_nets
from sklearn_certify.ensemble._vectorized import fit_vectorized

__all__ = [
    "ENGINES",
    "EngineFallbackWarning",
    "check_engine",
    "check_n_classes",
    "check_nets",
    "fit_members",
    "member_outputs",
    "train_members",
]

#: The training engines :func:`fit_members` accepts.
ENGINES = ("auto", "loop", "vectorized")


class EngineFallbackWarning(UserWarning):
    """The vectorized engine cannot train this net; the loop engine is used instead."""


def check_n_classes(n_classes) -> int:
    """``n_classes`` as an int >= 1, or a clear error."""
    if (
        isinstance(n_classes, (bool, np.bool_))
        or not isinstance(n_classes, numbers.Integral)
        or n_classes < 1
    ):
        raise ValueError(f"n_classes must be a positive int, got {n_classes!r}.")
    return int(n_classes)


def _check_inputs(estimator, X, y, plan, n_classes, engine):
    """What :func:`fit_members` is given, checked; returns ``(y, plan, n_classes)``."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}.")
    if not hasattr(estimator, "fit"):
        raise TypeError(
            f"estimator must be an unfitted estimator with a fit method, got {estimator!r}."
        )
    n_classes = check_n_classes(n_classes)
    if not hasattr(X, "shape") or not hasattr(X, "__getitem__"):
        raise TypeError("X must be an array with a leading sample axis (e.g. a numpy ndarray).")
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise TypeError(
            f"y must be a 1-d array of integer-encoded labels, got dtype {y.dtype} and shape "
            f"{y.shape}; "
            "encode labels with sklearn.preprocessing.LabelEncoder first."
        )
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]} labels.")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(
            f"y must hold encoded labels in 0..{n_classes - 1}, got values in "
            f"[{y.min()}, {y.max()}]."
        )
    if not isinstance(plan, MemberPlan):
        plan = MemberPlan(plan)
    plan.check_rows(X.shape[0])
    check_nets(estimator)
    check_engine(estimator, engine)
    return y.astype(np.int64, copy=False), plan, n_classes


def check_nets(estimator) -> None:
    """Refuse skorch nets (the estimator or nested in it) whose members would share weights."""
    for i, net in enumerate(nested_nets(estimator)):
        check_net(net, "estimator" if net is estimator else f"estimator (skorch net #{i})")


def check_engine(estimator, engine: str) -> None:
    """``engine="vectorized"`` needs a skorch net."""
    if engine == "vectorized" and not is_skorch_net(estimator):
        raise ValueError(
            "engine='vectorized' needs a skorch NeuralNet/NeuralNetClassifier base estimator; "
            f"got {type(estimator).__name__}. Use engine='loop' (or 'auto')."
        )


def _check_seed(seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"seed must be a non-negative int (the ensemble's base seed), got {seed!r}; "
            "meta-estimators draw it once from check_random_state(random_state)."
        )
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}.")
    return int(seed)


def fit_members(
    estimator,
    X,
    y,
    plan,
    *,
    n_classes: int,
    seed: int,
    engine: str = "auto",
    n_jobs: int | None = None,
    verbose: int = 0,
    chunk_size: int | None = None,
    memory_budget: int | None = None,
):
    """Fit one clone of ``estimator`` per member of ``plan``.

    Parameters
    ----------
    estimator : estimator
        Unfitted base estimator: any sklearn classifier (a Pipeline too) or a skorch
        ``NeuralNet`` / ``NeuralNetClassifier`` whose ``module`` is a class (an ``nn.Module``
        instance is refused: members would share its weights).
    X : ndarray of shape (n_samples, ...)
        Shared training rows (``float32`` for skorch nets). Members index it; it is never copied
        per member (a member with a view trains on its own transformed copy of its rows).
    y : ndarray of shape (n_samples,)
        Integer-encoded labels in ``0..n_classes-1``.
    plan : MemberPlan or list of 1-d int arrays
        The members, their rows and view (see :class:`MemberPlan`). A list of index arrays is
        short for ``MemberPlan(rows=that_list)``.
    n_classes : int
        Number of classes; skorch classifier members get ``classes=range(n_classes)``.
    seed : int
        Non-negative base seed (an estimator's ``seed_``, drawn from its ``random_state``).
        Member ``m``'s randomness is ``member_seed(seed, member_id, purpose)`` for each
        purpose.
    engine : {"auto", "loop", "vectorized"}, default="auto"
        ``"auto"`` uses the vectorized engine for skorch nets it supports and the loop engine
        otherwise. A skorch net the vectorized engine cannot train (BatchNorm modules, random
        ops other than dropout-like ones, callbacks, optimizers other than SGD/Adam, criteria
        other than CrossEntropyLoss/NLLLoss, ``batch_size=-1``) is fitted by the loop engine
        with an :class:`EngineFallbackWarning` naming the reason.
    n_jobs : int, default=None
        Parallel jobs, joblib semantics (``None`` means 1 unless inside
        ``joblib.parallel_config``). Members (loop engine) or chunks of members (vectorized
        engine) are batched into a few tasks per job. Loop-engine members train with
        :data:`MEMBER_THREADS` (one) thread whatever ``n_jobs`` is, and the vectorized
        engine's kernels are batched over members, so the members are bit-identical for every
        ``n_jobs`` and joblib backend (the scaling page of the user guide says exactly what
        is checked).
    verbose : int, default=0
        Show a tqdm progress bar over members (loop engine) or chunks (vectorized engine) when
        > 0 (per step too when > 1).
    chunk_size : int, default=None
        Vectorized engine: members per chunk; member ``i`` trains in chunk
        ``member_ids[i] // chunk_size`` with ``chunk_size`` slots (absent ids are inert slots).
        ``None`` picks it from the module's memory needs (``memory_budget``) and
        ``plan.n_members_total``.
    memory_budget : int, default=None
        Vectorized engine: approximate bytes of training state per chunk (default 512 MiB).

    Returns
    -------
    members : list of fitted estimators or StackedMembers
        One per member of the plan, in plan order. The vectorized engine returns a
        :class:`StackedMembers`: a sequence whose items are fitted skorch nets, built on first
        access, and which :func:`member_outputs` scores without building them.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from sklearn_certify.ensemble import MemberPlan, fit_members
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 3)); y = (X[:, 0] > 0).astype(np.int64)
    >>> plan = MemberPlan([np.arange(0, 30), np.arange(30, 60)], member_ids=[4, 7])
    >>> members = fit_members(DecisionTreeClassifier(), X, y, plan, n_classes=2, seed=0)
    >>> alone = fit_members(DecisionTreeClassifier(), X, y, plan.select([1]), n_classes=2,
    ...                     seed=0)
    >>> len(members), members[1].random_state == alone[0].random_state
    (2, True)

    Every member on all rows, each through its own view (here, noise that depends only on the
    member's seed and the row):

    >>> import torch
    >>> def noise(X, row_ids, member_ids, seeds):
    ...     gen = [torch.Generator().manual_seed(int(s)) for s in seeds]
    ...     return X + torch.stack([0.1 * torch.randn(X.shape[1:], generator=g, dtype=X.dtype)
    ...                             for g in gen])
    >>> plan = MemberPlan("all", member_ids=range(3), view=noise)
    >>> len(fit_members(DecisionTreeClassifier(), X, y, plan, n_classes=2, seed=0))
    3
    """
    y, plan, n_classes = _check_inputs(estimator, X, y, plan, n_classes, engine)
    return train_members(
        estimator,
        X,
        y,
        plan,
        n_classes=n_classes,
        seed=_check_seed(seed),
        engine=engine,
        n_jobs=n_jobs,
        verbose=verbose,
        chunk_size=_positive_or_none(chunk_size, "chunk_size"),
        memory_budget=_positive_or_none(memory_budget, "memory_budget"),
    )


def train_members(
    estimator,
    X,
    y,
    plan: MemberPlan,
    *,
    n_classes: int,
    seed: int,
    engine: str,
    n_jobs,
    verbose: int,
    chunk_size: int | None = None,
    memory_budget: int | None = None,
) -> list:
    """:func:`fit_members` on inputs already checked (it checks nothing again).

    The caller has validated everything :func:`fit_members` checks: ``y`` int64 labels in
    ``0..n_classes-1``, ``plan`` a :class:`MemberPlan` whose rows address ``X``, the
    estimator's skorch nets (:func:`check_nets`), ``engine`` (:func:`check_engine`), the seed
    and the chunking options.
    """
    if not plan.n_members:
        return []
    if engine in ("auto", "vectorized") and is_skorch_net(estimator):
        reason, config, probe = unsupported_reason(estimator, X, n_classes)
        if reason is None:
            return fit_vectorized(
                estimator,
                X,
                y,
                plan,
                config=config,
                seed=seed,
                n_jobs=n_jobs,
                verbose=verbose,
                chunk_size=chunk_size,
                memory_budget=memory_budget,
                probe=probe,
            )
        warnings.warn(
            f"The vectorized engine cannot train this skorch net: {reason}. Falling back to the "
            "loop engine (one fit per member; slower, same guarantees).",
            EngineFallbackWarning,
            stacklevel=3,
        )
    return fit_loop(
        estimator,
        X,
        y,
        plan,
        n_classes=n_classes,
        seed=seed,
        n_jobs=n_jobs,
        verbose=verbose,
    )


def _positive_or_none(value, name):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int or None, got {value!r}.")
    return int(value)


def member_outputs(
    members,
    X,
    *,
    n_classes: int,
    method: str = "auto",
    view=None,
    member_ids=None,
    seed: int | None = None,
    n_jobs: int | None = None,
) -> np.ndarray:
    """Real-valued outputs of fitted members, shape ``(n_samples, n_members, n_classes)``.

    Parameters
    ----------
    members : list of fitted estimators or StackedMembers
        As returned by :func:`fit_members`.
    X : ndarray of shape (n_samples, ...)
        Rows to score.
    n_classes : int
        Number of encoded classes.
    method : {"auto", "predict_proba", "decision_function", "predict", "forward"}, \
default="auto"
        ``"auto"``: skorch nets give their forward output (logits, or probabilities for a net
        whose module ends in a softmax); sklearn estimators give ``predict_proba``, else
        ``decision_function``, else a one-hot row of their ``predict`` (``"predict"``: a
        label-only member votes, but ranks no other class). A member that saw only some
        classes gets ``0`` (probabilities) or ``-inf`` (decision values) in the missing
        columns; a binary ``decision_function``
        ``d`` becomes the two columns ``(-d, d)``. The certified ensembles take the argmax
        over the last axis as the member's vote. That is the member's ``predict`` for most
        estimators, but not for all: ``SVC(probability=True)`` predicts from its decision
        function, and its Platt-scaled probabilities can rank classes differently.
    view : callable, default=None
        A test-time member view, ``view(X, row_ids, member_ids, seeds)`` as in
        :class:`MemberPlan`, applied to the rows before each member scores them (e.g. a
        member's fixed test noise). It receives ``row_ids=None`` (a prediction must not depend
        on where a row sits in ``X``) and the seeds
        ``member_seed(seed, member_id, "test_view")``.
    member_ids : sequence of int, default=None
        The members' ids, needed with ``view`` for a list of members (a
        :class:`StackedMembers` knows its own).
    seed : int, default=None
        The base seed the members were trained with, needed with ``view`` for a list of
        members (a :class:`StackedMembers` knows its own).
    n_jobs : int, default=None
        Parallel jobs for scoring sklearn members (joblib semantics; members are batched per
        task and scored with one thread each, so the outputs do not depend on ``n_jobs``).
        Skorch members are scored at once with :func:`torch.func.vmap` instead.

    Returns
    -------
    outputs : ndarray of shape (n_samples, n_members, n_classes), float64

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn_certify.ensemble import fit_members, member_outputs
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]]); y = np.array([0, 0, 1, 1, 2, 2])
    >>> members = fit_members(LogisticRegression(), X, y, [np.arange(4), np.arange(2, 6)],
    ...                       n_classes=3, seed=0)
    >>> out = member_outputs(members, X, n_classes=3)
    >>> out.shape
    (6, 2, 3)
    >>> float(out[:, 0, 2].max()), float(out[:, 1, 0].max())  # classes each member never saw
    (0.0, 0.0)
    """
    return member_outputs_impl(
        members,
        X,
        n_classes=check_n_classes(n_classes),
        method=method,
        view=view,
        member_ids=member_ids,
        seed=seed,
        n_jobs=n_jobs,
    )
