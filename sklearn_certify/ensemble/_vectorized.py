"""The vectorized engine: train a chunk of skorch members at once with ``torch.func``.

Within a chunk the members' parameters are stacked (``torch.func.stack_module_state``) and one
``vmap(functional_call)`` forward/backward per step trains them all. Partition independence
(the user guide's scaling page, "The one rule: members are independent") is kept exactly:

* a member's initial weights are those of the module ``net.initialize()`` builds, drawn under
  its own torch seed, and its batch order comes from a ``torch.Generator`` seeded by
  ``(seed, member_id)``, drawn through a ``DataLoader`` exactly as the loop engine's
  skorch fit draws it;
* it takes exactly ``max_epochs * ceil(n_i / batch_size)`` optimizer steps; on later steps of the
  chunk its parameters and optimizer state are left exactly as they are;
* every batch tensor has the fixed shape ``(chunk_size, batch_size, ...)``: short batches are
  padded with copies of the member's own rows and masked out of the loss (the loss is the
  sum of the real rows' losses over their count, as skorch's mean);
* chunk membership is ``member_id // chunk_size`` and a chunk always holds ``chunk_size`` slots
  (absent ids are inert dummy slots), so no shape depends on which other members exist;
* a step that only some members take runs the optimizer kernel over full-size tensors and copies
  back the active slots, so an active slot's arithmetic is the same in every step;
* a learning-rate schedule gives each slot the values of its own member's schedule (its own
  batches per epoch), and gradient clipping scales each slot by its own gradients' norm;
* a module with dropout draws each step's random numbers for the whole chunk, as one tensor of
  fixed shape, from torch's generator seeded by ``(seed, chunk, step)``; a member gets
  the part at its slot, so its draws depend on its id alone.

A chunk keeps one device copy of the rows its members need (for a plan with all rows, ``X``
itself, once per job), schedules positions into it, and applies the plan's view to each step's
batches with the rows' original ids. The trained chunks are returned as a
:class:`~sklearn_certify.ensemble.StackedMembers`.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np

from sklearn_certify.ensemble._batch_norm import RowMask, masked_template
from sklearn_certify.ensemble._loop import check_view_output
from sklearn_certify.ensemble._net_config import (
    _DEFAULT_MEMORY_BUDGET,
    NetConfig,
    auto_chunk_size,
)
from sklearn_certify.ensemble._optim import (
    chunk_hypers,
    clip_gradients,
    optimizer_step,
    scheduled_step,
)
from sklearn_certify.ensemble._schedule import batch_schedule
from sklearn_certify.ensemble._seeding import chunk_step_seed, member_seed
from sklearn_certify.ensemble._skorch import torch_rng_session, torch_seeded
from sklearn_certify.ensemble._stacked import StackedMembers
from sklearn_certify.ensemble._threads import one_thread

#: Elements of one block of rows a ``view_once`` view is applied to. It bounds the view's
#: temporaries (keyed noise makes about ten arrays of 8-byte words this long) to a few MB:
#: when larger ones were freed, the C allocator kept later large blocks in its heap, and peak
#: memory grew with every chunk (1.29x for 1,000 RAB members against 100; 1.15x now).
_VIEW_BLOCK_ELEMENTS = 1 << 18


def _initial_modules(net, member_ids, seed: int) -> list:
    """Each member's freshly initialised module, built under its own torch seed.

    This is the module ``net.initialize()`` builds for the member (skorch's
    ``initialized_instance`` on the net's ``module`` and ``module__*`` parameters, drawn right
    after seeding; callbacks and criterion draw nothing), without building the rest of a net.
    """
    kwargs = net.get_params_for("module")
    init_seeds = [member_seed(seed, int(mid), "torch_init") for mid in member_ids]
    modules = []
    with torch_rng_session([net]) as reseed:
        for init_seed in init_seeds:
            reseed(init_seed)
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
    buffers = {name: torch.stack([b, b]) for name, b in template.named_buffers()}
    x = torch.zeros((2, 2, *rows.shape[1:]), dtype=rows.dtype, device=rows.device)
    forward = vmap(lambda p, b, x: functional_call(template, (p, b), (x,)), randomness=randomness)
    with torch_seeded(0):  # a module with dropout draws; leave the caller's generator alone
        out = forward(stacked, buffers, x)
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


def _stack_buffers(modules, slots, chunk_size: int, device) -> dict:
    """``{name: stacked buffer}`` with ``chunk_size`` slots (absent slots copy the first)."""
    import torch

    module_of = dict(zip(slots, modules, strict=True))
    first = modules[0]
    return {
        name: torch.stack(
            [
                (module_of[s] if s in module_of else first).get_buffer(name).detach().to(device)
                for s in range(chunk_size)
            ]
        )
        for name, _ in first.named_buffers()
    }


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
                value = value if perm is None else value.permute([d - 1 for d in perm[1:]])
                values.append(value.to(device))  # the template module already lives there
            stacked[name] = torch.stack(values)
    return stacked


class RowStore(NamedTuple):
    """Rows a chunk trains on, on the net's device: features, labels and their ids in ``X``."""

    X: object  # torch.Tensor (n_store, ...)
    y: object  # torch.Tensor (n_store,) int64
    row_ids: object  # torch.Tensor (n_store,) int64: the rows' indices into the training X


