"""The vectorized engine: train a chunk of skorch members at once with ``torch.func``.

Within a chunk the members' parameters are stacked (``torch.func.stack_module_state``) and one
``vmap(functional_call)`` forward/backward per step trains them all. Partition independence
(DESIGN.md section 4.1) is kept exactly:

* a member's initial weights are those of the module ``net.initialize()`` builds, drawn under
  its own torch seed, and its batch order comes from a ``torch.Generator`` seeded by
  ``(random_state, member_id)``, drawn through a ``DataLoader`` exactly as the loop engine's
  skorch fit draws it;
* it takes exactly ``max_epochs * ceil(n_i / batch_size)`` optimizer steps; on later steps of the
  chunk its parameters and optimizer state are left exactly as they are;
* every batch tensor has the fixed shape ``(chunk_size, batch_size, ...)``: short batches are
  padded with copies of the member's own rows and masked out of the loss (the loss is the sum of
  the real rows' losses over their count, as skorch's mean);
* chunk membership is ``member_id // chunk_size`` and a chunk always holds ``chunk_size`` slots
  (absent ids are inert dummy slots), so no shape depends on which other members exist;
* a step that only some members take runs the optimizer kernel over full-size tensors and copies
  back the active slots, so an active slot's arithmetic is the same in every step.

The trained chunks are returned as a :class:`~sklearn_certify.ensemble.StackedMembers`.
"""

from __future__ import annotations

import math

import numpy as np

from sklearn_certify.ensemble._loop import make_member
from sklearn_certify.ensemble._seeding import shuffle_seed, torch_init_seed
from sklearn_certify.ensemble._skorch import torch_rng_session, torch_seeded
from sklearn_certify.ensemble._stacked import StackedMembers

_SGD_KEYS = {
    "lr",
    "momentum",
    "dampening",
    "weight_decay",
    "nesterov",
    "foreach",
    "maximize",
    "differentiable",
    "fused",
}
_ADAM_KEYS = {
    "lr",
    "betas",
    "eps",
    "weight_decay",
    "amsgrad",
    "foreach",
    "maximize",
    "capturable",
    "differentiable",
    "fused",
}
_ITER_KEYS = {
    "shuffle",
    "batch_size",
    "num_workers",
    "pin_memory",
    "drop_last",
    "generator",
    "persistent_workers",
    "prefetch_factor",
    "timeout",
}
_DEFAULT_MEMORY_BUDGET = 1 << 29  # bytes of training state per chunk (512 MiB)
_TENSOR_CAP = 1 << 23  # bytes of the largest stacked tensor of a chunk (8 MiB)


