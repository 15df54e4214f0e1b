"""Learning-rate schedules and gradient clipping in the vectorized engine (skorch callbacks).

A member trained by the vectorized engine equals the same net fitted alone by skorch (the loop
engine) up to float rounding (``atol=2e-5``), and is bit-identical whatever its chunk partners.
"""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback, GradientNormClipping, LRScheduler

from sklearn_certify.ensemble import EngineFallbackWarning, MemberPlan, fit_members
from tests._ensemble_helpers import TinyMLP, disjoint_subsets, first_digits

SCHEDULES = {
    "step_epoch": dict(policy=torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5),
    "multistep_batch": dict(policy="MultiStepLR", milestones=[3, 7], gamma=0.3, step_every="batch"),
    "exponential_epoch": dict(policy="ExponentialLR", gamma=0.7),
    "cosine_batch": dict(policy="CosineAnnealingLR", T_max=9, step_every="batch"),
    "onecycle_batch": dict(
        policy=torch.optim.lr_scheduler.OneCycleLR, max_lr=0.3, total_steps=40, step_every="batch"
    ),
    "lambda_epoch": dict(policy="LambdaLR", lr_lambda=lambda e: 1.0 / (1 + e)),
}

OPTIMIZERS = {
    "sgd": dict(),
    "sgd_nesterov_wd": dict(
        optimizer__momentum=0.9, optimizer__nesterov=True, optimizer__weight_decay=1e-3
    ),
    "adam": dict(optimizer=torch.optim.Adam, lr=0.01),
    "adamw": dict(optimizer=torch.optim.AdamW, lr=0.01, optimizer__weight_decay=0.1),
}


@pytest.fixture(scope="module")
def digits():
    return first_digits()


def _net(callbacks, **kw):
    from skorch import NeuralNetClassifier

    params = dict(
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=3,
        batch_size=8,
        lr=0.1,
        iterator_train__shuffle=True,
        callbacks=callbacks,
    )
    params.update(kw)
    return NeuralNetClassifier(TinyMLP, **params)


def _params(net):
    return [p.detach().clone() for p in net.module_.parameters()]


def _assert_close(a, b):
    for pa, pb in zip(_params(a), _params(b), strict=True):
        torch.testing.assert_close(pa, pb, rtol=0, atol=2e-5)


def _equal(a, b):
    return all(torch.equal(x, y) for x, y in zip(_params(a), _params(b), strict=True))


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_scheduled_members_match_skorch_alone(digits, schedule, opt):
    """Members of different sizes (different epoch boundaries) follow their own schedule."""
    X, y = digits
    subsets, _ = disjoint_subsets(len(X), [23, 40, 17, 8])
    net = _net([("lr", LRScheduler(**SCHEDULES[schedule]))], **OPTIMIZERS[opt])
    kw = dict(n_classes=10, seed=11)
    loop = fit_members(net, X, y, subsets, engine="loop", **kw)
    vec = fit_members(net, X, y, subsets, engine="vectorized", **kw)
    for a, b in zip(loop, vec, strict=True):
        _assert_close(a, b)


@pytest.mark.parametrize("opt", ["sgd_nesterov_wd", "adamw"])
@pytest.mark.parametrize("norm_type", [2.0, float("inf")])
def test_gradient_norm_clipping_matches_skorch_alone(digits, opt, norm_type):
    X, y = digits
    subsets, _ = disjoint_subsets(len(X), [23, 40, 17])
    value = 0.5 if norm_type == 2 else 0.05  # below the gradients' norms: the clipping bites
    clip = GradientNormClipping(gradient_clip_value=value, gradient_clip_norm_type=norm_type)
    net = _net([clip], **OPTIMIZERS[opt])
    kw = dict(n_classes=10, seed=3)
    loop = fit_members(net, X, y, subsets, engine="loop", **kw)
    vec = fit_members(net, X, y, subsets, engine="vectorized", **kw)
    for a, b in zip(loop, vec, strict=True):
        _assert_close(a, b)
    unclipped = fit_members(_net(None, **OPTIMIZERS[opt]), X, y, subsets, engine="loop", **kw)
    assert not _equal(unclipped[0], loop[0])


