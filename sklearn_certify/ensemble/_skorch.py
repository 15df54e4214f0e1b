"""skorch helpers: detection, member configuration, isolated torch seeding."""

from __future__ import annotations

import contextlib
import threading

# torch's default generator is process-global. Member fits that touch it (module initialisation,
# dropout, DataLoader shuffling without a generator) hold this lock while it is seeded, so members
# fitted by a threading backend (joblib "threading", dask with processes=False) stay reproducible.
_TORCH_RNG_LOCK = threading.RLock()

# Callbacks that write files or load state: members must not collide on files nor read state
# trained on other data.
_FILE_CALLBACKS = (
    "Checkpoint",
    "TrainEndCheckpoint",
    "LoadInitState",
    "TensorBoard",
    "WandbLogger",
    "MlflowLogger",
    "NeptuneLogger",
    "SacredLogger",
    "AimLogger",
)


def _skorch_net_type():
    try:
        from skorch import NeuralNet
    except ImportError:  # pragma: no cover - skorch is a hard dependency
        return None
    return NeuralNet


def is_skorch_net(obj) -> bool:
    """True if ``obj`` is a skorch ``NeuralNet`` (classifier or not)."""
    net_type = _skorch_net_type()
    return net_type is not None and isinstance(obj, net_type)


def nested_nets(estimator) -> list:
    """The skorch nets inside ``estimator`` (itself, or steps of a Pipeline / meta-estimator)."""
    if is_skorch_net(estimator):
        return [estimator]
    nets = []
    if hasattr(estimator, "get_params"):
        for value in estimator.get_params(deep=True).values():
            if is_skorch_net(value) and all(value is not n for n in nets):
                nets.append(value)
    return nets


def check_net(net, name: str = "estimator") -> None:
    """Refuse configurations that would let members share weights or write files."""
    import torch

    if isinstance(net.module, torch.nn.Module):
        raise TypeError(
            f"{name} is a skorch net whose `module` is an nn.Module instance. Every ensemble "
            "member would start from (and clones would deep-copy) that one set of weights, and "
            "a module already trained on the full data would leak it into every member, "
            "voiding the certificate. Pass the module class instead, with its arguments as "
            "module__<name>=..., "
            "e.g. NeuralNetClassifier(MyModule, module__hidden=64)."
        )
    callbacks = net.callbacks
    if callbacks in (None, "disable"):
        return
    for item in callbacks:
        cb = item[1] if isinstance(item, tuple) else item
        cls_name = cb.__name__ if isinstance(cb, type) else type(cb).__name__
        if cls_name in _FILE_CALLBACKS:
            raise ValueError(
                f"{name} has a {cls_name} callback. Ensemble members are fitted in parallel and "
                "must not write or load files (they would overwrite each other or load state "
                "trained on other data). Remove the callback from the base net."
            )


def member_net_params(net, n_classes: int, generator_seed: int) -> dict:
    """Member settings: no validation split, silent, fixed class layout, seeded shuffling."""
    import torch
    from skorch import NeuralNetClassifier

    params = {"train_split": None, "verbose": 0}
    if isinstance(net, NeuralNetClassifier):
        params["classes"] = list(range(n_classes))
    if net.iterator_train is torch.utils.data.DataLoader:
        params["iterator_train__generator"] = torch.Generator().manual_seed(generator_seed)
    return params


def configure_member_net(net, n_classes: int, generator_seed: int) -> None:
    """Apply :func:`member_net_params` to ``net`` in place."""
    net.set_params(**member_net_params(net, n_classes, generator_seed))


def _devices_for(nets) -> list:
    import torch

    devices = []
    for net in nets:
        dev = torch.device(net.device) if net.device is not None else torch.device("cpu")
        if dev.type == "cuda" and torch.cuda.is_available():
            idx = dev.index if dev.index is not None else torch.cuda.current_device()
            if idx not in devices:
                devices.append(idx)
    return devices


@contextlib.contextmanager
def torch_rng_session(nets=()):
    """Hold torch's global generators for a while; yield ``reseed(seed)``; restore them after.

    ``reseed`` seeds the CPU generator and those of the CUDA devices ``nets`` use. Holds a
    process-wide lock so concurrent threads cannot interleave draws. One session can seed many
    members in turn (cheaper than a :func:`torch_seeded` block per member).
    """
    import torch

    devices = _devices_for(nets)

    def reseed(seed: int) -> None:
        # seed only the generators the member uses (torch.manual_seed also lazily seeds every
        # accelerator, which costs about a millisecond per call)
        torch.default_generator.manual_seed(seed)
        for idx in devices:
            torch.cuda.default_generators[idx].manual_seed(seed)

    with _TORCH_RNG_LOCK, torch.random.fork_rng(devices=devices):
        yield reseed


@contextlib.contextmanager
def torch_seeded(seed: int, nets=()):
    """Seed torch's global generators with ``seed`` and restore them afterwards.

    Holds a process-wide lock so concurrent threads cannot interleave draws.
    """
    with torch_rng_session(nets) as reseed:
        reseed(seed)
        yield
