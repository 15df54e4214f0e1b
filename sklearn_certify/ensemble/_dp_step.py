"""DP-SGD as a member's training step: per-sample clipping and keyed Gaussian noise.

:class:`DPSGDStep` replaces :meth:`TrainingStep.gradients` with the step of differentially
private SGD (Abadi et al., "Deep Learning with Differential Privacy", CCS 2016, Algorithm 1):
each row's gradient is clipped to an L2 norm of at most ``max_grad_norm``, the
clipped gradients are summed, Gaussian noise of standard deviation ``noise_multiplier *
max_grad_norm`` is added, and the sum is divided by the batch's number of real rows. The noise is
keyed by the member's ``key``, the ``step`` number and the parameter, so it is the same
wherever and with whichever other members the step runs.
"""

from __future__ import annotations

import math
import numbers

from sklearn_certify._validation import check_positive, check_scalar_int
from sklearn_certify.ensemble._step import TrainingStep

__all__ = ["DPSGDStep"]

#: Added to each row's gradient norm before dividing, as Opacus's ``DPOptimizer`` does.
_NORM_EPS = 1e-6
_MASK32 = 0xFFFFFFFF
_STEP_SALT = (0x68E31DA4, 0xB5297A4D)  # one word per half of the (key, step) seed


class DPSGDStep(TrainingStep):
    """DP-SGD's step: clip each row's gradient, sum, add keyed Gaussian noise, average.

    Every real row ``i`` of the batch gets its own gradient ``g_i``, the gradient of the
    member's loss on that row alone (``loss_of`` on a one-row batch); all parameters together
    form one vector, clipped as Opacus's ``DPOptimizer`` clips it:
    ``g_i * min(1, C / (||g_i|| + 1e-6))`` with ``C = max_grad_norm``. The step's gradient is

    ``(sum_i clipped g_i + N(0, (noise_multiplier * C)**2 I)) / B``

    where ``B`` is ``expected_batch_size`` if given, else the batch's number of real rows (at
    least 1); padding rows (``mask`` ``False``) count nowhere. Opacus with
    ``loss_reduction="mean"`` and Algorithm 1 of Abadi et al. divide by a fixed expected batch
    size; a divisor that counts the batch's rows depends on the data, so a differential
    privacy guarantee needs ``expected_batch_size`` (the two agree on full batches of that
    size).

    The noise of parameter ``j`` (its position among the parameters sorted by name) is
    :func:`~sklearn_certify.smoothing.keyed_normal` drawn from a 63-bit seed hashed from
    ``(key, step)``: a function of the member's key, its step number and ``j`` alone, the same
    on both engines and whatever members share a vectorized chunk.

    This class computes one step. Privacy accounting (turning ``noise_multiplier``, the
    sampling rate and the number of steps into ``(epsilon, delta)``) and Poisson sampling of
    the batches are not its job: they belong to the ensemble that trains members with it.

    Parameters
    ----------
    max_grad_norm : float, default=1.0
        The clipping norm ``C``: the largest L2 norm a row's gradient keeps (finite, > 0).
    noise_multiplier : float, default=1.0
        The noise's standard deviation in units of ``max_grad_norm`` (finite, >= 0; 0 gives
        clipping without noise).
    expected_batch_size : int, default=None
        The fixed divisor ``B`` of the noisy sum (``None``: the batch's real rows).

    Attributes
    ----------
    per_sample : bool
        ``True``: the step needs one gradient per row. BatchNorm mixes the rows of a batch, so
        a row's gradient is not its own; the engines refuse modules with BatchNorm for such
        steps (use GroupNorm or LayerNorm instead).

    Notes
    -----
    The step reports as its loss the mean of the real rows' own losses. With the default
    :meth:`~TrainingStep.loss` a one-row loss is that row's criterion loss, so class weights
    cancel (a weighted mean of one row is the row's loss): DP-SGD here weighs every row alike.

    Examples
    --------
    One step of a tiny linear model on four rows, the last one padding:

    >>> import torch
    >>> from torch.func import functional_call
    >>> from sklearn_certify.ensemble import DPSGDStep, TrainingStep
    >>> from sklearn_certify.ensemble._step import RowLoss
    >>> _ = torch.manual_seed(0)
    >>> module = torch.nn.Linear(3, 2)
    >>> row_loss = RowLoss(torch.nn.CrossEntropyLoss, None, -100, 0.0, False)
    >>> def loss_of(params, x, y, mask):
    ...     outputs = functional_call(module, params, (x,))
    ...     return TrainingStep().loss(outputs, y, mask, row_loss)
    >>> params = {k: v.detach() for k, v in module.named_parameters()}
    >>> x = 10 * torch.randn(4, 3); y = torch.tensor([0, 1, 1, 0])
    >>> mask = torch.tensor([True, True, True, False])
    >>> step = DPSGDStep(max_grad_norm=0.5, noise_multiplier=0.0)
    >>> step
    DPSGDStep(max_grad_norm=0.5, noise_multiplier=0.0)
    >>> grads, loss = step.gradients(loss_of, params, (x, y, mask), torch.tensor(7),
    ...                              torch.tensor(0))
    >>> sorted(grads), grads["weight"].shape
    (['bias', 'weight'], torch.Size([2, 3]))
    >>> norm = torch.cat([g.flatten() for g in grads.values()]).norm()
    >>> bool(norm <= 0.5)  # an average of three rows clipped to 0.5
    True
    """

    #: The step needs one gradient per row (no BatchNorm).
    per_sample = True

    def __init__(
        self,
        max_grad_norm: float = 1.0,
        noise_multiplier: float = 1.0,
        expected_batch_size: int | None = None,
    ):
        self.max_grad_norm = check_positive("max_grad_norm", max_grad_norm)
        self.noise_multiplier = _check_non_negative("noise_multiplier", noise_multiplier)
        self.expected_batch_size = (
            None
            if expected_batch_size is None
            else check_scalar_int("expected_batch_size", expected_batch_size, min_value=1)
        )

    def gradients(self, loss_of, params: dict, batch, key, step) -> tuple:
        """DP-SGD's gradients of one step and the mean loss of the batch's real rows.

        Parameters
        ----------
        loss_of : callable
            ``loss_of(params, x, y, mask)``, the member's loss on a batch; it is called on
            one row at a time (with :func:`torch.func.vmap` over the rows).
        params : dict of str to torch.Tensor
            The member's parameters.
        batch : tuple
            ``(x, y, mask)``: rows ``(W, ...)``, labels ``(W,)``, real-row mask ``(W,)``.
        key : torch.Tensor of int64, scalar
            The member's non-negative key for the step's noise.
        step : torch.Tensor of int64, scalar
            How many steps the member has taken before this one (``0 <= step < 2**63``).

        Returns
        -------
        grads : dict of str to torch.Tensor
            One tensor shaped like ``params[name]`` per parameter: the clipped, summed,
            noised gradients divided by ``expected_batch_size`` (or the real rows).
        loss : torch.Tensor
            The mean of the real rows' own losses (0 without real rows).
        """
        x, y, mask = batch
        per_row, losses = _per_row_gradients(loss_of, params, x, y, mask)
        summed = _clip_and_sum(per_row, self.max_grad_norm)
        if self.noise_multiplier > 0:
            summed = _add_noise(summed, self.noise_multiplier * self.max_grad_norm, key, step)
        n_real = mask.sum().clamp(min=1)
        divisor = n_real if self.expected_batch_size is None else self.expected_batch_size
        grads = {name: g / divisor for name, g in summed.items()}
        return grads, losses.sum() / n_real.to(losses.dtype)

    def __repr__(self) -> str:
        extra = (
            ""
            if self.expected_batch_size is None
            else f", expected_batch_size={self.expected_batch_size}"
        )
        return (
            f"{type(self).__name__}(max_grad_norm={self.max_grad_norm}, "
            f"noise_multiplier={self.noise_multiplier}{extra})"
        )