class _Config:
    """Everything the vectorized trainer needs from a skorch net, validated."""

    def __init__(self, net, n_classes: int):
        import torch
        from skorch import NeuralNet, NeuralNetClassifier
        from skorch.dataset import Dataset

        if type(net) not in (NeuralNet, NeuralNetClassifier):
            raise _Unsupported(
                f"{type(net).__name__} is a subclass of a skorch net (it may override the "
                "training step); only NeuralNet and NeuralNetClassifier are vectorized"
            )
        if net.callbacks not in (None, "disable") and len(net.callbacks) > 0:
            raise _Unsupported("the net has callbacks, which the vectorized engine cannot run")
        if net.dataset is not Dataset or net.get_params_for("dataset"):
            raise _Unsupported("a custom dataset is set")
        if net.iterator_train is not torch.utils.data.DataLoader:
            raise _Unsupported("a custom iterator_train is set")
        it_kwargs = net.get_params_for("iterator_train")
        extra = set(it_kwargs) - _ITER_KEYS
        if extra or it_kwargs.get("drop_last", False) or it_kwargs.get("sampler") is not None:
            raise _Unsupported(
                f"unsupported iterator_train settings {sorted(extra) or 'drop_last'}"
            )
        self.shuffle = bool(it_kwargs.get("shuffle", False))
        self.batch_size = int(it_kwargs.get("batch_size", net.batch_size))
        if self.batch_size <= 0:
            raise _Unsupported(
                "batch_size=-1 (full batch) gives shapes that depend on the data size"
            )
        self.max_epochs = int(net.max_epochs)

        # criterion
        crit = net.criterion
        crit_kwargs = net.get_params_for("criterion")
        if crit not in (torch.nn.CrossEntropyLoss, torch.nn.NLLLoss):
            raise _Unsupported(
                f"criterion {getattr(crit, '__name__', crit)!r} is not supported "
                "(CrossEntropyLoss and NLLLoss are)"
            )
        allowed = {"weight", "ignore_index", "reduction"}
        if crit is torch.nn.CrossEntropyLoss:
            allowed.add("label_smoothing")
        if set(crit_kwargs) - allowed or crit_kwargs.get("reduction", "mean") != "mean":
            raise _Unsupported(f"criterion settings {sorted(crit_kwargs)} are not supported")
        if crit_kwargs.get("label_smoothing", 0.0) and crit_kwargs.get("weight") is not None:
            raise _Unsupported("label_smoothing together with class weights is not supported")
        self.criterion = crit
        self.class_weight = crit_kwargs.get("weight")
        self.ignore_index = int(crit_kwargs.get("ignore_index", -100))
        self.label_smoothing = float(crit_kwargs.get("label_smoothing", 0.0))
        # skorch's classifier feeds log(p + eps) to NLLLoss
        self.log_probs = crit is torch.nn.NLLLoss and isinstance(net, NeuralNetClassifier)

        # optimizer
        opt = net.optimizer
        opt_kwargs = net.get_params_for("optimizer")
        if opt not in (torch.optim.SGD, torch.optim.Adam):
            raise _Unsupported(
                f"optimizer {getattr(opt, '__name__', opt)!r} is not supported (SGD and Adam are)"
            )
        keys = _SGD_KEYS if opt is torch.optim.SGD else _ADAM_KEYS
        if set(opt_kwargs) - keys or opt_kwargs.get("maximize") or opt_kwargs.get("amsgrad"):
            raise _Unsupported(f"optimizer settings {sorted(opt_kwargs)} are not supported")
        if opt_kwargs.get("differentiable"):
            raise _Unsupported("differentiable optimizers are not supported")
        if any(k.startswith("param_groups") for k in opt_kwargs):
            raise _Unsupported("per-parameter-group optimizer settings are not supported")
        self.optimizer = "sgd" if opt is torch.optim.SGD else "adam"
        self.lr = float(opt_kwargs.get("lr", net.lr))
        self.weight_decay = float(opt_kwargs.get("weight_decay", 0.0))
        self.momentum = float(opt_kwargs.get("momentum", 0.0))
        self.dampening = float(opt_kwargs.get("dampening", 0.0))
        self.nesterov = bool(opt_kwargs.get("nesterov", False))
        betas = opt_kwargs.get("betas", (0.9, 0.999))
        self.beta1, self.beta2 = float(betas[0]), float(betas[1])
        self.eps = float(opt_kwargs.get("eps", 1e-8))
        self.device = torch.device(net.device if net.device is not None else "cpu")
        self.n_classes = n_classes


class _Unsupported(Exception):
    """The net cannot be trained by the vectorized engine (message says why)."""


