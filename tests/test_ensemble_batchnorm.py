"""BatchNorm in the vectorized engine: each member's statistics come from its own real rows.

A member trained by the vectorized engine equals the same net fitted alone by skorch (the loop
engine) up to float rounding (``atol=2e-4`` on parameters and running statistics; dividing
by a batch standard deviation magnifies last-bit differences of the two kernels): members
of equal size trim their short batches, members of unequal size (DPA partitions) are padded
and their padded rows are masked out of the batch and running statistics. Either way a member
is bit-identical whatever its chunk partners (at a given chunk size, which depends on no data;
across chunk sizes the batched kernels round differently, within ``1e-6``).
"""

import math
import warnings

import numpy as np
import pytest
import torch

from sklearn_certify.ensemble import EngineFallbackWarning, MemberPlan, fit_members
from sklearn_certify.ensemble._batch_norm import RowMask, masked_template
from tests._ensemble_helpers import disjoint_subsets, first_digits


class BNMLP(torch.nn.Module):
    def __init__(self, momentum=0.1, affine=True):
        super().__init__()
        self.l1 = torch.nn.Linear(64, 16)
        self.bn = torch.nn.BatchNorm1d(16, momentum=momentum, affine=affine)
        self.l2 = torch.nn.Linear(16, 10)

    def forward(self, x):
        return self.l2(torch.relu(self.bn(self.l1(x))))