def row_store(X, y, rows, device) -> RowStore:
    """One device copy of ``X[rows]`` (all of ``X`` when ``rows`` is None; no copy on CPU)."""
    import torch

    if rows is None:
        rows = np.arange(X.shape[0])
        X_rows, y_rows = np.ascontiguousarray(X), y
    else:
        X_rows, y_rows = np.ascontiguousarray(X[rows]), y[rows]
    with warnings.catch_warnings():
        # joblib hands process workers a read-only memory map of X; the store is only read
        warnings.filterwarnings("ignore", "The given NumPy array is not writable")
        X_store = torch.as_tensor(X_rows)
    return RowStore(
        X_store.to(device),
        torch.as_tensor(np.asarray(y_rows, dtype=np.int64)).to(device),
        torch.as_tensor(np.asarray(rows, dtype=np.int64)).to(device),
    )


def chunk_positions(plan, positions, n_samples: int):
    """The rows a chunk needs (``None``: all of X) and each member's rows as store positions."""
    if plan.all_rows:
        return None, [np.arange(n_samples)] * len(positions)
    subsets = [plan.rows[p] for p in positions]
    needed = np.unique(np.concatenate(subsets))
    return needed, [np.searchsorted(needed, s) for s in subsets]


def train_chunk(
    net,
    store: RowStore,
    positions,
    member_ids,
    slots,
    *,
    chunk_size: int,
    config: NetConfig,
    seed: int,
    view=None,
    view_once: bool = False,
    randomness: str = "error",
    batch_norm: str | None = None,
    verbose: int = 0,
    workspace: dict | None = None,
) -> dict:
    """Train the members of one chunk; return their stacked parameters.

    ``config`` is the net's :class:`NetConfig`, built once per fit. Member ``member_ids[i]``
    sits in slot ``slots[i]`` and trains on the store rows ``positions[i]`` (in that order).
    Returns ``{name: (chunk_size, *param.shape) tensor}`` on the net's device; absent slots
    hold zeros. ``view`` (the plan's) is applied to each step's
    batches, or with ``view_once`` to all store rows of every slot once, before the first
    step. ``randomness="different"`` (a module with dropout) draws each step's random numbers
    for the whole chunk from torch's generator seeded by ``(seed, chunk, step)``, so
    slot ``s`` always gets the same part of a draw of a fixed shape. ``batch_norm`` says how
    a module with BatchNorm layers sees its batches: ``"trim"`` (members of equal size, whose
    short batches all have the same number of rows) cuts each step's batches to their real
    rows, ``"masked"`` keeps the padded shape and computes the statistics over real rows only
    (:mod:`._batch_norm`). The net's training step (``config.training_step``) and
    augmentation (``config.augment``) run per member, keyed by ``member_seed(seed, id,
    "step")``, the member's step count and its epoch. ``workspace`` (a dict)
    keeps the gradient layouts, the optimizer's buffers and the learning-rate schedule's tables;
    passing the dict of an earlier chunk of the same net reuses them (buffers are reset here,
    so no state carries over).
    """
    import torch
    from torch.func import functional_call, vmap

    device = config.device
    modules = _initial_modules(net, member_ids, seed)
    template = modules[0].to(device).train()  # supplies the forward; its weights are not used
    holder = None
    if batch_norm is not None:  # trimmed batches have no padding: only momentum=None is patched
        holder = RowMask()
        template = masked_template(template, holder, cumulative_only=batch_norm == "trim")

    shuffle_seeds = [member_seed(seed, int(mid), "shuffle") for mid in member_ids]
    idx_np, cnt_np, T = batch_schedule(positions, shuffle_seeds, config, slots, chunk_size)
    workspace = {} if workspace is None else workspace
    hypers = None
    if config.lr_schedule is not None:  # each member's own schedule, from its own batch count
        n_batches = [math.ceil(len(p) / config.batch_size) for p in positions]
        tables = workspace.setdefault("hyper_tables", {})
        hypers = chunk_hypers(config, n_batches, slots, chunk_size, T, store.X, tables)
    idx = torch.as_tensor(idx_np).to(device)
    cnt = torch.as_tensor(cnt_np).to(device)
    arange_w = torch.arange(config.batch_size, device=device)
    row_loss = config.row_loss
    if row_loss.class_weight is not None:
        row_loss = row_loss._replace(
            class_weight=row_loss.class_weight.to(dtype=store.X.dtype, device=device)
        )
    keys = epoch_of = None
    if config.augment is not None or config.custom_gradients:  # keyed draws: the member's key
        keys, epoch_of = _slot_keys(positions, member_ids, slots, chunk_size, seed, config, device)
    slot_view_args = None
    if view is not None:
        slot_view_args = _slot_view_args(member_ids, slots, chunk_size, seed, device)
    X_source, x_offsets = store.X, None
    if view is not None and view_once:  # each slot's viewed copy of the store, gathered below
        X_source = _viewed_store(view, store, slot_view_args, workspace)
        x_offsets = (torch.arange(chunk_size, device=device) * store.X.shape[0])[:, None]
        X_source = X_source.reshape(-1, *store.X.shape[1:])

    # Each stacked parameter is stored in the axis order its gradient comes in (the forward
    # sees the usual layout through a permuted view), so the optimizer reads gradients as they
    # are. The layout depends only on the module and the shapes, never on the data.
    if "layouts" not in workspace:
        if holder is not None:  # the probe's two rows are both real
            holder.mask = torch.ones(2, dtype=torch.bool, device=device)
        workspace["layouts"] = _gradient_layouts(template, store.X, randomness)
    layouts = workspace["layouts"]
    leaves = _stack_slots(modules, slots, chunk_size, layouts, device)
    buffers = _stack_buffers(modules, slots, chunk_size, device)
    names = list(leaves)
    inverse = {
        name: None if perm is None else [perm.index(d) for d in range(len(perm))]
        for name, perm in layouts.items()
    }
    for leaf in leaves.values():
        leaf.requires_grad_(True)

    step_fn = config.training_step

    def member_loss(p, b, x, y, mask):
        if holder is not None:
            holder.mask = mask
        return step_fn.loss(functional_call(template, (p, b), (x,)), y, mask, row_loss)

    def member_gradients(p, b, x, y, mask, key, step):
        def loss_of(p_, x_, y_, mask_):
            return member_loss(p_, b, x_, y_, mask_)

        return step_fn.gradients(loss_of, p, (x, y, mask), key, step)

    if config.custom_gradients:
        batched = vmap(member_gradients, randomness=randomness)
    else:
        batched = vmap(member_loss, randomness=randomness)
    chunk = int(member_ids[0]) // chunk_size
    state = workspace.setdefault("buffers", {name: {} for name in names})
    steps = range(T)
    if verbose > 1:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="vectorized steps", unit="step", leave=False)
    real = np.zeros(chunk_size, dtype=bool)
    real[list(slots)] = True
    for t in steps:
        it, width = idx[t], arange_w
        if batch_norm == "trim":  # equal members: every real slot has the same rows this step
            n_rows = int(cnt_np[t][real].max())
            it, width = it[:, :n_rows], arange_w[:n_rows]
        yb = store.y[it]
        if x_offsets is not None:
            xb = X_source[it + x_offsets]  # (M, W, ...): each slot from its own viewed copy
        else:
            xb = X_source[it]  # (M, W, ...): one gather per step
            if view is not None:
                xb = _viewed(view, xb, store.row_ids[it], slot_view_args, check=t == 0)
        if config.augment is not None:
            plain, xb = xb, config.augment(xb, store.row_ids[it], keys, epoch_of(t))
            if t == 0:
                check_view_output(xb, plain)
        mask = width < cnt[t][:, None]
        args = (buffers, xb, yb, mask)
        views = {name: _slot_view(leaf, inverse[name]) for name, leaf in leaves.items()}
        if config.custom_gradients:  # the step differentiates by itself
            views = {name: view.detach() for name, view in views.items()}
            args = (*args, keys, torch.full_like(keys, t))
        if randomness == "error":
            res = batched(views, *args)
        else:
            with torch_rng_session([net]) as reseed:
                reseed(chunk_step_seed(seed, chunk, t))
                res = batched(views, *args)
        if config.custom_gradients:
            grads = {name: _leaf_layout(res[0][name], layouts[name]) for name in names}
        else:
            loss = res.sum()
            grads = dict(zip(names, torch.autograd.grad(loss, list(leaves.values())), strict=True))
        if config.clip is not None:
            grads = clip_gradients(grads, *config.clip)
        # every real member takes this step: update in place; else only the active slots move
        stepping = cnt_np[t] > 0
        moving = None
        if not stepping[real].all():
            moving = torch.as_tensor(np.flatnonzero(stepping)).to(device)
        hyper = None if hypers is None else {k: v[t] for k, v in hypers.items()}
        with torch.no_grad():
            for name, p in leaves.items():
                if hyper is None:
                    optimizer_step(config, state[name], p, grads[name], t, moving)
                else:
                    scheduled_step(config, state[name], p, grads[name], t, moving, hyper)

    trained = {name: _slot_view(leaf, inverse[name]).detach() for name, leaf in leaves.items()}
    trained.update(buffers)
    return trained


