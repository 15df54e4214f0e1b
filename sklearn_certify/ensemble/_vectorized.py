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
  back the active slots, so an active slot's arithmetic is the same in every step;
* a module with dropout draws each step's random numbers for the whole chunk, as one tensor of
  fixed shape, from torch's generator seeded by ``(random_state, chunk, step)``; a member gets
  the part at its slot, so its draws depend on its id alone.

The trained chunks are returned as a :class:`~sklearn_certify.ensemble.StackedMembers`.
"""

from __future__ import annotations

import numpy as np

from sklearn_certify.ensemble._net_config import NetConfig, auto_chunk_size
from sklearn_certify.ensemble._optim import optimizer_step
from sklearn_certify.ensemble._schedule import batch_schedule
from sklearn_certify.ensemble._seeding import chunk_step_seed, shuffle_seed, torch_init_seed
from sklearn_certify.ensemble._skorch import torch_rng_session, torch_seeded
from sklearn_certify.ensemble._stacked import StackedMembers


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


def _gradient_layouts(template, rows, randomness: str) -> dict:
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
    forward = vmap(lambda p, x: functional_call(template, (p, {}), (x,)), randomness=randomness)
    with torch_seeded(0):  # a module with dropout draws; leave the caller's generator alone
        out = forward(stacked, x)
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
    randomness: str = "error",
    verbose: int = 0,
    workspace: dict | None = None,
) -> dict:
    """Train the members of one chunk; return their stacked parameters.

    Returns ``{name: (chunk_size, *param.shape) tensor}`` on the net's device; ``slots[i]`` holds
    member ``member_ids[i]`` and absent slots hold zeros. ``randomness="different"`` (a module
    with dropout) draws each step's random numbers for the whole chunk from torch's generator
    seeded by ``(random_state, chunk, step)``, so slot ``s`` always gets the same part of a draw
    of a fixed shape. ``workspace`` (a dict) keeps the gradient layouts and the optimizer's
    buffers; passing the dict of an earlier chunk of the same net reuses them (buffers are reset
    here, so no state carries over).
    """
    import torch
    from torch.func import functional_call, vmap

    config = NetConfig(net, n_classes)
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
    idx_np, cnt_np, T = batch_schedule(sizes, offsets, seeds, config, slots, chunk_size)
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
        workspace["layouts"] = _gradient_layouts(template, Xc, randomness)
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

    batched = vmap(call, randomness=randomness)
    chunk = int(member_ids[0]) // chunk_size
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
        views = {
            name: leaf if inverse[name] is None else leaf.permute(inverse[name])
            for name, leaf in leaves.items()
        }
        if randomness == "error":
            out = batched(views, xb)  # (M, W, C)
        else:
            with torch_rng_session([net]) as reseed:
                reseed(chunk_step_seed(random_state, chunk, t))
                out = batched(views, xb)
        loss = _chunk_loss(config, out, yb, cnt[t], arange_w, weight)
        grads = dict(zip(names, torch.autograd.grad(loss, list(leaves.values())), strict=True))
        # every real member takes this step: update in place; else only the active slots move
        stepping = cnt_np[t] > 0
        moving = None
        if not stepping[real].all():
            moving = torch.as_tensor(np.flatnonzero(stepping)).to(device)
        with torch.no_grad():
            for name, p in leaves.items():
                optimizer_step(config, state[name], p, grads[name], t, moving)

    return {
        name: (leaf if inverse[name] is None else leaf.permute(inverse[name])).detach()
        for name, leaf in leaves.items()
    }


def _chunk_loss(config: NetConfig, out, yb, counts, arange_w, weight):
    """Sum over slots of each member's skorch loss on its real rows (padding masked out).

    ``out`` is ``(M, W, C)``, ``yb`` ``(M, W)`` and ``counts`` ``(M,)`` real rows per slot. A
    member's term is the sum of its real rows' losses over their count (or class weight),
    which is skorch's mean; a slot with no rows contributes exactly zero.
    """
    import torch

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
    valid = arange_w < counts[:, None]
    rowloss = rowloss.reshape(valid.shape)
    counted = valid & (yb != config.ignore_index)
    if weight is None:
        den = counted.sum(1).to(out.dtype)
    else:
        den = torch.where(counted, weight[yb.clamp(0, config.n_classes - 1)], 0).sum(1)
    den = torch.where(counts > 0, den, torch.ones_like(den))
    return (rowloss.masked_fill(~counted, 0).sum(1) / den).sum()


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
    probe,
):
    """Group members into id-determined chunks, train the chunks through joblib, stack them."""
    from joblib import effective_n_jobs
    from sklearn.base import clone
    from sklearn.utils.parallel import Parallel, delayed

    config = NetConfig(net, n_classes)
    if n_members_total is None:
        n_members_total = int(member_ids.max()) + 1
    elif n_members_total <= int(member_ids.max()):
        raise ValueError(
            f"n_members_total={n_members_total} but member_ids go up to {int(member_ids.max())}; "
            "n_members_total must exceed every member id."
        )
    if chunk_size is None:
        row_numel = int(np.prod(X.shape[1:])) if X.ndim > 1 else 1
        chunk_size = auto_chunk_size(config, probe, row_numel, n_members_total, memory_budget)
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
            randomness=probe.randomness,
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
