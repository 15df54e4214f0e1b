"""DPSGDStep: DP-SGD's per-sample clipping (as Opacus clips), keyed noise, padding, vmap."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from sklearn_certify.ensemble._dp_step import DPSGDStep, _step_seed
from sklearn_certify.ensemble._step import RowLoss, TrainingStep

CROSS_ENTROPY = RowLoss(nn.CrossEntropyLoss, None, -100, 0.0, False)


def _mlp(seed=0, n_in=4):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, 8), nn.ReLU(), nn.Linear(8, 3))


def _loss_of(module):
    """The engine's ``loss_of``: forward with ``params``, then the default (masked mean) loss."""

    def loss_of(params, x, y, mask):
        outputs = functional_call(module, params, (x,))
        return TrainingStep().loss(outputs, y, mask, CROSS_ENTROPY)

    return loss_of


def _params(module):
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def _batch(n, seed=1, n_in=4, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    x = scale * torch.randn(n, n_in, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    return x, y, torch.ones(n, dtype=torch.bool)


def _step(step, module, batch, key=5, t=0):
    return step.gradients(
        _loss_of(module), _params(module), batch, torch.tensor(key), torch.tensor(t)
    )


def _flat(grads):
    return torch.cat([g.flatten() for g in grads.values()])


# -- 1. against Opacus -----------------------------------------------------------------------


def _opacus_gradients(module, x, y, max_grad_norm):
    """Opacus's DP-SGD gradient, noise 0: GradSampleModule + DPOptimizer, one full batch."""
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    wrapped = GradSampleModule(module, loss_reduction="mean")
    optimizer = DPOptimizer(
        torch.optim.SGD(wrapped.parameters(), lr=1.0),
        noise_multiplier=0.0,
        max_grad_norm=max_grad_norm,
        expected_batch_size=len(x),  # a full batch: Opacus's divisor is our real-row count
        loss_reduction="mean",
    )
    nn.CrossEntropyLoss()(wrapped(x), y).backward()
    optimizer.pre_step()  # clip, accumulate, add (zero) noise, divide by the batch size
    return {name: p.grad.detach().clone() for name, p in module.named_parameters()}


@pytest.mark.filterwarnings("ignore:Full backward hook is firing:UserWarning")
@pytest.mark.parametrize("max_grad_norm", [0.05, 0.5, 100.0])
def test_matches_opacus_without_noise(max_grad_norm):
    # float32; atol 1e-6 on gradients of order 0.01-1 (0.05 clips every row, 100 none)
    module = _mlp()
    x, y, mask = _batch(16)
    ours, _ = _step(DPSGDStep(max_grad_norm, 0.0), module, (x, y, mask))
    theirs = _opacus_gradients(module, x, y, max_grad_norm)
    assert list(ours) == list(theirs)
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], atol=1e-6, rtol=0)


# -- 2. by hand -----------------------------------------------------------------------------


def _affine_loss_of(params, x, y, mask):
    """Masked mean of ``0.5 * (w * x + b - y)**2``: row ``i``'s gradient is ``r_i * (x_i, 1)``."""
    r = params["w"] * x + params["b"] - y
    return torch.where(mask, 0.5 * r**2, 0).sum() / mask.sum().clamp(min=1)


def test_two_rows_by_hand():
    params = {"w": torch.zeros((), dtype=torch.float64), "b": torch.zeros((), dtype=torch.float64)}
    x = torch.tensor([4.0, 0.5], dtype=torch.float64)
    y = torch.tensor([1.0, 0.5], dtype=torch.float64)
    batch = (x, y, torch.ones(2, dtype=torch.bool))
    grads, loss = DPSGDStep(1.0, 0.0).gradients(
        _affine_loss_of, params, batch, torch.tensor(0), torch.tensor(0)
    )
    # row 1: r = -1, gradient (w, b) = (-4, -1), norm sqrt(17) > 1: scaled by 1/(sqrt(17)+1e-6)
    # row 2: r = -0.5, gradient (-0.25, -0.5), norm 0.559 < 1: kept
    # clipping the parameters one by one would keep b's -1 of row 1 instead
    factor = 1.0 / (math.sqrt(17.0) + 1e-6)
    assert float(grads["w"]) == pytest.approx((-4.0 * factor - 0.25) / 2, abs=1e-15)
    assert float(grads["b"]) == pytest.approx((-1.0 * factor - 0.5) / 2, abs=1e-15)
    assert float(loss) == pytest.approx((0.5 + 0.125) / 2, abs=1e-15)


