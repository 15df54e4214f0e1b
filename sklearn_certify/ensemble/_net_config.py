"""What the vectorized engine needs from a skorch net: validated settings, a probe, chunk sizes."""

from __future__ import annotations

import contextlib
import math
from typing import NamedTuple

import numpy as np

from sklearn_certify.ensemble._batch_norm import RowMask, batch_norms, masked_template
from sklearn_certify.ensemble._loop import make_member
from sklearn_certify.ensemble._module_check import check_parameter_dtype
from sklearn_certify.ensemble._skorch import torch_seeded
from sklearn_certify.ensemble._step import row_loss_of

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
_COPIES_SHARE = 8  # viewed copies kept for a chunk take at most budget / 8


class NetConfig:
    """Everything the vectorized trainer needs from a skorch net, validated."""

    def __init__(self, net, n_classes: int):
        import torch
        from skorch import NeuralNet, NeuralNetClassifier
        from skorch.dataset import Dataset

        from sklearn_certify.ensemble._certified_net import (
            CertifiedNeuralNetClassifier,
            check_step_settings,
        )
        from sklearn_certify.ensemble._step import TrainingStep

        if type(net) not in (NeuralNet, NeuralNetClassifier, CertifiedNeuralNetClassifier):
            raise Unsupported(
                f"{type(net).__name__} is a subclass of a skorch net (it may override the "
                "training step); NeuralNet, NeuralNetClassifier and "
                "CertifiedNeuralNetClassifier are vectorized (change the step with "
                "CertifiedNeuralNetClassifier(training_step=...))"
            )
        self.training_step = check_step_settings(net) or TrainingStep()
        self.augment = getattr(net, "augment", None)
        # a step that keeps the default gradients is run as one autograd pass over the chunk
        self.custom_gradients = type(self.training_step).gradients is not TrainingStep.gradients
        self.lr_schedule, self.clip = _training_callbacks(net)
        if net.dataset is not Dataset or net.get_params_for("dataset"):
            raise Unsupported("a custom dataset is set")
        if net.iterator_train is not torch.utils.data.DataLoader:
            raise Unsupported("a custom iterator_train is set")
        it_kwargs = net.get_params_for("iterator_train")
        extra = set(it_kwargs) - _ITER_KEYS
        if extra or it_kwargs.get("drop_last", False) or it_kwargs.get("sampler") is not None:
            raise Unsupported(f"unsupported iterator_train settings {sorted(extra) or 'drop_last'}")
        self.shuffle = bool(it_kwargs.get("shuffle", False))
        self.batch_size = int(it_kwargs.get("batch_size", net.batch_size))
        if self.batch_size <= 0:
            raise Unsupported(
                "batch_size=-1 (full batch) gives shapes that depend on the data size"
            )
        self.max_epochs = int(net.max_epochs)

        # criterion
        try:
            self.row_loss = row_loss_of(net)
        except ValueError as exc:
            raise Unsupported(str(exc)) from exc

        # optimizer
        opt = net.optimizer
        opt_kwargs = net.get_params_for("optimizer")
        names = {torch.optim.SGD: "sgd", torch.optim.Adam: "adam", torch.optim.AdamW: "adamw"}
        if opt not in names:
            raise Unsupported(
                f"optimizer {getattr(opt, '__name__', opt)!r} is not supported (SGD, Adam and "
                "AdamW are)"
            )
        keys = _SGD_KEYS if opt is torch.optim.SGD else _ADAM_KEYS
        if opt is torch.optim.Adam:
            keys = keys | {"decoupled_weight_decay"}
        if set(opt_kwargs) - keys or opt_kwargs.get("maximize") or opt_kwargs.get("amsgrad"):
            raise Unsupported(f"optimizer settings {sorted(opt_kwargs)} are not supported")
        if opt_kwargs.get("differentiable"):
            raise Unsupported("differentiable optimizers are not supported")
        if any(k.startswith("param_groups") for k in opt_kwargs):
            raise Unsupported("per-parameter-group optimizer settings are not supported")
        self.optimizer = names[opt]
        self.optimizer_class, self.optimizer_kwargs = opt, opt_kwargs
        if opt_kwargs.get("decoupled_weight_decay"):  # Adam(decoupled_weight_decay=True) is AdamW
            self.optimizer = "adamw"
        self.lr = float(opt_kwargs.get("lr", net.lr))
        default_decay = 1e-2 if opt is torch.optim.AdamW else 0.0  # torch's defaults
        self.weight_decay = float(opt_kwargs.get("weight_decay", default_decay))
        self.momentum = float(opt_kwargs.get("momentum", 0.0))
        self.dampening = float(opt_kwargs.get("dampening", 0.0))
        self.nesterov = bool(opt_kwargs.get("nesterov", False))
        betas = opt_kwargs.get("betas", (0.9, 0.999))
        self.beta1, self.beta2 = float(betas[0]), float(betas[1])
        self.eps = float(opt_kwargs.get("eps", 1e-8))
        self.device = torch.device(net.device if net.device is not None else "cpu")
        self.n_classes = n_classes
        self.scheduled_momentum = self.lr_schedule is not None and _check_schedule(self)