def _check_non_negative(name: str, value) -> float:
    """Return ``value`` as float, requiring a finite real number >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a non-negative real number, got {type(value).__name__}.")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}.")
    return float(value)


def _per_row_gradients(loss_of, params: dict, x, y, mask) -> tuple:
    """Each row's gradient ``{name: (W, *shape)}`` (0 on padding rows) and loss ``(W,)``.

    A padding row's values are never read into the result (``torch.where``, not a product),
    so whatever it holds, NaN included, it contributes exact zeros.
    """
    import torch
    from torch.func import grad_and_value, vmap

    def one_row(p, xi, yi):
        real = torch.ones(1, dtype=torch.bool, device=yi.device)
        return loss_of(p, xi.unsqueeze(0), yi.unsqueeze(0), real)

    # "different": a module with dropout draws each row's mask on its own, as in a batch
    rows = vmap(grad_and_value(one_row), in_dims=(None, 0, 0), randomness="different")
    grads, losses = rows(params, x, y)
    grads = {
        name: torch.where(mask.reshape(-1, *([1] * (g.dim() - 1))), g, torch.zeros_like(g))
        for name, g in grads.items()
    }
    return grads, torch.where(mask, losses, torch.zeros_like(losses))


def _clip_and_sum(per_row: dict, max_grad_norm: float) -> dict:
    """Sum of the rows' gradients, each scaled by ``min(1, C / (||g_i|| + 1e-6))``.

    ``||g_i||`` is the L2 norm of row ``i``'s gradient over all parameters together, taken as
    Opacus takes it: the norm of the per-parameter norms.
    """
    import torch

    param_norms = [
        torch.linalg.vector_norm(g.reshape(g.shape[0], -1), dim=1) for g in per_row.values()
    ]
    norms = torch.linalg.vector_norm(torch.stack(param_norms, dim=1), dim=1)
    factor = (max_grad_norm / (norms + _NORM_EPS)).clamp(max=1.0)
    return {name: torch.einsum("i,i...->...", factor.to(g.dtype), g) for name, g in per_row.items()}


def _add_noise(summed: dict, std: float, key, step) -> dict:
    """``summed`` plus ``std`` times keyed standard normal noise, per parameter."""
    import torch

    from sklearn_certify._keyed import keyed_normal

    seed = _step_seed(key, step).reshape(1)
    position = {name: index for index, name in enumerate(sorted(summed))}

    def noise(name, like):
        row = torch.full((1, 1), position[name], dtype=torch.int64, device=seed.device)
        return keyed_normal(seed, row, tuple(like.shape), dtype=like.dtype)[0, 0]

    return {name: g + std * noise(name, g) for name, g in summed.items()}


def _step_seed(key, step):
    """A seed in ``[0, 2**63)`` hashed from the non-negative int64 scalars ``key`` and ``step``.

    Two 32-bit words, each a nest of PCG permutations over the four 32-bit halves of ``key``
    and ``step``; for a fixed key and ``step < 2**32`` the low word is a permutation of the
    step, so one member's steps never share a seed.
    """
    from sklearn_certify._keyed import _pcg

    key_lo, key_hi = key & _MASK32, key >> 32
    step_lo, step_hi = step & _MASK32, step >> 32
    low = _pcg(key_lo ^ _pcg(key_hi ^ _pcg(step_lo ^ _pcg(step_hi ^ _STEP_SALT[0]))))
    high = _pcg(key_hi ^ _pcg(key_lo ^ _pcg(step_hi ^ _pcg(step_lo ^ _STEP_SALT[1]))))
    return ((high >> 1) << 32) | low