def test_large_norm_bound_is_the_plain_mean_gradient():
    module = _mlp()
    batch = _batch(12)
    dp, dp_loss = _step(DPSGDStep(1e6, 0.0), module, batch)
    plain, plain_loss = TrainingStep().gradients(
        _loss_of(module), _params(module), batch, torch.tensor(0), torch.tensor(0)
    )
    for name in plain:
        torch.testing.assert_close(dp[name], plain[name], atol=1e-6, rtol=0)
    torch.testing.assert_close(dp_loss, plain_loss, atol=1e-6, rtol=0)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 10),
    max_grad_norm=st.floats(1e-3, 10.0),
    seed=st.integers(0, 2**16),
    scale=st.floats(0.1, 100.0),
)
def test_noiseless_gradient_norm_is_at_most_the_bound(n, max_grad_norm, seed, scale):
    # an average of vectors of norm <= C has norm <= C
    module = _mlp(seed)
    grads, _ = _step(DPSGDStep(max_grad_norm, 0.0), module, _batch(n, seed, scale=scale))
    assert float(_flat(grads).norm()) <= max_grad_norm * (1 + 1e-5)


# -- 3. padding -----------------------------------------------------------------------------


@pytest.mark.parametrize("noise_multiplier", [0.0, 1.5])
def test_padding_rows_change_nothing(noise_multiplier):
    module = _mlp()
    x, y, mask = _batch(6)
    # padding between and after the real rows, holding NaN, huge values and bad labels' rows
    garbage = torch.tensor([[math.nan] * 4, [1e30, -1e30, 0.0, 1.0], [7.0, 7.0, 7.0, 7.0]])
    x_pad = torch.cat([x[:2], garbage[:1], x[2:], garbage[1:]])
    y_pad = torch.cat([y[:2], torch.tensor([2]), y[2:], torch.tensor([0, 1])])
    mask_pad = torch.tensor([True, True, False, True, True, True, True, False, False])
    step = DPSGDStep(0.5, noise_multiplier)
    compact, compact_loss = _step(step, module, (x, y, mask), key=3, t=4)
    padded, padded_loss = _step(step, module, (x_pad, y_pad, mask_pad), key=3, t=4)
    for name in compact:
        assert torch.equal(padded[name], compact[name]), name
    # the reported loss sums the rows in another order: equal up to float32 rounding
    torch.testing.assert_close(padded_loss, compact_loss, atol=1e-6, rtol=0)


def test_all_padding_gives_zero_without_noise_and_only_noise_with_it():
    module = _mlp()
    x, y, _ = _batch(3)
    none = torch.zeros(3, dtype=torch.bool)
    grads, loss = _step(DPSGDStep(1.0, 0.0), module, (x, y, none))
    assert all(torch.equal(g, torch.zeros_like(g)) for g in grads.values())
    assert float(loss) == 0.0
    noisy, _ = _step(DPSGDStep(1.0, 2.0), module, (x, y, none))
    assert all(bool(torch.isfinite(g).all()) and bool(g.ne(0).any()) for g in noisy.values())


# -- 4. noise -------------------------------------------------------------------------------


def _wide():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3))  # 4,355 weights


def test_noise_has_the_stated_standard_deviation():
    module = _wide()
    x, y, mask = _batch(10, n_in=64)
    mask[7:] = False  # n_real = 7
    sigma, max_grad_norm = 2.0, 0.3
    clean, _ = _step(DPSGDStep(max_grad_norm, 0.0), module, (x, y, mask))
    noisy, _ = _step(DPSGDStep(max_grad_norm, sigma), module, (x, y, mask))
    noise = ((_flat(noisy) - _flat(clean)) * 7).double().numpy()
    # 4,355 draws: the sample std's standard error is about 1.1% of sigma * C = 0.6
    assert abs(noise.std() / (sigma * max_grad_norm) - 1) < 0.05
    assert abs(noise.mean()) < 5 * sigma * max_grad_norm / math.sqrt(noise.size)


def test_noise_is_keyed_by_key_and_step():
    module = _mlp()
    batch = _batch(5)
    step = DPSGDStep(1.0, 1.0)
    base = _flat(_step(step, module, batch, key=11, t=3)[0])
    assert torch.equal(_flat(_step(step, module, batch, key=11, t=3)[0]), base)
    for other in (_step(step, module, batch, key=11, t=4), _step(step, module, batch, key=12, t=3)):
        diff = _flat(other[0]) - base
        assert bool((diff != 0).all())  # fresh noise on every parameter entry


def test_each_parameter_gets_its_own_noise():
    # two parameters of the same shape: keyed by position, so their noise differs
    params = {"a": torch.zeros(50), "b": torch.zeros(50)}

    def loss_of(p, x, y, mask):
        return (p["a"] * 0 + p["b"] * 0).sum() * mask.sum()

    batch = (torch.zeros(2, 1), torch.zeros(2), torch.ones(2, dtype=torch.bool))
    grads, _ = DPSGDStep(1.0, 1.0).gradients(
        loss_of, params, batch, torch.tensor(0), torch.tensor(0)
    )
    assert not torch.allclose(grads["a"], grads["b"])
    corr = np.corrcoef(grads["a"].numpy(), grads["b"].numpy())[0, 1]
    assert abs(corr) < 0.6  # 50 independent pairs: |corr| > 0.6 has probability < 1e-5


