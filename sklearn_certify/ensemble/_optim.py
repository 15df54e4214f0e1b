"""One optimizer step over stacked members, with members that skip the step left exactly as is."""

from __future__ import annotations

import math

import numpy as np

from sklearn_certify.ensemble._net_config import NetConfig


def reusable_buffer(st: dict, key: str, like, *, zero: bool = True):
    """``st[key]``: a tensor laid out like ``like``, reusing the memory already there if it fits.

    Chunks trained one after another reuse their optimizer buffers this way: fresh memory of
    this size costs a page fault per 4 KiB on first touch, more than the step that uses it.
    """
    import torch

    old = st.get(key)
    fits = (
        old is not None
        and old.shape == like.shape
        and old.stride() == like.stride()
        and old.dtype == like.dtype
        and old.device == like.device
    )
    if not fits:
        st[key] = torch.zeros_like(like)
    elif zero:
        old.zero_()
    return st[key]


def copy_slots(target, source, slots) -> None:
    """``target[slots] = source[slots]`` along the slot axis, in place."""
    target.index_copy_(0, slots, source.index_select(0, slots))


def optimizer_step(config: NetConfig, st: dict, p, g, t: int, active) -> None:
    """One optimizer step on all slots, in place.

    ``active`` is ``None`` when every member takes this step; otherwise a tensor of the slots
    that do, and every other slot keeps its parameters and optimizer state exactly. An active
    slot always goes through the same kernel on a full-size tensor (in place, or out of place
    and then copied), so its arithmetic never depends on which other members are active. The
    steps mirror ``torch.optim.SGD`` / ``torch.optim.Adam`` / ``torch.optim.AdamW``
    (single-tensor implementation).
    """
    import torch

    def assign(name, new):
        if active is None:
            st[name] = new
        else:
            copy_slots(st[name], new, active)

    fused = getattr(torch, "_fused_sgd_", None)
    if config.optimizer == "sgd" and config.momentum and fused is not None:
        # one pass over the parameters (weight decay, momentum and step in one kernel)
        kwargs = dict(
            weight_decay=config.weight_decay,
            momentum=config.momentum,
            lr=config.lr,
            dampening=config.dampening,
            nesterov=config.nesterov,
            maximize=False,
        )
        g = g.contiguous()  # the fused kernel assumes the layout of p
        if t == 0:  # every member's first step is global step 0, when all are active
            reusable_buffer(st, "buf", p)
        if active is None:
            fused([p], [g], [st["buf"]], is_first_step=t == 0, **kwargs)
            return
        # The kernel runs over full-size scratch copies (only the active slots need current
        # values), then the active slots are copied back.
        new_p = reusable_buffer(st, "scratch_p", p, zero=False)
        new_buf = reusable_buffer(st, "scratch_buf", p, zero=False)
        copy_slots(new_p, p, active)
        copy_slots(new_buf, st["buf"], active)
        fused([new_p], [g], [new_buf], is_first_step=False, **kwargs)
        copy_slots(p, new_p, active)
        copy_slots(st["buf"], new_buf, active)
        return
    if config.weight_decay and config.optimizer != "adamw":  # AdamW decays the weights below
        g = g.add(p, alpha=config.weight_decay)
    if config.optimizer == "sgd":
        if config.momentum:
            if t == 0:  # every member's first step is global step 0
                reusable_buffer(st, "buf", p, zero=False).copy_(g)
            elif active is None:
                st["buf"].mul_(config.momentum).add_(g, alpha=1 - config.dampening)
            else:
                assign("buf", st["buf"].mul(config.momentum).add(g, alpha=1 - config.dampening))
            buf = st["buf"]
            g = g.add(buf, alpha=config.momentum) if config.nesterov else buf
        if active is None:
            p.add_(g, alpha=-config.lr)
        else:
            copy_slots(p, p.add(g, alpha=-config.lr), active)
        return
    # Adam and AdamW: an active member at global step t has taken exactly t + 1 steps
    if t == 0:
        reusable_buffer(st, "m", p)
        reusable_buffer(st, "v", p)
    if active is None:
        st["m"].lerp_(g, 1 - config.beta1)
        st["v"].mul_(config.beta2).addcmul_(g, g, value=1 - config.beta2)
    else:
        assign("m", st["m"].lerp(g, 1 - config.beta1))
        assign("v", st["v"].mul(config.beta2).addcmul(g, g, value=1 - config.beta2))
    step = t + 1
    bias1 = 1 - config.beta1**step
    bias2_sqrt = math.sqrt(1 - config.beta2**step)
    denom = (st["v"].sqrt() / bias2_sqrt).add_(config.eps)
    decay = config.optimizer == "adamw" and config.weight_decay
    if active is None:
        if decay:  # torch.optim.AdamW: param.mul_(1 - lr * weight_decay) before the step
            p.mul_(1 - config.lr * config.weight_decay)
        p.addcdiv_(st["m"], denom, value=-config.lr / bias1)
    else:
        new_p = p.mul(1 - config.lr * config.weight_decay) if decay else p
        copy_slots(p, new_p.addcdiv(st["m"], denom, value=-config.lr / bias1), active)