class BNConv(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.out = torch.nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        return self.out(torch.relu(self.bn(self.conv(x))).flatten(1))


@pytest.fixture(scope="module")
def digits():
    return first_digits(400)


def _net(module=BNMLP, **kw):
    from skorch import NeuralNetClassifier

    params = dict(
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=3,
        batch_size=8,
        lr=0.1,
        iterator_train__shuffle=True,
    )
    if kw.get("optimizer", torch.optim.SGD) is torch.optim.SGD:
        params["optimizer__momentum"] = 0.9
    params.update(kw)
    return NeuralNetClassifier(module, **params)


def _state(net):
    return [t.detach().clone() for t in net.module_.state_dict().values()]


def _assert_close(a, b):
    for ta, tb in zip(_state(a), _state(b), strict=True):
        torch.testing.assert_close(ta, tb, rtol=0, atol=2e-4)


def _equal(a, b):
    return all(torch.equal(x, y) for x, y in zip(_state(a), _state(b), strict=True))


CASES = {
    "mlp": dict(),
    "mlp_cumulative": dict(module__momentum=None),
    # (not Adam: a bias in front of BatchNorm gets a gradient of rounding noise, which Adam's
    # normalisation blows up to full-size steps on either engine)
    "mlp_no_affine_nesterov": dict(module__affine=False, optimizer__nesterov=True),
    "conv2d": dict(module=BNConv),
}


def _rows(case, X):
    return X.reshape(len(X), 1, 8, 8) if case == "conv2d" else X


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("sizes", [[21, 21, 21], [23, 40, 18, 10]], ids=["equal", "unequal"])
def test_batchnorm_members_match_skorch_alone(digits, case, sizes):
    """Short last batches (21 = 2 x 8 + 5 rows) and, unequal, padded ones are handled."""
    X, y = digits
    X = _rows(case, X)
    subsets, _ = disjoint_subsets(len(X), sizes, seed=2)
    net = _net(**CASES[case])
    kw = dict(n_classes=10, seed=4)
    loop = fit_members(net, X, y, subsets, engine="loop", **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", EngineFallbackWarning)
        vec = fit_members(net, X, y, subsets, engine="vectorized", **kw)
    for a, b, n in zip(loop, vec, sizes, strict=True):
        _assert_close(a, b)
        assert int(b.module_.bn.num_batches_tracked) == 3 * math.ceil(n / 8)
    out_loop = np.stack([m.predict_proba(X[:20]) for m in loop])
    out_vec = np.stack([m.predict_proba(X[:20]) for m in vec])
    np.testing.assert_allclose(out_loop, out_vec, atol=1e-4)


@pytest.mark.parametrize("sizes", [[21, 21, 21, 21, 21], [24, 18, 10, 40, 31]], ids=str)
def test_batchnorm_members_are_independent_of_partners_and_chunks(digits, sizes):
    X, y = digits
    subsets, rest = disjoint_subsets(len(X), sizes, seed=3)
    net = _net()
    kw = dict(n_classes=10, seed=5, engine="vectorized")
    total = len(sizes)
    ref = fit_members(net, X, y, MemberPlan(subsets, None, total), chunk_size=2, **kw)
    for chunk_size in (1, 5):  # batched kernels of another width round differently
        other = fit_members(
            net, X, y, MemberPlan(subsets, None, total), chunk_size=chunk_size, **kw
        )
        for a, b in zip(ref, other, strict=True):
            for ta, tb in zip(_state(a), _state(b), strict=True):
                torch.testing.assert_close(ta.float(), tb.float(), rtol=0, atol=1e-6)
    if len(set(sizes)) > 1:  # a member's new row changes it alone
        changed = list(subsets)
        changed[1] = np.concatenate([subsets[1], rest[:1]])
        new = fit_members(net, X, y, MemberPlan(changed, None, total), chunk_size=2, **kw)
        assert not _equal(new[1], ref[1])
        assert all(_equal(new[i], ref[i]) for i in range(total) if i != 1)
    keep = [0, 2, 4]
    part = fit_members(
        net, X, y, MemberPlan([subsets[i] for i in keep], keep, total), chunk_size=2, **kw
    )
    assert all(_equal(m, ref[i]) for m, i in zip(part, keep, strict=True))


def test_masked_batchnorm_ignores_padded_rows_and_idle_members():
    """Hand check of the masked layer on one member: padding never enters any statistic."""
    torch.manual_seed(0)
    layer = torch.nn.BatchNorm1d(3, momentum=0.25)
    holder = RowMask()
    masked = masked_template(torch.nn.Sequential(layer), holder)
    x = torch.randn(6, 3)
    garbage = torch.cat([x[:4], torch.full((2, 3), 1e6)])
    holder.mask = torch.tensor([True] * 4 + [False] * 2)
    out = masked.train()(garbage)
    ref_layer = torch.nn.BatchNorm1d(3, momentum=0.25).train()
    ref = ref_layer(x[:4])
    torch.testing.assert_close(out[:4], ref, rtol=0, atol=1e-6)
    bn = masked[0]
    torch.testing.assert_close(bn.running_mean, ref_layer.running_mean, rtol=0, atol=1e-7)
    torch.testing.assert_close(bn.running_var, ref_layer.running_var, rtol=0, atol=1e-7)
    # by hand: running mean = 0.75 * 0 + 0.25 * batch mean; var with the n - 1 divisor
    torch.testing.assert_close(bn.running_mean, 0.25 * x[:4].mean(0))
    torch.testing.assert_close(bn.running_var, 0.75 + 0.25 * x[:4].var(0, unbiased=True))
    before = [bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()]
    holder.mask = torch.zeros(6, dtype=torch.bool)  # a member that takes no step
    masked(garbage)
    assert all(torch.equal(a, b) for a, b in zip(before, bn.buffers(), strict=True))


def test_batchnorm_in_a_dpa_ensemble_certifies_as_the_loop_engine(digits):
    from sklearn_certify import DPAClassifier

    X, y = digits
    dpa = dict(n_partitions=6, random_state=0)
    vec = DPAClassifier(_net(max_epochs=2), engine="vectorized", **dpa).fit(X, y)
    loop = DPAClassifier(_net(max_epochs=2), engine="loop", **dpa).fit(X, y)
    a, b = vec.certify(X[:60]), loop.certify(X[:60])
    assert (a.prediction == b.prediction).mean() >= 0.95
    assert np.abs(a.radius - b.radius).max() <= 1


def test_one_row_batches_are_refused_before_training(digits, monkeypatch):
    import sklearn_certify.ensemble._vectorized as vectorized

    monkeypatch.setattr(vectorized, "train_chunks", lambda *a, **k: pytest.fail("trained"))
    X, y = digits
    subsets, _ = disjoint_subsets(len(X), [16, 17], seed=1)
    with pytest.raises(ValueError, match=r"members with 17 rows have a last batch of one row"):
        fit_members(_net(), X, y, subsets, n_classes=10, seed=0, engine="vectorized")
    # BatchNorm2d gets 64 values per channel from one 8 x 8 row: nothing to refuse
    conv = fit_members(
        _net(BNConv, max_epochs=1),
        X.reshape(-1, 1, 8, 8),
        y,
        subsets[1:],
        n_classes=10,
        seed=0,
        engine="loop",
    )
    assert len(conv) == 1