def test_step_seeds_are_63_bit_and_distinct():
    keys = torch.tensor([0, 1, 2**40 + 1, 2**63 - 1]).repeat_interleave(5000)
    steps = torch.arange(5000).repeat(4)
    steps[-1] = 2**62  # a high word of its own
    seeds = vmap(_step_seed)(keys, steps)
    assert bool((seeds >= 0).all())
    assert len(set(seeds.tolist())) == len(seeds)
    assert torch.equal(_step_seed(keys[7], steps[7]), seeds[7])


def _members(n_members):
    modules = [_mlp(seed) for seed in range(n_members)]
    params, _ = stack_module_state(modules)
    return modules, {name: p.detach() for name, p in params.items()}


@pytest.mark.parametrize("noise_multiplier", [0.0, 1.0])
def test_a_member_does_not_depend_on_its_chunk(noise_multiplier):
    modules, stacked = _members(3)
    xs, ys, masks = zip(*(_batch(6, seed) for seed in range(3)), strict=True)
    x, y, mask = torch.stack(xs), torch.stack(ys), torch.stack(masks)
    mask[1, 4:] = False  # members with different numbers of real rows
    mask[2, 0] = False
    keys, steps = torch.tensor([21, 22, 23]), torch.tensor([0, 5, 5])
    step = DPSGDStep(0.2, noise_multiplier)
    loss_of = _loss_of(modules[0])

    def one(p, xb, yb, mb, key, t):
        return step.gradients(loss_of, p, (xb, yb, mb), key, t)

    grads, losses = vmap(one)(stacked, x, y, mask, keys, steps)
    for m in range(3):
        # the same member in a chunk of its own: bit for bit
        own = slice(m, m + 1)
        params = {k: v[own] for k, v in stacked.items()}
        alone, loss = vmap(one)(params, x[own], y[own], mask[own], keys[own], steps[own])
        for name in alone:
            assert torch.equal(grads[name][m], alone[name][0]), (m, name)
        assert torch.equal(losses[m], loss[0])
        # and without vmap (the loop engine): the module's batched matmuls may round the
        # per-row gradients differently in the last bit (measured up to 7.5e-9 on gradients of
        # order 0.05); clipping, noise and averaging add no difference of their own
        plain, plain_loss = one(
            {k: v[m] for k, v in stacked.items()}, x[m], y[m], mask[m], keys[m], steps[m]
        )
        for name in plain:
            torch.testing.assert_close(grads[name][m], plain[name], atol=1e-7, rtol=0)
        assert torch.equal(losses[m], plain_loss)


def test_runs_with_dropout_under_vmap():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 3))
    params, _ = stack_module_state([module, module])
    params = {name: p.detach() for name, p in params.items()}
    x, y, mask = _batch(5)
    step = DPSGDStep(1.0, 1.0)
    loss_of = _loss_of(module)

    def one(p, key):
        return step.gradients(loss_of, p, (x, y, mask), key, torch.tensor(0))

    grads, losses = vmap(one, randomness="different")(params, torch.tensor([1, 2]))
    assert all(bool(torch.isfinite(g).all()) for g in grads.values())
    assert bool(torch.isfinite(losses).all())


# -- 5. validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_grad_norm": 0.0}, ValueError, "max_grad_norm must be a finite number > 0"),
        ({"max_grad_norm": -1.0}, ValueError, "max_grad_norm"),
        ({"max_grad_norm": math.inf}, ValueError, "max_grad_norm"),
        ({"max_grad_norm": math.nan}, ValueError, "max_grad_norm"),
        ({"max_grad_norm": "1"}, TypeError, "max_grad_norm"),
        ({"max_grad_norm": True}, TypeError, "max_grad_norm"),
        ({"noise_multiplier": -0.1}, ValueError, "noise_multiplier must be a finite number >= 0"),
        ({"noise_multiplier": math.inf}, ValueError, "noise_multiplier"),
        ({"noise_multiplier": math.nan}, ValueError, "noise_multiplier"),
        ({"noise_multiplier": None}, TypeError, "noise_multiplier"),
        ({"noise_multiplier": False}, TypeError, "noise_multiplier"),
    ],
)
def test_bad_settings_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        DPSGDStep(**kwargs)


def test_settings_repr_and_per_sample():
    step = DPSGDStep(2, 0)
    assert (step.max_grad_norm, step.noise_multiplier) == (2.0, 0.0)
    assert repr(step) == "DPSGDStep(max_grad_norm=2.0, noise_multiplier=0.0)"
    assert DPSGDStep.per_sample is True and isinstance(step, TrainingStep)