def _probe_module(net, X, n_classes: int):
    """Build one member module and run a vmapped train-mode step on two rows, or raise."""
    import torch
    from torch.func import functional_call, stack_module_state, vmap

    member = make_member(net, 0, 0, n_classes)
    with torch_seeded(0, [member]):
        member.initialize()
    module = member.module_
    if any(True for _ in module.buffers()):
        raise _Unsupported(
            "the module has buffers (e.g. BatchNorm running statistics), which would mix the "
            "padded rows into the statistics"
        )
    first = next(module.parameters(), None)
    if first is not None and first.is_floating_point():
        x_dtype = torch.as_tensor(np.asarray(X[:1])).dtype
        if x_dtype != first.dtype:
            raise TypeError(
                f"X has dtype {np.asarray(X[:1]).dtype} but the net's parameters are "
                f"{first.dtype}; skorch nets need matching dtypes. Pass "
                "X.astype(np.float32) (or build a module of X's dtype)."
            )
    module.train()
    params, _ = stack_module_state([module, module])
    xb = torch.as_tensor(np.asarray(X[:2])).to(member.device or "cpu")
    xb = torch.stack([xb, xb])

    def call(p, x):
        return functional_call(module, (p, {}), (x,))

    try:
        out = vmap(call, randomness="error")(params, xb)
    except Exception as exc:  # vmap raises many types for modules it cannot batch
        raise _Unsupported(f"vmap cannot run the module in training mode ({exc})") from exc
    if not isinstance(out, torch.Tensor) or out.ndim != 3 or out.shape[2] != n_classes:
        shape = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else type(out).__name__
        raise _Unsupported(
            f"the module's output {shape} is not one (n_rows, n_classes={n_classes}) tensor"
        )
    sizes = [p.numel() for p in module.parameters()]
    return sum(sizes), max(sizes)


def check_vectorizable(net, X, n_classes: int):
    """Return ``(config, n_params_per_member)`` or raise ``_Unsupported``."""
    if not isinstance(X, np.ndarray) or not np.issubdtype(X.dtype, np.floating):
        raise _Unsupported("X must be a floating numpy array")
    config = _Config(net, n_classes)
    n_params = _probe_module(net, X, n_classes)
    return config, n_params