def _slot_view(leaf, inverse):
    """A stacked parameter in the module's own axis order (``leaf`` is stored permuted)."""
    return leaf if inverse is None else leaf.permute(inverse)


def _leaf_layout(grad, perm):
    """A gradient in the module's axis order, laid out as its stored parameter is."""
    return grad if perm is None else grad.permute(perm)


def _slot_keys(positions, member_ids, slots, chunk_size: int, seed: int, config, device):
    """Per slot, the member's step key (``0`` for absent slots), and ``epoch_of(t)``.

    ``epoch_of(t)`` gives the epoch each slot is in at step ``t`` (a member's epochs have its
    own number of batches), as a device tensor.
    """
    import torch

    keys = np.zeros(chunk_size, dtype=np.int64)
    per_epoch = np.ones(chunk_size, dtype=np.int64)
    for member_positions, mid, slot in zip(positions, member_ids, slots, strict=True):
        keys[slot] = member_seed(seed, int(mid), "step")
        per_epoch[slot] = max(1, math.ceil(len(member_positions) / config.batch_size))
    per_epoch_t = torch.as_tensor(per_epoch).to(device)

    def epoch_of(t: int):
        return torch.div(t, per_epoch_t, rounding_mode="floor")

    return torch.as_tensor(keys).to(device), epoch_of