#: skorch callbacks that only record or print: they never change a member's weights.
_OBSERVERS = ("EpochTimer", "PrintLog", "EpochScoring", "BatchScoring", "PassthroughScoring")
#: torch schedulers whose learning rate (and momentum) is a function of the step count alone.
_POLICIES = (
    "StepLR",
    "MultiStepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "OneCycleLR",
    "LambdaLR",
)


class LRSchedule(NamedTuple):
    """A skorch ``LRScheduler`` callback: the torch scheduler, its arguments, when it steps."""

    policy: type
    kwargs: dict
    step_every: str  # "epoch" or "batch"


def _training_callbacks(net) -> tuple[LRSchedule | None, tuple[float, float] | None]:
    """The net's learning-rate schedule and gradient clipping ``(max_norm, norm_type)``.

    The callbacks are those skorch builds (defaults, ``callbacks__*`` settings applied). Any
    callback other than one ``LRScheduler``, one ``GradientNormClipping`` and the ones that only
    record or print raises ``Unsupported`` naming it.
    """
    import torch
    from sklearn.base import clone
    from skorch.callbacks import GradientNormClipping, LRScheduler

    schedule, clip = None, None
    if isinstance(net.callbacks, str) and net.callbacks == "disable":  # skorch runs none
        return schedule, clip
    for name, cb in clone(net).initialize_callbacks().callbacks_:
        kind = type(cb)
        if kind.__module__.startswith("skorch.") and kind.__name__ in _OBSERVERS:
            continue
        if kind is LRScheduler and schedule is None:
            policy = cb.policy_
            policy_name = getattr(policy, "__name__", repr(policy))
            schedulers = torch.optim.lr_scheduler
            if policy_name not in _POLICIES or getattr(schedulers, policy_name) is not policy:
                raise Unsupported(
                    f"callback {name!r}: LRScheduler policy {policy_name!r} is not vectorized "
                    f"(supported: {', '.join(_POLICIES)})"
                )
            if cb.step_every not in ("epoch", "batch") or "last_epoch" in cb.kwargs:
                raise Unsupported(
                    f"callback {name!r}: LRScheduler with step_every={cb.step_every!r} or "
                    "last_epoch is not vectorized"
                )
            schedule = LRSchedule(policy, dict(cb.kwargs), cb.step_every)
        elif kind is GradientNormClipping and clip is None:
            if cb.gradient_clip_value is not None:
                clip = (float(cb.gradient_clip_value), float(cb.gradient_clip_norm_type))
        else:
            raise Unsupported(
                f"callback {name!r} ({kind.__name__}) is not run by the vectorized engine (it "
                "runs one LRScheduler, one GradientNormClipping and skorch's logging callbacks)"
            )
    return schedule, clip


def _check_schedule(config) -> bool:
    """Run the schedule before training; refuse SGD momentum that switches on and off.

    Returns whether the schedule gives SGD a momentum (``OneCycleLR`` cycles it).

    It runs for a member with one batch per epoch, the fewest steps any member takes, so an
    error raised here (a bad argument, too many steps) is one skorch raises for every member.
    Momentum that reaches 0 is refused from the schedule's own settings too: with more
    batches per epoch another member's steps may land on it where this one's do not.
    """
    import torch

    from sklearn_certify.ensemble._optim import hyper_table

    table = hyper_table(config, 1)
    momentum = table[:, 1]
    kwargs = config.lr_schedule.kwargs
    lowest = min(kwargs.get("base_momentum", 0.85), kwargs.get("max_momentum", 0.95))
    cycles_to_zero = (
        config.lr_schedule.policy is torch.optim.lr_scheduler.OneCycleLR
        and kwargs.get("cycle_momentum", True)
        and lowest <= 0
    )
    switches = (momentum == 0).any() and (momentum != 0).any()
    if config.optimizer == "sgd" and (switches or cycles_to_zero):
        raise Unsupported(
            "the LRScheduler sets SGD's momentum to 0 on some steps and not on others"
        )
    return bool((momentum != 0).any())