def auto_chunk_size(
    config: _Config,
    n_params: tuple[int, int],
    row_numel: int,
    n_members_total: int,
    memory_budget: int | None,
) -> int:
    """Members per chunk, from the module's size and the total number of member ids.

    Never depends on data sizes or on which members are present. Two limits: the chunk's
    training state (parameters, gradients, two optimizer states, temporaries and a few copies
    of the batch) stays under ``memory_budget``; and no single stacked tensor exceeds
    ``_TENSOR_CAP`` bytes, so the allocator can recycle them between steps instead of mapping
    fresh pages each step (page faults otherwise dominate on CPU).
    """
    total, largest = n_params
    budget = _DEFAULT_MEMORY_BUDGET if memory_budget is None else int(memory_budget)
    batch = config.batch_size * max(row_numel, config.n_classes)
    per_member = 4 * (6 * total + 8 * batch)
    cap = budget // per_member
    if config.device.type == "cpu":  # the CUDA caching allocator recycles blocks by itself
        cap = min(cap, _TENSOR_CAP // (4 * max(largest, batch)))
    cap = max(1, cap)
    n_chunks = math.ceil(n_members_total / cap)
    return math.ceil(n_members_total / n_chunks)


_MIRROR_OK: bool | None = None


def _mirror_orders(n: int, epochs: int, gen) -> list:
    # What DataLoader(shuffle=True, generator=gen) draws per epoch: one int64 base seed for the
    # iterator, then RandomSampler's randperm (used) and a trailing randperm(n)[:0] (discarded).
    import torch

    orders = []
    for _ in range(epochs):
        torch.empty((), dtype=torch.int64).random_(generator=gen)
        orders.append(torch.randperm(n, generator=gen).numpy())
        torch.randperm(n, generator=gen)
    return orders


def _loader_orders(n: int, epochs: int, gen) -> list:
    import torch

    loader = torch.utils.data.DataLoader(torch.arange(n), batch_size=n, shuffle=True, generator=gen)
    return [np.concatenate([b.numpy() for b in loader]) for _ in range(epochs)]


def _mirror_matches_dataloader() -> bool:
    """Check once per process that the fast mirror draws exactly what DataLoader draws."""
    global _MIRROR_OK
    if _MIRROR_OK is None:
        import torch

        ok = True
        for n, seed in ((1, 0), (7, 1), (50, 2)):
            a = _mirror_orders(n, 3, torch.Generator().manual_seed(seed))
            b = _loader_orders(n, 3, torch.Generator().manual_seed(seed))
            ok = ok and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
        _MIRROR_OK = ok
    return _MIRROR_OK


def _epoch_orders(n: int, epochs: int, seed: int, shuffle: bool):
    """Row order of each epoch, drawn exactly as skorch's DataLoader draws it."""
    import torch

    if not shuffle:
        return [np.arange(n)] * epochs
    gen = torch.Generator().manual_seed(seed)
    if _mirror_matches_dataloader():
        return _mirror_orders(n, epochs, gen)
    return _loader_orders(n, epochs, gen)  # pragma: no cover - a torch with other draws


def _schedule(sizes, offsets, seeds, config: _Config, slots, chunk_size: int):
    """Index tensor ``(T, chunk_size, W)`` into the chunk's rows and real-row counts ``(T, M)``."""
    bs = config.batch_size
    steps = [config.max_epochs * math.ceil(n / bs) for n in sizes]
    T = max(steps)
    idx = np.zeros((T, chunk_size, bs), dtype=np.int64)
    cnt = np.zeros((T, chunk_size), dtype=np.int64)
    for n, off, seed, slot in zip(sizes, offsets, seeds, slots, strict=True):
        t = 0
        for order in _epoch_orders(n, config.max_epochs, seed, config.shuffle):
            for lo in range(0, n, bs):
                rows = order[lo : lo + bs]
                k = rows.size
                idx[t, slot, :k] = rows + off
                idx[t, slot, k:] = rows[0] + off  # padding: the member's own row, masked
                cnt[t, slot] = k
                t += 1
    return idx, cnt, T


def _initial_modules(net, member_ids, random_state: int) -> list:
    """Each member's freshly initialised module, built under its own torch seed.

    This is the module ``net.initialize()`` builds for the member (skorch's
    ``initialized_instance`` on the net's ``module`` and ``module__*`` parameters, drawn right
    after seeding; callbacks and criterion draw nothing), without building the rest of a net.
    """
    kwargs = net.get_params_for("module")
    seeds = [torch_init_seed(random_state, int(mid)) for mid in member_ids]
    modules = []
    with torch_rng_session([net]) as reseed:
        for seed in seeds:
            reseed(seed)
            modules.append(net.initialized_instance(net.module, kwargs))
    return modules


def _gradient_layouts(template, rows) -> dict:
    """Per parameter, the axis order in which its stacked gradient comes out contiguous.

    One vmapped forward/backward of two slots on two zero rows (shaped like ``rows``) shows how
    autograd lays the gradients out (a ``Linear`` weight's gradient, for instance, comes
    transposed). Storing each stacked parameter in that order lets the optimizer read the
    gradients without a copy. Only speed depends on this: a gradient in another layout is
    copied. Returns ``{name: perm}`` (``None`` for the usual layout), slot axis first.
    """
    import torch
    from torch.func import functional_call, vmap

    stacked = {
        name: torch.stack([p.detach(), p.detach()]).requires_grad_(True)
        for name, p in template.named_parameters()
    }
    x = torch.zeros((2, 2, *rows.shape[1:]), dtype=rows.dtype, device=rows.device)
    out = vmap(lambda p, x: functional_call(template, (p, {}), (x,)))(stacked, x)
    grads = torch.autograd.grad(out.square().sum(), list(stacked.values()), allow_unused=True)
    layouts = {}
    for name, g in zip(stacked, grads, strict=True):
        perm = None if g is None or g.is_contiguous() else _dense_permutation(g)
        layouts[name] = perm
    return layouts


def _dense_permutation(grad):
    """Permutation ``perm`` with ``grad.permute(perm)`` contiguous and the slot axis first."""
    order = sorted(range(grad.ndim), key=lambda d: -grad.stride(d))
    if order[0] != 0 or not grad.permute(order).is_contiguous():
        return None
    return order


def _stack_slots(modules, slots, chunk_size: int, layouts: dict, device) -> dict:
    """``{name: stacked tensor}``, contiguous in the axis order ``layouts[name]``.

    The tensor has ``chunk_size`` slots along axis 0 (slots without a member hold zeros).
    """
    import torch

    module_of = dict(zip(slots, modules, strict=True))
    stacked = {}
    with torch.no_grad():
        for name, first in modules[0].named_parameters():
            perm = layouts[name]
            zero = torch.zeros_like(first) if len(module_of) < chunk_size else None
            values = []
            for slot in range(chunk_size):
                value = module_of[slot].get_parameter(name) if slot in module_of else zero
                values.append(value if perm is None else value.permute([d - 1 for d in perm[1:]]))
            stacked[name] = torch.stack(values).to(device)
    return stacked


def train_chunk(
    net,
    X,
    y,
    subsets,
    member_ids,
    slots,
    *,
    chunk_size: int,
    n_classes: int,
    random_state: int,
    verbose: int = 0,
    workspace: dict | None = None,
) -> dict:
    """Train the members of one chunk; return their stacked parameters.

    Returns ``{name: (chunk_size, *param.shape) tensor}`` on the net's device; ``slots[i]`` holds
    member ``member_ids[i]`` and absent slots hold zeros. ``workspace`` (a dict) keeps the
    gradient layouts and the optimizer's buffers; passing the dict of an earlier chunk of the
    same net reuses them (buffers are reset here, so no state carries over).
    """
    import torch
    from torch.func import functional_call, vmap

    config = _Config(net, n_classes)
    device = config.device
    modules = _initial_modules(net, member_ids, random_state)
    template = modules[0].to(device).train()  # supplies the forward; its weights are not used

    # the chunk's rows, each member's rows contiguous, on the device
    sizes = [len(s) for s in subsets]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    rows = np.concatenate(subsets)
    Xc = torch.as_tensor(np.ascontiguousarray(X[rows])).to(device)
    yc = torch.as_tensor(np.asarray(y[rows], dtype=np.int64)).to(device)
    seeds = [shuffle_seed(random_state, int(mid)) for mid in member_ids]
    idx_np, cnt_np, T = _schedule(sizes, offsets, seeds, config, slots, chunk_size)
    idx = torch.as_tensor(idx_np).to(device)
    cnt = torch.as_tensor(cnt_np).to(device)
    arange_w = torch.arange(config.batch_size, device=device)
    weight = (
        None
        if config.class_weight is None
        else torch.as_tensor(config.class_weight, dtype=Xc.dtype).to(device)
    )

    # Each stacked parameter is stored in the axis order its gradient comes in (the forward
    # sees the usual layout through a permuted view), so the optimizer reads gradients as they
    # are. The layout depends only on the module and the shapes, never on the data.
    workspace = {} if workspace is None else workspace
    if "layouts" not in workspace:
        workspace["layouts"] = _gradient_layouts(template, Xc)
    layouts = workspace["layouts"]
    leaves = _stack_slots(modules, slots, chunk_size, layouts, device)
    names = list(leaves)
    inverse = {
        name: None if perm is None else [perm.index(d) for d in range(len(perm))]
        for name, perm in layouts.items()
    }
    for leaf in leaves.values():
        leaf.requires_grad_(True)

    def call(p, x):
        return functional_call(template, (p, {}), (x,))

    batched = vmap(call)
    state = workspace.setdefault("buffers", {name: {} for name in names})
    steps = range(T)
    if verbose > 1:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="vectorized steps", unit="step", leave=False)
    real = np.zeros(chunk_size, dtype=bool)
    real[list(slots)] = True
    for t in steps:
        it = idx[t]
        xb = Xc[it]  # (M, W, ...): one gather per step
        yb = yc[it]
        c = cnt[t]
        active = c > 0
        valid = arange_w < c[:, None]
        views = {
            name: leaf if inverse[name] is None else leaf.permute(inverse[name])
            for name, leaf in leaves.items()
        }
        out = batched(views, xb)  # (M, W, C)
        if config.log_probs:
            out = torch.log(out + torch.finfo(out.dtype).eps)
        flat = out.reshape(-1, out.shape[-1])
        ytrue = yb.reshape(-1)
        if config.criterion is torch.nn.CrossEntropyLoss:
            rowloss = torch.nn.functional.cross_entropy(
                flat,
                ytrue,
                weight=weight,
                ignore_index=config.ignore_index,
                reduction="none",
                label_smoothing=config.label_smoothing,
            )
        else:
            rowloss = torch.nn.functional.nll_loss(
                flat, ytrue, weight=weight, ignore_index=config.ignore_index, reduction="none"
            )
        rowloss = rowloss.reshape(valid.shape)
        counted = valid & (yb != config.ignore_index)
        if weight is None:
            den = counted.sum(1).to(out.dtype)
        else:
            den = torch.where(counted, weight[yb.clamp(0, n_classes - 1)], 0).sum(1)
        den = torch.where(active, den, torch.ones_like(den))
        loss = (rowloss.masked_fill(~counted, 0).sum(1) / den).sum()
        grads = dict(zip(names, torch.autograd.grad(loss, list(leaves.values())), strict=True))
        # every real member takes this step: update in place; else only the active slots move
        stepping = cnt_np[t] > 0
        moving = None
        if not stepping[real].all():
            moving = torch.as_tensor(np.flatnonzero(stepping)).to(device)
        with torch.no_grad():
            for name, p in leaves.items():
                _update(config, state[name], p, grads[name], t, moving)

    return {
        name: (leaf if inverse[name] is None else leaf.permute(inverse[name])).detach()
        for name, leaf in leaves.items()
    }


