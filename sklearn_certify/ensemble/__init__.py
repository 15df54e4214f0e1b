"""Train many ensemble members on many row subsets, and read their outputs.

This is the engine behind :class:`sklearn_certify.DPAClassifier` and the training-set smoothing
classifiers. Two engines fit the members:

``"loop"``
    :func:`sklearn.base.clone` per member, seeded from ``(random_state, member_id)`` alone, fitted
    through :class:`sklearn.utils.parallel.Parallel`, so ``n_jobs`` and every joblib backend
    (loky, threading, dask, ray) work. Any sklearn classifier, Pipeline or skorch net.
``"vectorized"``
    skorch nets only: all members of a chunk are stacked with :mod:`torch.func` and trained
    together with one batched forward/backward per step on the net's ``device``; they come
    back as a :class:`StackedMembers`.

Both keep **partition independence** (DESIGN.md section 4.1): member ``m`` is a deterministic
function of ``X[subsets[m]]``, ``y[subsets[m]]``, ``random_state`` and ``member_ids[m]``.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence

import numpy as np

from sklearn_certify.ensemble._loop import as_index_array, fit_loop
from sklearn_certify.ensemble._net_config import unsupported_reason
from sklearn_certify.ensemble._outputs import member_outputs_impl
from sklearn_certify.ensemble._seeding import check_member_seed_args
from sklearn_certify.ensemble._skorch import check_net, is_skorch_net, nested_nets
from sklearn_certify.ensemble._stacked import StackedMembers
from sklearn_certify.ensemble._vectorized import fit_vectorized

__all__ = ["EngineFallbackWarning", "StackedMembers", "fit_members", "member_outputs"]

_ENGINES = ("auto", "loop", "vectorized")


class EngineFallbackWarning(UserWarning):
    """The vectorized engine cannot train this net; the loop engine is used instead."""


def _check_inputs(estimator, X, y, subsets, n_classes, engine):
    if engine not in _ENGINES:
        raise ValueError(f"engine must be one of {_ENGINES}, got {engine!r}.")
    if not hasattr(estimator, "fit"):
        raise TypeError(
            f"estimator must be an unfitted estimator with a fit method, got {estimator!r}."
        )
    if (
        isinstance(n_classes, (bool, np.bool_))
        or not isinstance(n_classes, numbers.Integral)
        or n_classes < 1
    ):
        raise ValueError(f"n_classes must be a positive int, got {n_classes!r}.")
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
    if isinstance(subsets, np.ndarray) and subsets.dtype != object and subsets.ndim == 1:
        raise TypeError(
            "subsets must be a list of 1-d index arrays (one per member), not one flat array."
        )
    if not isinstance(subsets, Sequence) and not isinstance(subsets, np.ndarray):
        raise TypeError("subsets must be a list of 1-d integer index arrays, one per member.")
    subsets = [as_index_array(s, X.shape[0], i) for i, s in enumerate(subsets)]
    for i, net in enumerate(nested_nets(estimator)):
        check_net(net, "estimator" if net is estimator else f"estimator (skorch net #{i})")
    return y.astype(np.int64, copy=False), subsets


def fit_members(
    estimator,
    X,
    y,
    subsets,
    *,
    member_ids=None,
    n_classes: int,
    random_state: int,
    engine: str = "auto",
    n_jobs: int | None = None,
    verbose: int = 0,
    chunk_size: int | None = None,
    n_members_total: int | None = None,
    memory_budget: int | None = None,
) -> list:
    """Fit one clone of ``estimator`` per row subset.

    Parameters
    ----------
    estimator : estimator
        Unfitted base estimator: any sklearn classifier (a Pipeline too) or a skorch
        ``NeuralNet`` / ``NeuralNetClassifier`` whose ``module`` is a class (an ``nn.Module``
        instance is refused: members would share its weights).
    X : ndarray of shape (n_samples, ...)
        Shared training rows (``float32`` for skorch nets). Members index it; it is never copied
        per member.
    y : ndarray of shape (n_samples,)
        Integer-encoded labels in ``0..n_classes-1``.
    subsets : list of 1-d int arrays
        Member ``m`` is trained on ``X[subsets[m]], y[subsets[m]]`` in exactly that row order.
    member_ids : sequence of int, default=None
        Identity of each member (default ``range(len(subsets))``). Member ``m``'s randomness
        derives only from ``(random_state, member_ids[m])``, so members may be omitted or added
        without changing the others.
    n_classes : int
        Number of classes; skorch classifier members get ``classes=range(n_classes)``.
    random_state : int
        Non-negative base seed.
    engine : {"auto", "loop", "vectorized"}, default="auto"
        ``"auto"`` uses the vectorized engine for skorch nets it supports and the loop engine
        otherwise. A skorch net the vectorized engine cannot train (BatchNorm modules, random
        ops other than dropout-like ones, callbacks, optimizers other than SGD/Adam, criteria
        other than CrossEntropyLoss/NLLLoss, ``batch_size=-1``) is fitted by the loop engine
        with an :class:`EngineFallbackWarning` naming the reason.
    n_jobs : int, default=None
        Parallel jobs, joblib semantics (``None`` means 1 unless inside
        ``joblib.parallel_config``).
    verbose : int, default=0
        Show a tqdm progress bar when > 0 (per step too when > 1).
    chunk_size : int, default=None
        Vectorized engine: members per chunk; member ``i`` trains in chunk
        ``member_ids[i] // chunk_size`` with ``chunk_size`` slots (absent ids are inert slots).
        ``None`` picks it from the module's memory needs (``memory_budget``) and
        ``n_members_total``.
    n_members_total : int, default=None
        Vectorized engine: how many member ids the caller's ensemble has in all (e.g.
        ``n_partitions * spread``), so the chunk layout never depends on which members a call
        omits. Default ``max(member_ids) + 1``; callers that leave members out (such as
        degenerate partitions) should pass it, because with the default, leaving out the
        highest id can change the chunk size and hence the tensor shapes the other members are
        trained with (results then agree in practice, but no longer by construction).
    memory_budget : int, default=None
        Vectorized engine: approximate bytes of training state per chunk (default 512 MiB).

    Returns
    -------
    members : list of fitted estimators or StackedMembers
        One per subset, in the order of ``subsets``. The vectorized engine returns a
        :class:`StackedMembers`: a sequence whose items are fitted skorch nets, built on first
        access, and which :func:`member_outputs` scores without building them.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from sklearn_certify.ensemble import fit_members
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 3)); y = (X[:, 0] > 0).astype(np.int64)
    >>> subsets = [np.arange(0, 30), np.arange(30, 60)]
    >>> members = fit_members(DecisionTreeClassifier(), X, y, subsets, n_classes=2, random_state=0)
    >>> len(members), members[0].random_state == fit_members(
    ...     DecisionTreeClassifier(), X, y, subsets[:1], n_classes=2, random_state=0
    ... )[0].random_state
    (2, True)
    """
    y, subsets = _check_inputs(estimator, X, y, subsets, n_classes, engine)
    ids = check_member_seed_args(random_state, member_ids, len(subsets))
    if not subsets:
        return []
    if engine == "vectorized" and not is_skorch_net(estimator):
        raise ValueError(
            "engine='vectorized' needs a skorch NeuralNet/NeuralNetClassifier base estimator; "
            f"got {type(estimator).__name__}. Use engine='loop' (or 'auto')."
        )
    if engine in ("auto", "vectorized") and is_skorch_net(estimator):
        reason, probe = unsupported_reason(estimator, X, int(n_classes))
        if reason is None:
            return fit_vectorized(
                estimator,
                X,
                y,
                subsets,
                ids,
                n_classes=int(n_classes),
                random_state=int(random_state),
                n_jobs=n_jobs,
                verbose=verbose,
                chunk_size=_positive_or_none(chunk_size, "chunk_size"),
                n_members_total=_positive_or_none(n_members_total, "n_members_total"),
                memory_budget=_positive_or_none(memory_budget, "memory_budget"),
                probe=probe,
            )
        warnings.warn(
            f"The vectorized engine cannot train this skorch net: {reason}. Falling back to the "
            "loop engine (one fit per member; slower, same guarantees).",
            EngineFallbackWarning,
            stacklevel=2,
        )
    return fit_loop(
        estimator,
        X,
        y,
        subsets,
        ids,
        n_classes=int(n_classes),
        random_state=int(random_state),
        n_jobs=n_jobs,
        verbose=verbose,
    )


def _positive_or_none(value, name):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int or None, got {value!r}.")
    return int(value)


def member_outputs(members, X, *, n_classes: int, method: str = "auto") -> np.ndarray:
    """Real-valued outputs of fitted members, shape ``(n_samples, n_members, n_classes)``.

    Parameters
    ----------
    members : list of fitted estimators or StackedMembers
        As returned by :func:`fit_members`.
    X : ndarray of shape (n_samples, ...)
        Rows to score.
    n_classes : int
        Number of encoded classes.
    method : {"auto", "predict_proba", "decision_function", "forward"}, default="auto"
        ``"auto"``: skorch nets give their forward output (logits, or probabilities for a net
        whose module ends in a softmax); sklearn estimators give ``predict_proba``, else
        ``decision_function``. A member that saw only some classes gets ``0`` (probabilities)
        or ``-inf`` (decision values) in the missing columns; a binary ``decision_function``
        ``d`` becomes the two columns ``(-d, d)``. The argmax over the last axis equals the
        member's ``predict`` (up to exact ties).

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
    ...                       n_classes=3, random_state=0)
    >>> out = member_outputs(members, X, n_classes=3)
    >>> out.shape
    (6, 2, 3)
    >>> float(out[:, 0, 2].max()), float(out[:, 1, 0].max())  # classes each member never saw
    (0.0, 0.0)
    """
    if (
        isinstance(n_classes, (bool, np.bool_))
        or not isinstance(n_classes, numbers.Integral)
        or n_classes < 1
    ):
        raise ValueError(f"n_classes must be a positive int, got {n_classes!r}.")
    return member_outputs_impl(members, X, n_classes=int(n_classes), method=method)
