"""Real-valued outputs of fitted members, laid out over all ``n_classes`` columns."""

from __future__ import annotations

import numpy as np
from sklearn.utils.parallel import Parallel, delayed

from sklearn_certify.ensemble._loop import apply_view, member_batches
from sklearn_certify.ensemble._seeding import member_seed
from sklearn_certify.ensemble._skorch import is_skorch_net
from sklearn_certify.ensemble._stacked import (
    StackedMembers,
    check_input_dtype,
    scoring_view_args,
    stacked_eval_forward,
)
from sklearn_certify.ensemble._threads import one_thread

_METHODS = ("auto", "predict_proba", "decision_function", "predict", "forward")


def _member_classes(member, position: int, n_classes: int) -> np.ndarray:
    classes = getattr(member, "classes_", None)
    if classes is None:
        raise ValueError(
            f"members[{position}] has no classes_; members must be fitted classifiers trained on "
            "labels encoded as 0..n_classes-1."
        )
    classes = np.asarray(classes)
    if (
        not np.issubdtype(classes.dtype, np.integer)
        or classes.min() < 0
        or classes.max() >= n_classes
    ):
        raise ValueError(
            f"members[{position}].classes_ = {classes!r} are not encoded labels in "
            f"0..{n_classes - 1}; "
            "fit members on label-encoded y (see sklearn.preprocessing.LabelEncoder)."
        )
    return classes.astype(np.intp)


def scoring_method(estimator) -> str:
    """How an sklearn member is scored: ``predict_proba``, else ``decision_function``, else
    ``predict`` (a one-hot row of its label: enough for plurality votes, not for run-off)."""
    for method in ("predict_proba", "decision_function"):
        if hasattr(estimator, method):
            return method
    return "predict"


def _one_hot_votes(member, X, position: int, n_classes: int) -> np.ndarray:
    labels = np.asarray(member.predict(X))
    if not np.issubdtype(labels.dtype, np.integer) or (
        labels.size and (labels.min() < 0 or labels.max() >= n_classes)
    ):
        raise ValueError(
            f"members[{position}].predict returned labels that are not encoded classes in "
            f"0..{n_classes - 1}; fit members on label-encoded y."
        )
    out = np.zeros((labels.shape[0], n_classes), dtype=np.float64)
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out


def _sklearn_output(member, X, position: int, n_classes: int, method: str) -> np.ndarray:
    if method == "auto":
        method = scoring_method(member)
    if method == "forward":
        raise TypeError(
            f"method='forward' needs skorch nets; members[{position}] is {type(member).__name__}."
        )
    if method == "predict":
        return _one_hot_votes(member, X, position, n_classes)
    classes = _member_classes(member, position, n_classes)
    raw = np.asarray(getattr(member, method)(X), dtype=np.float64)
    fill = 0.0 if method == "predict_proba" else -np.inf
    out = np.full((raw.shape[0], n_classes), fill, dtype=np.float64)
    if raw.ndim == 1 or (raw.ndim == 2 and raw.shape[1] == 1 and classes.size == 2):
        # binary decision_function: positive values mean classes_[1]
        d = raw.reshape(-1)
        out[:, classes[0]] = -d
        out[:, classes[1]] = d
    elif raw.ndim == 2 and raw.shape[1] == classes.size:
        out[:, classes] = raw
    else:
        raise ValueError(
            f"members[{position}].{method} returned shape {raw.shape}, which does not match its "
            f"{classes.size} classes."
        )
    return out


def _check_net_dtype(net, X, position: int) -> None:
    first = next(net.module_.parameters(), None) if hasattr(net, "module_") else None
    if first is not None:
        check_input_dtype(X, first.dtype, f"members[{position}]'s")


def _net_forward(net, X, position: int, n_classes: int) -> np.ndarray:
    _check_net_dtype(net, X, position)
    out = net.forward(X, training=False)
    if isinstance(out, (tuple, list)):
        out = out[0]
    arr = out.detach().cpu().numpy().astype(np.float64)
    return _check_width(arr, position, n_classes)


def _check_width(arr: np.ndarray, position, n_classes: int) -> np.ndarray:
    if arr.ndim != 2 or arr.shape[1] != n_classes:
        raise ValueError(
            f"members[{position}] produced outputs of shape {arr.shape}; expected (n_samples, "
            f"{n_classes}). Make the module's last layer output n_classes values."
        )
    return arr


def _stackable(nets) -> bool:
    """True when all nets share one module type, parameter layout and device."""
    first = nets[0]
    if not all(getattr(n, "initialized_", False) for n in nets):
        return False
    shapes = [(k, v.shape, v.dtype, v.device) for k, v in first.module_.state_dict().items()]
    # the forward of the first net's module is reused, so every module must be built alike
    kwargs = repr(sorted(first.get_params_for("module").items()))
    for net in nets[1:]:
        if type(net.module_) is not type(first.module_) or str(net.device) != str(first.device):
            return False
        if repr(sorted(net.get_params_for("module").items())) != kwargs:
            return False
        other = [(k, v.shape, v.dtype, v.device) for k, v in net.module_.state_dict().items()]
        if other != shapes:
            return False
    return True