def hyper_table(config: NetConfig, n_batches: int):
    """``(max_epochs * n_batches, 3)`` float64 array: lr, momentum and beta1 of each step.

    The net's ``LRScheduler`` policy runs on a dummy optimizer of the net's class and settings,
    stepped as skorch steps it for a member with ``n_batches`` batches per epoch (after every
    batch, or after every epoch's last batch); row ``s`` holds the values step ``s`` uses.
    """
    import torch

    schedule = config.lr_schedule
    dummy = torch.zeros(1, requires_grad=True)
    opt = config.optimizer_class([dummy], **dict(config.optimizer_kwargs, lr=config.lr))
    scheduler = schedule.policy(opt, **schedule.kwargs)
    group = opt.param_groups[0]
    rows = []
    for _ in range(config.max_epochs):
        for _ in range(n_batches):
            rows.append((group["lr"], group.get("momentum", 0.0), group.get("betas", (0.0,))[0]))
            opt.step()  # no gradient: a no-op that keeps the scheduler's step-order check quiet
            if schedule.step_every == "batch":
                scheduler.step()
        if schedule.step_every == "epoch":
            scheduler.step()
    return np.asarray(rows, dtype=np.float64)


def chunk_hypers(
    config: NetConfig, n_batches, slots, chunk_size: int, T: int, like, tables: dict
) -> dict:
    """Per step and slot, the learning rate and the optimizer's other scheduled values.

    Slot ``slots[i]`` follows the schedule of a member with ``n_batches[i]`` batches per epoch
    (its own epoch boundaries); steps after its last, and empty slots, hold the unscheduled
    values (those slots take no step). Returns ``{name: (T, chunk_size) tensor}``: ``lr``,
    ``momentum``, and for Adam/AdamW ``step`` (``-lr / (1 - beta1 ** (t + 1))``), ``beta1``
    and ``decay`` (AdamW's ``1 - lr * weight_decay``), with the dtype and device of ``like``.
    ``tables`` caches :func:`hyper_table` by batch count (a job's chunks share it).
    """
    import torch

    lr = np.full((T, chunk_size), config.lr)
    momentum = np.full((T, chunk_size), config.momentum)
    beta1 = np.full((T, chunk_size), config.beta1)
    for nb, slot in zip(n_batches, slots, strict=True):
        table = tables.get(nb)
        if table is None:
            table = tables[nb] = hyper_table(config, nb)
        n = table.shape[0]
        lr[:n, slot], momentum[:n, slot], beta1[:n, slot] = table.T
    steps = np.arange(1, T + 1)[:, None]
    values = {
        "lr": lr,
        "neg_lr": -lr,
        "momentum": momentum,
        "beta1_weight": 1 - beta1,
        "step": -lr / (1 - beta1**steps),
        "decay": 1 - lr * config.weight_decay,
    }
    return {
        k: torch.as_tensor(v).to(device=like.device, dtype=like.dtype) for k, v in values.items()
    }


def _per_slot(values, p):
    """``values`` ``(chunk_size,)`` shaped to broadcast along ``p``'s slot axis."""
    return values.view(-1, *([1] * (p.ndim - 1)))


def scheduled_step(config: NetConfig, st: dict, p, g, t: int, active, hyper: dict) -> None:
    """:func:`optimizer_step` with per-slot learning rates (and momentum or beta1).

    ``hyper`` holds this step's ``(chunk_size,)`` values from :func:`chunk_hypers`. Every slot
    goes through the same elementwise kernels whatever the other slots hold, so a member's
    arithmetic never depends on its chunk partners.
    """
    h = {k: _per_slot(v, p) for k, v in hyper.items()}

    def assign(name, new):
        if active is None:
            st[name].copy_(new)
        else:
            copy_slots(st[name], new, active)

    if config.weight_decay and config.optimizer != "adamw":
        g = g.add(p, alpha=config.weight_decay)
    if config.optimizer == "sgd":
        if config.momentum or config.scheduled_momentum:
            if t == 0:  # torch.optim.SGD: the buffer starts as a copy of the first gradient
                reusable_buffer(st, "buf", p, zero=False).copy_(g)
            else:
                assign("buf", st["buf"].mul(h["momentum"]).add(g, alpha=1 - config.dampening))
            g = g.addcmul(st["buf"], h["momentum"]) if config.nesterov else st["buf"]
        new_p = p.addcmul(g, h["neg_lr"])
    else:
        if t == 0:
            reusable_buffer(st, "m", p)
            reusable_buffer(st, "v", p)
        assign("m", st["m"].lerp(g, h["beta1_weight"]))
        assign("v", st["v"].mul(config.beta2).addcmul(g, g, value=1 - config.beta2))
        denom = (st["v"].sqrt() / math.sqrt(1 - config.beta2 ** (t + 1))).add_(config.eps)
        base = p.mul(h["decay"]) if config.optimizer == "adamw" and config.weight_decay else p
        new_p = base.addcmul(st["m"].div(denom), h["step"])
    if active is None:
        p.copy_(new_p)
    else:
        copy_slots(p, new_p, active)


def clip_gradients(grads: dict, max_norm: float, norm_type: float) -> dict:
    """Each slot's gradients scaled as ``torch.nn.utils.clip_grad_norm_`` scales a member's.

    The norm of a slot is over all its parameters' gradients, as skorch's
    ``GradientNormClipping`` computes it on the member alone.
    """
    import torch

    norms = [
        torch.linalg.vector_norm(g.reshape(g.shape[0], -1), norm_type, dim=1)
        for g in grads.values()
    ]
    total = torch.linalg.vector_norm(torch.stack(norms, dim=1), norm_type, dim=1)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    return {name: g.mul(_per_slot(coef, g)) for name, g in grads.items()}
