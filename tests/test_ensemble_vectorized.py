"""Vectorized engine: agreement with the loop engine, exact independence, fallbacks."""

import warnings

import numpy as np
import pytest
import torch
from skorch import NeuralNet, NeuralNetClassifier

from sklearn_certify.datasets import load_digits
from sklearn_certify.ensemble import EngineFallbackWarning, MemberPlan, fit_members, member_outputs
from tests._ensemble_helpers import TinyMLP, disjoint_subsets, first_digits


class TinyCNN(torch.nn.Module):
    def __init__(self, channels=4):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, channels, 3)
        self.head = torch.nn.Linear(channels * 36, 10)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).flatten(1))


class CountingMLP(TinyMLP):
    """Counts its training forwards in a buffer: state that is not BatchNorm's."""

    def __init__(self):
        super().__init__()
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))

    def forward(self, x):
        if self.training:
            self.calls.add_(1)
        return super().forward(x)


class DropMLP(TinyMLP):
    def __init__(self, p=0.5):
        super().__init__()
        self.p = p

    def forward(self, x):
        return self.l2(torch.nn.functional.dropout(torch.relu(self.l1(x)), self.p, self.training))


class PoissonNoiseMLP(TinyMLP):
    def forward(self, x):
        noise = torch.poisson(torch.full_like(x, 0.1)) if self.training else 0
        return super().forward(x + noise)


class NoisyEvalMLP(TinyMLP):
    def forward(self, x):
        return super().forward(x + 0.01 * torch.randn_like(x))


class ItemMLP(TinyMLP):
    def forward(self, x):
        out = super().forward(x)
        return out if out.sum().item() > 0 else -out


@pytest.fixture(scope="module")
def digits():
    return first_digits()


def _net(module=TinyMLP, **kw):
    params = dict(
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=3,
        batch_size=8,
        lr=0.1,
        iterator_train__shuffle=True,
    )
    params.update(kw)
    return NeuralNetClassifier(module, **params)


def _params(net):
    return [p.detach().clone() for p in net.module_.parameters()]