class Unsupported(Exception):
    """The net cannot be trained by the vectorized engine (message says why)."""


class Probe(NamedTuple):
    """What a probe of the net's module found."""

    n_params: int  # parameters per member
    largest: int  # entries of its largest parameter tensor
    randomness: str  # "error" (no random ops in training) or "different" (dropout and kin)
    batch_norm: bool  # BatchNorm layers: the steps need each member's real rows only
    values_per_row: int  # fewest values per channel one row gives a BatchNorm layer (0: none)


#: Random ops allowed in a vectorized module's training forward. Each draws from the generator
#: in amounts fixed by the tensor's shape alone, so with fixed shapes one member's draws never
#: depend on another member's data (rejection samplers such as Poisson would break this).
_SHAPE_SEEDED_OPS = frozenset(
    {
        "aten::bernoulli",
        "aten::bernoulli_",
        "aten::native_dropout",
        "aten::uniform_",
        "aten::normal_",
        "aten::rand",
        "aten::rand_like",
        "aten::randn",
        "aten::randn_like",
    }
)


def _random_ops(module, x) -> set:
    """Names of the random ops ``module(x)`` runs (torch ops tagged ``nondeterministic_seeded``)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    seen = set()

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if torch.Tag.nondeterministic_seeded in func.tags:
                seen.add(func._schema.name)
            return func(*args, **(kwargs or {}))

    with torch.no_grad(), torch_seeded(0), Record():
        module(x)
    return seen


def _probe_module(net, X, n_classes: int) -> Probe:
    """Build one member module and run a vmapped train-mode step on two rows, or raise."""
    import torch
    from torch.func import functional_call, stack_module_state, vmap

    member = make_member(net, 0, 0, n_classes)
    with torch_seeded(0, [member]):
        member.initialize()
    module = member.module_
    check_parameter_dtype(module, X)
    norms = batch_norms(module)
    kept = _other_buffers(module, norms)
    rows = torch.as_tensor(np.asarray(X[:2])).to(member.device or "cpu")
    try:
        eval_ops = _random_ops(module.eval(), rows)
        with _per_channel_counts(norms) as counts:
            random_ops = _random_ops(module.train(), rows)
    except Exception as exc:  # the module fails on its own; vmap would too
        raise Unsupported(f"the module cannot run on two rows ({exc})") from exc
    changed = [name for name, value in kept.items() if not _same(module.get_buffer(name), value)]
    if changed:
        raise Unsupported(
            f"the module changes its buffers {changed} in training, and only BatchNorm1d/2d/3d "
            "buffers are trained per member"
        )
    if eval_ops:
        raise Unsupported(
            f"the module draws random numbers in eval mode ({', '.join(sorted(eval_ops))}), so "
            "its members' outputs would not be functions of their training data"
        )
    unsafe = sorted(random_ops - _SHAPE_SEEDED_OPS)
    if unsafe:
        raise Unsupported(
            f"the module draws random numbers with {', '.join(unsafe)}, whose use of the "
            "generator may depend on the values drawn for other members"
        )
    randomness = "different" if random_ops else "error"
    params, buffers = stack_module_state([module, module])
    xb = torch.stack([rows, rows])
    holder = RowMask()  # layers with momentum=None train as the engine runs them
    template = masked_template(module, holder, cumulative_only=True)

    def call(p, b, x):
        holder.mask = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        return functional_call(template, (p, b), (x,))

    try:
        with torch_seeded(0):
            out = vmap(call, randomness=randomness)(params, buffers, xb)
    except Exception as exc:  # vmap raises many types for modules it cannot batch
        raise Unsupported(f"vmap cannot run the module in training mode ({exc})") from exc
    if not isinstance(out, torch.Tensor) or out.ndim != 3 or out.shape[2] != n_classes:
        shape = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else type(out).__name__
        raise Unsupported(
            f"the module's output {shape} is not one (n_rows, n_classes={n_classes}) tensor"
        )
    sizes = [p.numel() for p in module.parameters()]
    return Probe(sum(sizes), max(sizes), randomness, bool(norms), min(counts, default=0))


@contextlib.contextmanager
def _per_channel_counts(norms):
    """Collect, per BatchNorm layer, the values per channel one input row gives it."""
    counts: list = []
    hooks = [
        layer.register_forward_pre_hook(lambda _, args: counts.append(math.prod(args[0].shape[2:])))
        for layer in norms
    ]
    try:
        yield counts
    finally:
        for hook in hooks:
            hook.remove()


def _other_buffers(module, norms) -> dict:
    """Copies of the module's buffers that belong to no BatchNorm layer in ``norms``."""
    owned = {id(b) for layer in norms for b in layer.buffers()}
    return {
        name: buffer.detach().clone()
        for name, buffer in module.named_buffers()
        if id(buffer) not in owned
    }


