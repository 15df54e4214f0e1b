"""BatchNorm in the vectorized engine: statistics of a member's real rows only.

Members of unequal size (DPA partitions) are padded to one batch shape, and the padded rows
must not enter a member's batch statistics or running statistics. :func:`masked_template`
gives a copy of the module whose BatchNorm layers compute both over the rows a mask marks as
real, with ``torch.nn.BatchNorm*d``'s formulas: the batch variance divided by the row count in
the normalisation and by the count minus one in the running variance, momentum (or the
cumulative average when ``momentum=None``), and ``num_batches_tracked``. A member with no real
rows in a step keeps its running statistics as they are.
"""

from __future__ import annotations

import copy
import functools

__all__ = ["RowMask", "batch_norms", "masked_template"]

#: BatchNorm layers the engine trains; every other module with buffers is refused.
_BATCH_NORMS = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d")


def batch_norms(module) -> list:
    """The module's ``torch.nn.BatchNorm{1,2,3}d`` layers (exact types, not lazy or synced)."""
    import torch

    kinds = tuple(getattr(torch.nn, name) for name in _BATCH_NORMS)
    return [m for m in module.modules() if type(m) in kinds]


class RowMask:
    """Holds the real-row mask of the member whose forward pass runs now."""

    def __init__(self):
        self.mask = None


def masked_template(module, holder: RowMask, *, cumulative_only: bool = False):
    """A copy of ``module`` whose BatchNorm layers read the real rows from ``holder.mask``.

    Parameter and buffer names are those of ``module``, so the copy runs under
    :func:`torch.func.functional_call` with the members' stacked parameters and buffers.
    ``cumulative_only`` patches only layers with ``momentum=None``, whose torch forward reads
    ``num_batches_tracked`` as a Python number, which :func:`torch.func.vmap` cannot batch.
    """
    template = copy.deepcopy(module)
    for layer in batch_norms(template):
        if layer.momentum is None or not cumulative_only:
            layer.forward = functools.partial(_masked_forward, layer, holder)
    return template


def _masked_forward(layer, holder: RowMask, x):
    """``layer``'s forward (one member's rows ``(W, C, ...)``) with statistics of real rows."""
    import torch

    if not layer.training or holder.mask is None:
        return type(layer).forward(layer, x)
    layer._check_input_dim(x)
    dims = [0, *range(2, x.ndim)]
    shape = [1, -1, *[1] * (x.ndim - 2)]
    weight = holder.mask.to(x.dtype).reshape(-1, *[1] * (x.ndim - 1))
    per_row = x[0, 0].numel()
    count = holder.mask.sum().to(x.dtype) * per_row
    safe = count.clamp(min=1)
    mean = (x * weight).sum(dims) / safe
    centred = x - mean.reshape(shape)
    var = (centred.square() * weight).sum(dims) / safe
    out = centred * torch.rsqrt(var + layer.eps).reshape(shape)
    if layer.affine:
        out = out * layer.weight.reshape(shape) + layer.bias.reshape(shape)
    if layer.track_running_stats:
        _update_running(layer, mean, var, count)
    return out


def _update_running(layer, mean, var, count) -> None:
    """Running statistics as ``F.batch_norm`` updates them, unchanged without real rows."""
    import torch

    with torch.no_grad():
        stepped = count > 0
        tracked = layer.num_batches_tracked + stepped.to(layer.num_batches_tracked.dtype)
        if layer.momentum is None:  # cumulative moving average
            factor = 1.0 / tracked.clamp(min=1).to(mean.dtype)
        else:
            factor = torch.full_like(count, layer.momentum)
        unbiased = var.detach() * count / (count - 1).clamp(min=1)
        new_mean = (1 - factor) * layer.running_mean + factor * mean.detach()
        new_var = (1 - factor) * layer.running_var + factor * unbiased
        layer.running_mean.copy_(torch.where(stepped, new_mean, layer.running_mean))
        layer.running_var.copy_(torch.where(stepped, new_var, layer.running_var))
        layer.num_batches_tracked.copy_(tracked)