def _vmap_forward(nets, X, n_classes: int, view_args=None, member_chunk: int = 256) -> np.ndarray:
    """Forward all nets at once with ``torch.func.vmap`` (eval mode).

    ``view_args`` is ``None`` or ``(view, member_ids, seed)`` for a test-time view.
    """
    import copy

    from torch.func import stack_module_state

    device = _device_of(nets[0])
    template = copy.deepcopy(nets[0].module_).eval()
    out = np.empty((len(X), len(nets), n_classes), dtype=np.float64)
    for start in range(0, len(nets), member_chunk):
        chunk = nets[start : start + member_chunk]
        params, buffers = stack_module_state([net.module_ for net in chunk])
        params = {k: v.detach() for k, v in params.items()}
        chunk_view = None
        if view_args is not None:
            view, ids, seed = view_args
            chunk_view = scoring_view_args(view, ids[start : start + len(chunk)], seed, device)
        for lo, res in stacked_eval_forward(
            template, params, buffers, X, n_classes, device, chunk_view
        ):
            rows = res.permute(1, 0, 2)
            out[lo : lo + rows.shape[0], start : start + len(chunk)] = rows.cpu().numpy()
    return out


def _device_of(net):
    import torch

    return torch.device(net.device or "cpu")


def _viewed_rows(member, X, position: int, view_args):
    """``X`` as member ``position`` scores it: through the test-time view if there is one."""
    if view_args is None:
        return X
    view, ids, seed = view_args
    mid = int(ids[position])
    device = _device_of(member) if is_skorch_net(member) else None
    return apply_view(view, X, None, mid, member_seed(seed, mid, "test_view"), device=device)


def _one_member(member, X, position: int, n_classes: int, method: str, view_args) -> np.ndarray:
    """Outputs of one member, through the test-time view if there is one."""
    if is_skorch_net(member) and method in ("auto", "forward"):
        return _net_member(member, X, position, n_classes, view_args)
    X = _viewed_rows(member, X, position, view_args)
    return _sklearn_output(member, X, position, n_classes, method)


def _net_member(net, X, position: int, n_classes: int, view_args) -> np.ndarray:
    """Forward output of one skorch member, by the route it takes among other members.

    That is :func:`_vmap_forward` over the member alone: its column of a vmapped forward of
    several stackable members holds the same bits. A module that ``vmap`` cannot run gets its
    plain forward, alone or among others.
    """
    if _stackable([net]):
        _check_net_dtype(net, X, position)
        own = None
        if view_args is not None:
            view, ids, seed = view_args
            own = (view, ids[position : position + 1], seed)
        try:
            return _vmap_forward([net], X, n_classes, own)[:, 0]
        except (RuntimeError, NotImplementedError):  # a module vmap cannot run
            pass
    return _net_forward(net, _viewed_rows(net, X, position, view_args), position, n_classes)


def _net_outputs(nets, X, n_classes: int, view_args) -> np.ndarray:
    """Forward outputs of skorch members: all at once if they stack, else one by one.

    Either way a member's outputs are the bits it gives when scored alone
    (:func:`_net_member`), so they never depend on which other members are scored with it.
    """
    if _stackable(nets):
        _check_net_dtype(nets[0], X, 0)
        try:
            return _vmap_forward(nets, X, n_classes, view_args)
        except (RuntimeError, NotImplementedError):  # a module vmap cannot run
            pass
    out = np.empty((len(X), len(nets), n_classes), dtype=np.float64)
    for position, net in enumerate(nets):
        out[:, position] = _net_member(net, X, position, n_classes, view_args)
    return out


def _score_batch(members, X, positions, n_classes: int, method: str, view_args) -> np.ndarray:
    """Outputs ``(n_samples, len(positions), n_classes)`` of one batch of members, one thread."""
    out = np.empty((len(X), len(positions), n_classes), dtype=np.float64)
    with one_thread():
        for j, (member, position) in enumerate(zip(members, positions, strict=True)):
            out[:, j] = _one_member(member, X, int(position), n_classes, method, view_args)
    return out


def _check_view_args(members, view, member_ids, seed):
    if view is None:
        return None
    if not callable(view):
        raise TypeError(
            f"view must be a callable view(X, row_ids, member_ids, seeds), got {view!r}."
        )
    if member_ids is None or seed is None:
        raise ValueError(
            "a view needs member_ids and seed (the members' ids and base seed) to "
            "derive each member's test-time seed."
        )
    ids = np.asarray(member_ids, dtype=np.int64)
    if ids.shape != (len(members),):
        raise ValueError(f"member_ids has {ids.size} entries for {len(members)} members.")
    return view, ids, int(seed)


def member_outputs_impl(
    members,
    X,
    *,
    n_classes: int,
    method: str = "auto",
    view=None,
    member_ids=None,
    seed=None,
    n_jobs=None,
) -> np.ndarray:
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    if isinstance(members, StackedMembers) and method in ("auto", "forward"):
        if not len(members):
            raise ValueError("members is empty; pass at least one fitted member.")
        if members.n_classes != n_classes:
            raise ValueError(
                f"members were trained with n_classes={members.n_classes} (their outputs have "
                f"that width), got n_classes={n_classes}."
            )
        return members.outputs(X, view=view)
    members = list(members)
    if not members:
        raise ValueError("members is empty; pass at least one fitted member.")
    view_args = _check_view_args(members, view, member_ids, seed)
    if method in ("auto", "forward") and all(is_skorch_net(m) for m in members):
        return _net_outputs(members, X, n_classes, view_args)
    batches = member_batches(len(members), n_jobs)
    if len(batches) == 1:
        return _score_batch(members, X, range(len(members)), n_classes, method, view_args)
    jobs = (
        delayed(_score_batch)([members[p] for p in b], X, b, n_classes, method, view_args)
        for b in batches
    )
    return np.concatenate(Parallel(n_jobs=n_jobs)(jobs), axis=1)