def _buffer(st: dict, key: str, like, *, zero: bool = True):
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


def train_chunks(net, X, y, specs, **kwargs) -> list:
    """Train several chunks one after another (one joblib job), sharing one workspace.

    ``specs`` holds ``(subsets, member_ids, slots)`` per chunk; ``kwargs`` go to
    :func:`train_chunk`. Returns one dict of stacked parameters per chunk.
    """
    if kwargs.get("verbose"):
        from tqdm.auto import tqdm

        specs = tqdm(specs, desc="training chunks", unit="chunk", leave=False)
    workspace: dict = {}
    return [train_chunk(net, X, y, *spec, workspace=workspace, **kwargs) for spec in specs]


def _copy_slots(target, source, slots) -> None:
    """``target[slots] = source[slots]`` along the slot axis, in place."""
    target.index_copy_(0, slots, source.index_select(0, slots))


def _update(config: _Config, st: dict, p, g, t: int, active) -> None:
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
            _copy_slots(st[name], new, active)

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
            _buffer(st, "buf", p)
        if active is None:
            fused([p], [g], [st["buf"]], is_first_step=t == 0, **kwargs)
            return
        # The kernel runs over full-size scratch copies (only the active slots need current
        # values), then the active slots are copied back.
        new_p = _buffer(st, "scratch_p", p, zero=False)
        new_buf = _buffer(st, "scratch_buf", p, zero=False)
        _copy_slots(new_p, p, active)
        _copy_slots(new_buf, st["buf"], active)
        fused([new_p], [g], [new_buf], is_first_step=False, **kwargs)
        _copy_slots(p, new_p, active)
        _copy_slots(st["buf"], new_buf, active)
        return
    if config.weight_decay:
        g = g.add(p, alpha=config.weight_decay)
    if config.optimizer == "sgd":
        if config.momentum:
            if t == 0:  # every member's first step is global step 0
                _buffer(st, "buf", p, zero=False).copy_(g)
            elif active is None:
                st["buf"].mul_(config.momentum).add_(g, alpha=1 - config.dampening)
            else:
                assign("buf", st["buf"].mul(config.momentum).add(g, alpha=1 - config.dampening))
            buf = st["buf"]
            g = g.add(buf, alpha=config.momentum) if config.nesterov else buf
        if active is None:
            p.add_(g, alpha=-config.lr)
        else:
            _copy_slots(p, p.add(g, alpha=-config.lr), active)
        return
    # Adam: an active member at global step t has taken exactly t + 1 steps
    if t == 0:
        _buffer(st, "m", p)
        _buffer(st, "v", p)
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
        _copy_slots(p, p.addcdiv(st["m"], denom, value=-config.lr / bias1), active)