@pytest.mark.parametrize("chunk_size", [None, 1, 3])
@pytest.mark.parametrize(
    "schedule, opt",
    [
        ("step_epoch", "sgd_nesterov_wd"),
        ("multistep_batch", "adamw"),
        ("onecycle_batch", "adam"),
        ("onecycle_batch", "sgd"),
    ],
)
def test_scheduled_padded_members_are_partition_independent(digits, chunk_size, schedule, opt):
    """Insert into / delete from the largest subset, omit members: the others are bit-identical.

    Padded members of different row counts share chunks, with a per-epoch schedule (epoch
    boundaries of their own) or a per-batch one, and with gradient clipping.
    """
    X, y = digits
    sizes = [24, 17, 9, 40, 31, 16, 8]
    subsets, rest = disjoint_subsets(len(X), sizes, seed=3)
    big = int(np.argmax(sizes))
    callbacks = [LRScheduler(**SCHEDULES[schedule]), GradientNormClipping(1.0)]
    net = _net(callbacks, **OPTIMIZERS[opt])
    kw = dict(n_classes=10, seed=5, engine="vectorized", chunk_size=chunk_size)
    total = len(sizes)
    ref = fit_members(net, X, y, MemberPlan(subsets, None, total), **kw)
    for change in ("insert", "delete"):
        changed = list(subsets)
        changed[big] = (
            np.concatenate([subsets[big], rest[:1]]) if change == "insert" else subsets[big][:-1]
        )
        new = fit_members(net, X, y, MemberPlan(changed, None, total), **kw)
        assert not _equal(new[big], ref[big])
        for i in range(total):
            if i != big:
                assert _equal(new[i], ref[i]), (change, i)
    keep = [0, 2, 5]
    partial = fit_members(net, X, y, MemberPlan([subsets[i] for i in keep], keep, total), **kw)
    for m, i in zip(partial, keep, strict=True):
        assert _equal(m, ref[i])


@pytest.mark.parametrize(
    "schedule, opt", [("step_epoch", "sgd_nesterov_wd"), ("cosine_batch", "adamw")]
)
def test_scheduled_members_do_not_depend_on_chunk_size(digits, schedule, opt):
    """One member per chunk, three, or all in one: bit-identical weights (padded DPA members)."""
    X, y = digits
    subsets, _ = disjoint_subsets(len(X), [24, 17, 9, 40, 31], seed=1)
    callbacks = [LRScheduler(**SCHEDULES[schedule]), GradientNormClipping(1.0)]
    net = _net(callbacks, **OPTIMIZERS[opt])
    fits = [
        fit_members(net, X, y, subsets, n_classes=10, seed=2, engine="vectorized", chunk_size=c)
        for c in (1, 3, 5)
    ]
    for other in fits[1:]:
        for a, b in zip(fits[0], other, strict=True):
            assert _equal(a, b)


def test_clipping_of_large_parameters_does_not_depend_on_chunk_size(digits):
    """A 65,536-entry weight (above torch's parallel-reduction grain), two threads."""
    X, y = digits
    subsets, _ = disjoint_subsets(len(X), [24, 17, 40], seed=1)
    net = _net([GradientNormClipping(0.5)], module__hidden=1024, max_epochs=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        fits = [
            fit_members(net, X, y, subsets, n_classes=10, seed=2, engine="vectorized", chunk_size=c)
            for c in (1, 3)
        ]
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*fits, strict=True):
        assert _equal(a, b)


class Recorder(Callback):
    def on_epoch_end(self, net, **kwargs):
        pass


@pytest.mark.parametrize(
    "callbacks, reason",
    [
        ([("rec", Recorder())], r"callback 'rec' \(Recorder\)"),
        ([LRScheduler("ReduceLROnPlateau")], "ReduceLROnPlateau"),
        ([LRScheduler("StepLR", step_size=1, step_every="never")], "step_every='never'"),
        ([LRScheduler("StepLR", step_size=1), LRScheduler("StepLR", step_size=2)], "LRScheduler"),
    ],
    ids=["custom", "plateau", "step_every", "two_schedulers"],
)
def test_unsupported_callbacks_fall_back_with_their_name(digits, callbacks, reason):
    X, y = digits
    subsets, _ = disjoint_subsets(len(X), [20, 24])
    net = _net(callbacks)
    with pytest.warns(EngineFallbackWarning, match=reason):
        fit_members(net, X, y, subsets, n_classes=10, seed=0)


@pytest.mark.parametrize("observers", [True, False], ids=["observers", "disable"])
def test_logging_callbacks_do_not_block_the_vectorized_engine(digits, observers):
    """skorch's observers (timers, scoring, printing) never change the weights: run as usual."""
    from skorch.callbacks import EpochScoring, EpochTimer

    X, y = digits
    subsets, _ = disjoint_subsets(len(X), [20, 24])
    callbacks = [EpochTimer(), ("acc", EpochScoring("accuracy", on_train=True))]
    net = _net(callbacks if observers else "disable")
    kw = dict(n_classes=10, seed=0)
    vec = fit_members(net, X, y, subsets, engine="vectorized", **kw)
    loop = fit_members(net, X, y, subsets, engine="loop", **kw)
    for a, b in zip(loop, vec, strict=True):
        _assert_close(a, b)


def test_one_cycle_momentum_reaching_zero_is_refused_whatever_the_batch_count(digits):
    """OneCycleLR with base_momentum=0 may land on 0 only at some members' step counts; the
    schedule's own settings refuse it for every member, before training."""
    from sklearn_certify.ensemble._net_config import unsupported_reason

    X, _ = digits
    schedule = LRScheduler(
        torch.optim.lr_scheduler.OneCycleLR,
        max_lr=0.1,
        total_steps=400,
        step_every="batch",
        base_momentum=0.0,
    )
    net = _net([schedule], optimizer=torch.optim.SGD, optimizer__momentum=0.9)
    reason = unsupported_reason(net, X, 10)[0]
    assert reason is not None and "momentum to 0" in reason
