"""One optimizer step over stacked members, with members that skip the step left exactly as is."""

from __future__ import annotations

import math

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
    steps mirror ``torch.optim.SGD`` / ``torch.optim.Adam`` (single-tensor implementation).
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
    if config.weight_decay:
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
    # Adam: an active member at global step t has taken exactly t + 1 steps
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
    if active is None:
        p.addcdiv_(st["m"], denom, value=-config.lr / bias1)
    else:
        copy_slots(p, p.addcdiv(st["m"], denom, value=-config.lr / bias1), active)