def _slot_view_args(member_ids, slots, chunk_size: int, seed: int, device):
    """Per slot: member id (``-1`` for placeholders) and view seed (``0``), as device tensors."""
    import torch

    ids = np.full(chunk_size, -1, dtype=np.int64)
    seeds = np.zeros(chunk_size, dtype=np.int64)
    for mid, slot in zip(member_ids, slots, strict=True):
        ids[slot] = int(mid)
        seeds[slot] = member_seed(seed, int(mid), "view")
    return torch.as_tensor(ids).to(device), torch.as_tensor(seeds).to(device)


def _viewed_store(view, store: RowStore, slot_view_args, workspace: dict):
    """Every slot's view of all store rows, ``(chunk_size, n_store, ...)``, in row blocks.

    The result lives in ``workspace["viewed"]``, reused by the job's next chunk when its shape
    matches: allocating a large buffer per chunk makes the allocator hold on to more memory
    with every chunk.
    """
    ids = slot_view_args[0]
    n_slots, n_rows = ids.shape[0], store.X.shape[0]
    row_numel = max(1, int(np.prod(store.X.shape[1:])))
    block = max(1, _VIEW_BLOCK_ELEMENTS // (n_slots * row_numel))
    shape = (n_slots, *store.X.shape)
    out = workspace.get("viewed")
    if out is None or out.shape != shape or out.dtype != store.X.dtype:
        out = workspace["viewed"] = store.X.new_empty(shape)
    for lo in range(0, n_rows, block):
        rows = store.X[lo : lo + block]
        batch = rows.unsqueeze(0).expand(n_slots, *rows.shape)
        row_ids = store.row_ids[lo : lo + block].unsqueeze(0).expand(n_slots, -1)
        out[:, lo : lo + block] = _viewed(view, batch, row_ids, slot_view_args, check=lo == 0)
    return out


def _viewed(view, xb, row_ids, slot_view_args, *, check: bool):
    """The view of one step's batches; its output is checked on the first step."""
    out = view(xb, row_ids, *slot_view_args)
    if check:
        check_view_output(out, xb)
    return out


def train_chunks(net, X, y, plan, specs, progress=None, **kwargs) -> list:
    """Train several chunks one after another (one joblib job), sharing one workspace.

    ``specs`` holds ``(positions, member_ids, slots)`` per chunk, where ``positions`` are the
    plan positions of the chunk's members; ``kwargs`` go to :func:`train_chunk` (with
    ``view_once`` as decided for the whole fit). A plan with
    all rows puts ``X`` on the device once for every chunk of the job. ``progress`` (a tqdm
    bar) advances by each chunk's members. Returns one dict of stacked parameters per chunk.
    """
    device = kwargs["config"].device
    shared = row_store(X, y, None, device) if plan.all_rows else None
    workspace: dict = {}
    results = []
    for positions, member_ids, slots in specs:
        needed, member_positions = chunk_positions(plan, positions, X.shape[0])
        store = shared if shared is not None else row_store(X, y, needed, device)
        results.append(
            train_chunk(
                net,
                store,
                member_positions,
                member_ids,
                slots,
                view=plan.view,
                workspace=workspace,
                **kwargs,
            )
        )
        if progress is not None:
            progress.update(len(member_ids))
    return results


def _chunking(config, probe, X, plan, chunk_size, memory_budget) -> tuple[int, bool]:
    """Chunk size and whether the plan's view is applied once per member (``view_once``).

    ``view_once="auto"`` applies the view once when every slot's viewed copy of the rows fits
    the memory budget at a chunk size at least half the one without the copies (or, with a
    given ``chunk_size``, when ``chunk_size`` copies fit the budget); otherwise per step. The
    two give the same rows, so the choice only trades memory for time.
    """
    once = plan.view is not None and bool(plan.view_once)
    if chunk_size is not None:
        if plan.view_once == "auto":
            budget = _DEFAULT_MEMORY_BUDGET if memory_budget is None else memory_budget
            once = chunk_size * X.nbytes <= budget
        return chunk_size, once
    kw = dict(
        row_numel=int(np.prod(X.shape[1:])) if X.ndim > 1 else 1,
        n_members_total=plan.n_members_total,
        memory_budget=memory_budget,
        shared_bytes=X.nbytes if plan.all_rows else 0,
        with_view=plan.view is not None,
    )
    with_copies = auto_chunk_size(config, probe, member_data_bytes=X.nbytes, **kw)
    if not once:
        return auto_chunk_size(config, probe, **kw), False
    if plan.view_once == "auto":
        without = auto_chunk_size(config, probe, **kw)
        if 2 * with_copies < without:
            return without, False
    return with_copies, True


def fit_vectorized(
    net,
    X,
    y,
    plan,
    *,
    config: NetConfig,
    seed,
    n_jobs,
    verbose,
    chunk_size,
    memory_budget,
    probe,
):
    """Group members into id-determined chunks, train the chunks through joblib, stack them.

    ``config`` (the net's :class:`NetConfig`) and ``probe`` come from the check that chose
    this engine; every chunk reuses them.
    """
    from joblib import effective_n_jobs
    from sklearn.base import clone
    from sklearn.utils.parallel import delayed

    n_classes = config.n_classes
    member_ids = plan.member_ids
    chunk_size, view_once = _chunking(config, probe, X, plan, chunk_size, memory_budget)
    chunks: dict[int, list[int]] = {}
    for pos, mid in enumerate(member_ids):
        chunks.setdefault(int(mid) // chunk_size, []).append(pos)
    keys = sorted(chunks)
    specs = [
        (
            chunks[key],
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
    batch_norm = None
    if probe.batch_norm:  # equal members trim their short batches; unequal ones mask padding
        sizes = plan.sizes(X.shape[0])
        _check_batch_norm_batches(sizes, config.batch_size, probe.values_per_row)
        batch_norm = "trim" if len(set(sizes.tolist())) == 1 else "masked"
    kwargs = dict(
        view_once=view_once,
        chunk_size=chunk_size,
        config=config,
        seed=seed,
        randomness=probe.randomness,
        batch_norm=batch_norm,
        verbose=verbose,
    )
    progress = None
    if verbose:
        from tqdm.auto import tqdm

        progress = tqdm(total=plan.n_members, desc="fitting members", unit="member")
    try:
        if len(groups) == 1:  # in this process: the bar advances chunk by chunk
            results = [train_chunks(net, X, y, plan, specs, progress=progress, **kwargs)]
        else:
            jobs = [
                delayed(_train_chunks_one_thread)(
                    net,
                    X,
                    y,
                    plan if plan.all_rows else plan.select([p for c in g for p in specs[c][0]]),
                    _local_specs(specs, g),
                    **kwargs,
                )
                for g in groups
            ]
            results = []
            finished = _parallel(n_jobs)(jobs)
            for group, done in zip(groups, finished, strict=True):
                results.append(done)
                if progress is not None:
                    progress.update(sum(len(specs[c][1]) for c in group))
    finally:
        if progress is not None:
            progress.close()
    stacked = [chunk for group in results for chunk in group]
    chunk_of = np.empty(plan.n_members, dtype=np.int64)
    for position, key in enumerate(keys):
        chunk_of[chunks[key]] = position
    return StackedMembers(
        clone(net),
        stacked,
        chunk_of,
        member_ids % chunk_size,
        member_ids,
        n_classes=n_classes,
        seed=seed,
    )


def _check_batch_norm_batches(sizes, batch_size: int, values_per_row: int) -> None:
    """Refuse members with a one-row batch where BatchNorm would get one value per channel.

    skorch raises on such a batch in the middle of training (torch's BatchNorm cannot compute
    a variance from one value); this says so before any member trains.
    """
    if values_per_row != 1:
        return
    single = [int(n) for n in np.unique(sizes) if n % batch_size == 1]
    if single:
        raise ValueError(
            f"members with {single[0]} rows have a last batch of one row (batch_size="
            f"{batch_size}), on which the module's BatchNorm gets one value per channel and "
            "cannot train (skorch would fail on it too); choose a batch_size (or, for "
            "partitions, an n_partitions) that leaves no member a one-row batch."
        )


def _train_chunks_one_thread(*args, **kwargs) -> list:
    """:func:`train_chunks` in a joblib worker, with one thread (jobs are the parallelism).

    A forked worker (joblib's multiprocessing backend) would hang in OpenMP's thread pool,
    which does not survive a fork; the vectorized members do not depend on the thread count.
    """
    with one_thread():
        return train_chunks(*args, **kwargs)


def _parallel(n_jobs):
    """Joblib ``Parallel`` over chunk groups: results as they finish where the backend can.

    The plain multiprocessing backend cannot return a generator; it gets a list.
    """
    from joblib.parallel import get_active_backend
    from sklearn.utils.parallel import Parallel

    backend, _ = get_active_backend()
    return_as = "generator" if backend.supports_return_generator else "list"
    return Parallel(n_jobs=n_jobs, return_as=return_as)


def _local_specs(specs, group) -> list:
    """The group's specs with plan positions renumbered for the group's own sub-plan."""
    out, offset = [], 0
    for c in group:
        positions, ids, slots = specs[c]
        out.append((list(range(offset, offset + len(positions))), ids, slots))
        offset += len(positions)
    return out
