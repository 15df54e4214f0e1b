"""Real-valued outputs of fitted members, laid out over all ``n_classes`` columns."""

from __future__ import annotations

import numpy as np

from sklearn_certify.ensemble._skorch import is_skorch_net
from sklearn_certify.ensemble._stacked import (
    StackedMembers,
    check_input_dtype,
    stacked_eval_forward,
)

_METHODS = ("auto", "predict_proba", "decision_function", "forward")


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


def _sklearn_output(member, X, position: int, n_classes: int, method: str) -> np.ndarray:
    if method == "auto":
        if hasattr(member, "predict_proba"):
            method = "predict_proba"
        elif hasattr(member, "decision_function"):
            method = "decision_function"
        else:
            raise TypeError(
                f"members[{position}] ({type(member).__name__}) has neither predict_proba nor "
                "decision_function, so it has no real-valued output."
            )
    if method == "forward":
        raise TypeError(
            f"method='forward' needs skorch nets; members[{position}] is {type(member).__name__}."
        )
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


def _vmap_forward(nets, X, n_classes: int, member_chunk: int = 256) -> np.ndarray:
    """Forward all nets at once with ``torch.func.vmap`` (eval mode)."""
    import copy

    import torch
    from torch.func import stack_module_state

    device = torch.device(nets[0].device or "cpu")
    template = copy.deepcopy(nets[0].module_).eval()
    out = np.empty((len(X), len(nets), n_classes), dtype=np.float64)
    for start in range(0, len(nets), member_chunk):
        chunk = nets[start : start + member_chunk]
        params, buffers = stack_module_state([net.module_ for net in chunk])
        params = {k: v.detach() for k, v in params.items()}
        for lo, res in stacked_eval_forward(template, params, buffers, X, n_classes, device):
            rows = res.permute(1, 0, 2)
            out[lo : lo + rows.shape[0], start : start + len(chunk)] = rows.cpu().numpy()
    return out


def member_outputs_impl(members, X, *, n_classes: int, method: str = "auto") -> np.ndarray:
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
        return members.outputs(X)
    members = list(members)
    if not members:
        raise ValueError("members is empty; pass at least one fitted member.")
    n_samples = len(X)
    nets = all(is_skorch_net(m) for m in members)
    if nets and method in ("auto", "forward"):
        if len(members) > 1 and _stackable(members):
            _check_net_dtype(members[0], X, 0)
            try:
                return _vmap_forward(members, X, n_classes)
            except (RuntimeError, NotImplementedError):  # a module vmap cannot run
                pass
        out = np.empty((n_samples, len(members), n_classes), dtype=np.float64)
        for j, net in enumerate(members):
            out[:, j] = _net_forward(net, X, j, n_classes)
        return out
    out = np.empty((n_samples, len(members), n_classes), dtype=np.float64)
    for j, member in enumerate(members):
        if is_skorch_net(member) and method in ("auto", "forward"):
            out[:, j] = _net_forward(member, X, j, n_classes)
        else:
            out[:, j] = _sklearn_output(member, X, j, n_classes, method)
    return out