def _same(a, b) -> bool:
    import torch

    return a.shape == b.shape and bool(torch.equal(a, b))


def check_vectorizable(net, X, n_classes: int) -> tuple[NetConfig, Probe]:
    """Return ``(config, probe)`` or raise ``Unsupported``."""
    if not isinstance(X, np.ndarray) or not np.issubdtype(X.dtype, np.floating):
        raise Unsupported("X must be a floating numpy array")
    config = NetConfig(net, n_classes)
    return config, _probe_module(net, X, n_classes)


def auto_chunk_size(
    config: NetConfig,
    probe: Probe,
    row_numel: int,
    n_members_total: int,
    memory_budget: int | None,
    *,
    shared_bytes: int = 0,
    with_view: bool = False,
    member_data_bytes: int = 0,
) -> int:
    """Members per chunk, from the module's size, the data a chunk holds and the member count.

    Two limits: the chunk's training state stays under ``memory_budget``; and no single
    stacked tensor exceeds ``_TENSOR_CAP`` bytes, so the allocator can recycle them between
    steps instead of mapping fresh pages each step (page faults otherwise dominate on CPU).
    Per member the state is its parameters, gradients, two optimizer states and temporaries,
    plus a few copies of its batch (two more with a view, whose output is a new batch).
    ``shared_bytes`` is data every chunk holds once, whatever its size (``X`` itself when
    every member sees all rows); it is taken from the budget first, down to half of it.
    ``member_data_bytes`` is data each member holds on its own (a view applied once: every
    slot keeps its viewed copy of the rows, at most ``X``'s size); those copies take at most
    ``1 / _COPIES_SHARE`` of the budget, so that a chunk's memory stays close to that of the
    training state whatever the number of members.

    The result never depends on which members are present, nor on the number of training
    rows of a row-subset plan (a poisoned row must not change any member's tensor shapes), so
    a chunk's row store (its members' rows, at most ``X``) is not counted.
    """
    total, largest = probe.n_params, probe.largest
    budget = _DEFAULT_MEMORY_BUDGET if memory_budget is None else int(memory_budget)
    budget = max(budget - int(shared_bytes), budget // 2)
    batch = config.batch_size * max(row_numel, config.n_classes)
    per_member = 4 * (6 * total + (10 if with_view else 8) * batch)
    cap = budget // per_member
    if member_data_bytes:  # the slots' viewed copies take at most a share of the budget
        cap = min(cap, budget // (_COPIES_SHARE * int(member_data_bytes)))
    if config.device.type == "cpu":  # the CUDA caching allocator recycles blocks by itself
        cap = min(cap, _TENSOR_CAP // (4 * max(largest, batch)))
    cap = max(1, cap)
    n_chunks = math.ceil(n_members_total / cap)
    return math.ceil(n_members_total / n_chunks)


def unsupported_reason(net, X, n_classes: int):
    """``(None, config, probe)`` if the vectorized engine can train ``net``, else
    ``(reason, None, None)``.

    The :class:`NetConfig` is built here, once per fit, and handed down to every chunk (it
    pickles, so joblib workers receive it as it is).
    """
    try:
        config, probe = check_vectorizable(net, X, n_classes)
    except Unsupported as exc:
        return str(exc), None, None
    return None, config, probe