def fit_vectorized(
    net,
    X,
    y,
    subsets,
    member_ids,
    *,
    n_classes,
    random_state,
    n_jobs,
    verbose,
    chunk_size,
    n_members_total,
    memory_budget,
    n_params,
):
    """Group members into id-determined chunks, train the chunks through joblib, stack them."""
    from joblib import effective_n_jobs
    from sklearn.base import clone
    from sklearn.utils.parallel import Parallel, delayed

    config = _Config(net, n_classes)
    if n_members_total is None:
        n_members_total = int(member_ids.max()) + 1
    elif n_members_total <= int(member_ids.max()):
        raise ValueError(
            f"n_members_total={n_members_total} but member_ids go up to {int(member_ids.max())}; "
            "n_members_total must exceed every member id."
        )
    if chunk_size is None:
        row_numel = int(np.prod(X.shape[1:])) if X.ndim > 1 else 1
        chunk_size = auto_chunk_size(config, n_params, row_numel, n_members_total, memory_budget)
    chunks: dict[int, list[int]] = {}
    for pos, mid in enumerate(member_ids):
        chunks.setdefault(int(mid) // chunk_size, []).append(pos)
    keys = sorted(chunks)
    specs = [
        (
            [subsets[p] for p in chunks[key]],
            [int(member_ids[p]) for p in chunks[key]],
            [int(member_ids[p]) % chunk_size for p in chunks[key]],
        )
        for key in keys
    ]
    # Consecutive chunks go to the same job, which reuses their buffers' memory; the grouping
    # only balances the work (no chunk's arithmetic depends on it).
    workers = effective_n_jobs(n_jobs)
    n_groups = 1 if workers == 1 else min(len(specs), 4 * workers)
    groups = [g for g in np.array_split(np.arange(len(specs)), n_groups) if g.size]
    jobs = [
        delayed(train_chunks)(
            net,
            X,
            y,
            [specs[c] for c in group],
            chunk_size=chunk_size,
            n_classes=n_classes,
            random_state=random_state,
            verbose=verbose,
        )
        for group in groups
    ]
    results = Parallel(n_jobs=n_jobs, return_as="generator")(jobs)
    if verbose and len(jobs) > 1:
        from tqdm.auto import tqdm

        results = tqdm(results, total=len(jobs), desc="chunk groups", unit="group")
    stacked = [chunk for group in results for chunk in group]
    chunk_of = np.empty(len(subsets), dtype=np.int64)
    for position, key in enumerate(keys):
        chunk_of[chunks[key]] = position
    return StackedMembers(
        clone(net),
        stacked,
        chunk_of,
        member_ids % chunk_size,
        member_ids,
        n_classes=n_classes,
        random_state=random_state,
    )


def unsupported_reason(net, X, n_classes: int):
    """``(None, n_params)`` if the vectorized engine can train ``net``, else ``(reason, None)``."""
    try:
        _, n_params = check_vectorizable(net, X, n_classes)
    except _Unsupported as exc:
        return str(exc), None
    return None, n_params