def _equal(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


CONFIGS = {
    "sgd": dict(),
    "sgd_momentum_wd_nesterov": dict(
        optimizer__momentum=0.9, optimizer__weight_decay=1e-3, optimizer__nesterov=True
    ),
    "sgd_dampening": dict(optimizer__momentum=0.5, optimizer__dampening=0.3),
    "adam": dict(optimizer=torch.optim.Adam, lr=0.01, optimizer__weight_decay=1e-3),
    "adamw": dict(optimizer=torch.optim.AdamW, lr=0.01, optimizer__weight_decay=0.1),
    "adamw_default_decay": dict(optimizer=torch.optim.AdamW, lr=0.01),
    "adam_decoupled": dict(
        optimizer=torch.optim.Adam,
        lr=0.01,
        optimizer__weight_decay=0.1,
        optimizer__decoupled_weight_decay=True,
    ),
    "nll_softmax": dict(criterion=torch.nn.NLLLoss, module__softmax=True),
    "ce_weighted": dict(criterion__weight=torch.linspace(0.5, 1.5, 10)),
    "ce_label_smoothing": dict(criterion__label_smoothing=0.1),
    "no_shuffle": dict(iterator_train__shuffle=False),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_vectorized_matches_loop(digits, name):
    """Same seeds, same schedule: the two engines train the same weights up to float rounding."""
    X, y = digits
    subsets, _ = disjoint_subsets(len(X), [23, 40, 17, 8])
    net = _net(**CONFIGS[name])
    kw = dict(n_classes=10, seed=11)
    loop = fit_members(net, X, y, subsets, engine="loop", **kw)
    vec = fit_members(net, X, y, subsets, engine="vectorized", **kw)
    for a, b in zip(loop, vec, strict=True):
        for pa, pb in zip(_params(a), _params(b), strict=True):
            torch.testing.assert_close(pa, pb, rtol=0, atol=2e-5)


def test_vectorized_cnn_on_images_matches_loop():
    X, y = load_digits(shape="image")
    X, y = X[:300], y[:300]
    subsets, _ = disjoint_subsets(len(X), [30, 25, 41])
    net = _net(TinyCNN, optimizer__momentum=0.9, max_epochs=2)
    loop = fit_members(net, X, y, subsets, n_classes=10, seed=0, engine="loop")
    vec = fit_members(net, X, y, subsets, n_classes=10, seed=0, engine="vectorized")
    for a, b in zip(loop, vec, strict=True):
        for pa, pb in zip(_params(a), _params(b), strict=True):
            torch.testing.assert_close(pa, pb, rtol=0, atol=2e-5)


@pytest.mark.parametrize("chunk_size", [None, 3])
@pytest.mark.parametrize(
    "module, opt",
    [
        (TinyMLP, dict(optimizer__momentum=0.9, optimizer__weight_decay=1e-2)),
        (TinyMLP, dict(optimizer=torch.optim.Adam)),
        (TinyMLP, dict(optimizer=torch.optim.AdamW, optimizer__weight_decay=0.1)),
        (DropMLP, dict(optimizer__momentum=0.9)),
    ],
    ids=["sgd_momentum_wd", "adam", "adamw", "dropout"],
)
def test_exact_partition_independence_vectorized(digits, chunk_size, module, opt):
    """Insert into / delete from the largest subset, omit a member: the others are bit-identical.

    Sizes straddle batch boundaries so members finish at different steps (padding and masked
    no-op steps are exercised, also with momentum and weight decay that must not move a
    finished member; with dropout, each member's masks must not depend on the others).
    """
    X, y = digits
    sizes = [24, 17, 9, 40, 31, 16, 8]  # largest: 40 = 5 batches of 8; +1 -> 6 batches
    subsets, rest = disjoint_subsets(len(X), sizes, seed=3)
    big = int(np.argmax(sizes))
    net = _net(module, **opt)
    kw = dict(n_classes=10, seed=5, engine="vectorized", chunk_size=chunk_size)
    total = len(sizes)
    ref = [_params(m) for m in fit_members(net, X, y, MemberPlan(subsets, None, total), **kw)]
    for change in ("insert", "delete"):
        changed = list(subsets)
        changed[big] = (
            np.concatenate([subsets[big], rest[:1]]) if change == "insert" else subsets[big][:-1]
        )
        new = fit_members(net, X, y, MemberPlan(changed, None, total), **kw)
        assert not _equal(_params(new[big]), ref[big])
        for i in range(len(sizes)):
            if i != big:
                assert _equal(_params(new[i]), ref[i]), (change, i)
    keep = [0, 1, 3, 5, 6]
    partial = fit_members(net, X, y, MemberPlan([subsets[i] for i in keep], keep, total), **kw)
    for m, i in zip(partial, keep, strict=True):
        assert _equal(_params(m), ref[i])


def test_dropout_nets_are_vectorized_deterministic_and_leave_torch_rng_alone(digits):
    """Dropout draws come from per-(chunk, step) seeds (independence: the test above)."""
    X, y = digits
    subsets, _ = disjoint_subsets(len(X), [24, 17, 40, 16], seed=3)
    kw = dict(n_classes=10, seed=5, chunk_size=3)
    net = _net(DropMLP, optimizer__momentum=0.9)
    rng_state = torch.get_rng_state()
    with warnings.catch_warnings():
        warnings.simplefilter("error", EngineFallbackWarning)
        ref = [_params(m) for m in fit_members(net, X, y, subsets, **kw)]
    assert torch.equal(rng_state, torch.get_rng_state())  # the caller's generator is restored
    again = fit_members(net, X, y, subsets, **kw)
    assert all(_equal(_params(a), b) for a, b in zip(again, ref, strict=True))
    # dropout really acts: p=0 trains other weights from the same start
    plain = fit_members(_net(DropMLP, module__p=0.0, optimizer__momentum=0.9), X, y, subsets, **kw)
    assert not any(_equal(_params(a), b) for a, b in zip(plain, ref, strict=True))


def test_vectorized_n_jobs_and_results_are_ordinary_nets(digits):
    X, y = digits
    subsets, _ = disjoint_subsets(len(X), [20, 30, 25, 35, 10])
    net = _net(optimizer__momentum=0.9)
    kw = dict(n_classes=10, seed=1, engine="vectorized", chunk_size=2)
    one = fit_members(net, X, y, subsets, n_jobs=1, **kw)
    two = fit_members(net, X, y, subsets, n_jobs=2, **kw)
    for a, b in zip(one, two, strict=True):
        assert _equal(_params(a), _params(b))
        assert type(a) is NeuralNetClassifier
        assert a.device == "cpu" and a.train_split is None
        proba = a.predict_proba(X[:7])
        assert proba.shape == (7, 10)
        np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
        assert list(a.classes_) == list(range(10))
    assert not hasattr(net, "module_")


def test_auto_uses_vectorized_engine_for_supported_nets(digits, monkeypatch):
    import sklearn_certify.ensemble._fit as ens

    calls = []
    original = ens.fit_vectorized
    monkeypatch.setattr(ens, "fit_vectorized", lambda *a, **k: calls.append(1) or original(*a, **k))
    X, y = digits
    fit_members(_net(), X, y, [np.arange(20)], n_classes=10, seed=0)
    assert calls == [1]


@pytest.mark.parametrize(
    "net, reason",
    [
        (_net(CountingMLP), r"changes its buffers \['calls'\]"),
        (_net(ItemMLP), "vmap cannot run"),
        (_net(PoissonNoiseMLP), "aten::poisson"),
        (_net(NoisyEvalMLP), "eval mode"),
        (_net(optimizer=torch.optim.RMSprop), "optimizer"),
        (_net(criterion=torch.nn.MultiMarginLoss), "criterion"),
        (_net(batch_size=-1), "batch_size"),
        (_net(callbacks=[("lr", __import__("skorch").callbacks.LRScheduler())]), "WarmRestartLR"),
    ],
    ids=[
        "trained_buffer",
        "item",
        "poisson",
        "noisy_eval",
        "rmsprop",
        "criterion",
        "full_batch",
        "callbacks",
    ],
)
def test_fallback_to_loop_with_warning(digits, net, reason):
    X, y = digits
    subsets, _ = disjoint_subsets(len(X), [20, 24])
    with pytest.warns(EngineFallbackWarning, match=reason):
        members = fit_members(net, X, y, subsets, n_classes=10, seed=0)
    loop = fit_members(net, X, y, subsets, n_classes=10, seed=0, engine="loop")
    for a, b in zip(members, loop, strict=True):
        assert _equal(_params(a), _params(b))


def test_plain_neuralnet_and_vectorized_outputs(digits):
    """NeuralNet (not a classifier) bases work; vmapped outputs match each net's forward."""
    X, y = digits
    subsets, _ = disjoint_subsets(len(X), [30, 30, 30])
    net = NeuralNet(
        TinyMLP, criterion=torch.nn.CrossEntropyLoss, max_epochs=2, batch_size=16, lr=0.1
    )
    members = fit_members(net, X, y, subsets, n_classes=10, seed=0, engine="vectorized")
    out = member_outputs(members, X[:50], n_classes=10)
    for j, m in enumerate(members):
        ref = m.forward(X[:50]).numpy()
        np.testing.assert_allclose(out[:, j], ref, rtol=1e-5, atol=1e-5)


def test_verbose_and_cuda_device_request(digits, capsys):
    X, y = digits
    fit_members(
        _net(), X, y, [np.arange(20), np.arange(20, 40)], n_classes=10, seed=0, verbose=2
    )
    err = capsys.readouterr().err
    assert "fitting members" in err and "vectorized steps" in err  # members, and steps at 2
    if not torch.cuda.is_available():
        return
    members = fit_members(
        _net(device="cuda"),
        X,
        y,
        [np.arange(20)],
        n_classes=10,
        seed=0,
        engine="vectorized",
    )
    assert next(members[0].module_.parameters()).is_cuda


def test_dtype_mismatch_is_an_error(digits):
    X, y = digits
    with pytest.raises(TypeError, match="float32"):
        fit_members(_net(), X.astype(np.float64), y, [np.arange(20)], n_classes=10, seed=0)


def test_net_config_is_built_once_per_fit_and_pickles(digits, monkeypatch):
    """One NetConfig per fit, whatever the number of chunks and jobs; it travels to workers."""
    import pickle

    from sklearn_certify.ensemble._net_config import NetConfig

    built = []
    original = NetConfig.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(NetConfig, "__init__", counting)
    X, y = digits
    subsets = disjoint_subsets(len(X), [20] * 6)[0]
    kw = dict(n_classes=10, seed=0, engine="vectorized", chunk_size=2)
    members = fit_members(_net(), X, y, subsets, **kw)
    assert len(members) == 6 and len(members.chunks) == 3
    assert built == [1]
    config = NetConfig(_net(), 10)
    assert vars(pickle.loads(pickle.dumps(config))) == vars(config)


def test_multiprocessing_backend_trains_chunks_in_workers(digits):
    """joblib's plain multiprocessing backend cannot return a generator: chunks come back as a
    list, identical to one job's."""
    from joblib import parallel_config

    X, y = digits
    subsets = disjoint_subsets(len(X), [20] * 6)[0]
    kw = dict(n_classes=10, seed=0, engine="vectorized", chunk_size=2)
    local = fit_members(_net(), X, y, subsets, **kw)
    with parallel_config(backend="multiprocessing"):
        pooled = fit_members(_net(), X, y, subsets, n_jobs=2, **kw)
    outputs = [member_outputs(m, X, n_classes=10) for m in (pooled, local)]
    assert np.array_equal(*outputs)
