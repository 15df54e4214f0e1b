"""Check a skorch net's module against the training rows and classes before any member trains."""

from __future__ import annotations

import numpy as np

from sklearn_certify.ensemble._skorch import check_net, is_skorch_net, torch_seeded

__all__ = ["check_module_io", "check_parameter_dtype"]

#: Rows of ``X`` the module is tried on.
_PROBE_ROWS = 2


def check_parameter_dtype(module, X) -> None:
    """Raise a ``TypeError`` if ``X``'s float dtype differs from the module's parameters'."""
    import torch

    first = next(module.parameters(), None)
    if first is None or not first.is_floating_point():
        return
    x_dtype = np.asarray(X[:1]).dtype
    if torch.as_tensor(np.zeros(0, dtype=x_dtype)).dtype != first.dtype:
        raise TypeError(
            f"X has dtype {x_dtype} but the net's parameters are {first.dtype}; skorch nets "
            "need matching dtypes. Pass X.astype(np.float32) (or build a module of X's dtype)."
        )


def check_module_io(estimator, X, n_classes: int) -> None:
    """Run one freshly built module on the first rows of ``X``; raise if it cannot serve.

    A skorch net whose module takes rows of another width, or outputs another number of
    values than there are classes, would otherwise train every member first and fail (or
    fall back to the slow engine) only later. Estimators that are not skorch nets pass.

    Parameters
    ----------
    estimator : estimator object
        The base estimator; only a skorch ``NeuralNet`` is checked.
    X : ndarray of shape (n_samples, ...)
        Training rows as the members receive them.
    n_classes : int
        Classes in ``y``: the module must output one value per class.

    Raises
    ------
    TypeError
        The module's parameters and ``X`` differ in dtype.
    ValueError
        The module fails on the rows, or its output is not ``(n_rows, n_classes)``.
    """
    if not is_skorch_net(estimator) or not len(X):
        return
    import torch
    from sklearn.base import clone

    check_net(estimator)
    net = clone(estimator)
    with torch_seeded(0, [net]):
        net.initialize()
    module = net.module_.eval()
    check_parameter_dtype(module, X)
    name = getattr(estimator.module, "__name__", type(estimator.module).__name__)
    rows = torch.as_tensor(np.ascontiguousarray(X[:_PROBE_ROWS])).to(net.device or "cpu")
    try:
        with torch.no_grad(), torch_seeded(0, [net]):
            out = module(rows)
    except Exception as exc:  # any failure of the user's module on the rows
        raise ValueError(
            f"estimator's module {name} cannot take rows of shape {tuple(X.shape[1:])} "
            f"(the training rows): {type(exc).__name__}: {exc}. Make its input layer match "
            "the rows (e.g. its input width, module__<name>=...), or reshape X."
        ) from exc
    if isinstance(out, (tuple, list)):  # skorch scores the first output
        out = out[0]
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[1] != n_classes:
        raise ValueError(
            f"estimator's module {name} returns outputs of shape {shape} for "
            f"{rows.shape[0]} rows, but y has {n_classes} classes: the module must return one "
            f"value per class, shape (n_rows, {n_classes}). Make its last layer output "
            f"{n_classes} values."
        )
