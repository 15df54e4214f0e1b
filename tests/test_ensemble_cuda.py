"""The engine on a CUDA device: independence, views and scoring where the members live on a GPU.

Skipped without CUDA (CI has none); run on a GPU machine with
``python -m pytest tests/test_ensemble_cuda.py``.
"""

import pickle

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier

from sklearn_certify import DPAClassifier
from sklearn_certify.ensemble import (
    ALL_ROWS,
    MemberPlan,
    StackedMembers,
    fit_members,
    member_outputs,
)
from tests._ensemble_helpers import TinyMLP, disjoint_subsets, first_digits, keyed_noise

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _net(**kw):
    params = dict(
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=3,
        batch_size=8,
        lr=0.1,
        optimizer__momentum=0.9,
        iterator_train__shuffle=True,
        device="cuda",
    )
    params.update(kw)
    return NeuralNetClassifier(TinyMLP, **params)


def _params(net):
    return [p.detach().cpu().numpy().copy() for p in net.module_.parameters()]


@pytest.fixture(scope="module")
def digits():
    return first_digits(600)


def test_exact_partition_independence_on_cuda(digits):
    X, y = digits
    sizes = [24, 17, 9, 40, 31, 16, 8]
    subsets, rest = disjoint_subsets(len(X), sizes, seed=3)
    big = int(np.argmax(sizes))
    kw = dict(n_classes=10, seed=5, engine="vectorized", chunk_size=3)
    ref = fit_members(_net(), X, y, MemberPlan(subsets, None, 7), **kw)
    assert isinstance(ref, StackedMembers) and ref.device.type == "cuda"
    changed = list(subsets)
    changed[big] = np.concatenate([subsets[big], rest[:1]])
    new = fit_members(_net(), X, y, MemberPlan(changed, None, 7), **kw)
    for i in range(len(sizes)):
        same = all(
            np.array_equal(a, b) for a, b in zip(_params(new[i]), _params(ref[i]), strict=True)
        )
        assert same == (i != big), i


def test_cuda_engines_agree_and_views_run_on_the_device(digits):
    X, y = digits
    seen = []

    def view(Xb, row_ids, member_ids, seeds):
        seen.append((Xb.device.type, row_ids.device.type, seeds.device.type))
        return keyed_noise(Xb, row_ids, member_ids, seeds)

    plan = MemberPlan(ALL_ROWS, member_ids=range(4), view=view)
    kw = dict(n_classes=10, seed=2)
    vec = fit_members(_net(), X, y, plan, engine="vectorized", chunk_size=2, **kw)
    assert set(seen) == {("cuda", "cuda", "cuda")}
    loop = fit_members(_net(), X, y, plan, engine="loop", **kw)
    for a, b in zip(vec, loop, strict=True):
        for p, q in zip(_params(a), _params(b), strict=True):
            np.testing.assert_allclose(p, q, atol=1e-4)
    scores_vec = member_outputs(vec, X[:50], n_classes=10)
    scores_loop = member_outputs(loop, X[:50], n_classes=10)
    np.testing.assert_allclose(scores_vec, scores_loop, atol=1e-3)


def test_dpa_on_cuda_certifies_and_pickles(digits):
    X, y = digits
    clf = DPAClassifier(_net(), n_partitions=12, spread=2, random_state=0).fit(X, y)
    cert = clf.certify(X[:100])
    again = pickle.loads(pickle.dumps(clf))
    assert np.array_equal(again.certify(X[:100]).radius, cert.radius)
    cpu = DPAClassifier(_net(device="cpu"), n_partitions=12, spread=2, random_state=0).fit(X, y)
    # same members up to float rounding: the predictions agree almost everywhere
    assert np.mean(cpu.predict(X[:100]) == cert.prediction) > 0.95


def test_keyed_noise_is_the_same_on_cpu_and_gpu():
    from sklearn_certify.smoothing import keyed_normal

    seeds = torch.tensor([3, 2**62 + 7])
    rows = torch.tensor([[0, 5, 9], [1, 2, 2**31 + 3]])
    cpu = keyed_normal(seeds, rows, (4, 4), dtype=torch.float64)
    gpu = keyed_normal(seeds.cuda(), rows.cuda(), (4, 4), dtype=torch.float64)
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-12, atol=1e-12)


def test_rab_on_cuda_matches_the_loop_engine_and_certifies(digits):
    from sklearn_certify import RABClassifier

    X, y = digits
    kw = dict(n_estimators=8, sigma=0.3, random_state=0)
    vec = RABClassifier(_net(), engine="vectorized", **kw).fit(X, y)
    loop = RABClassifier(_net(), engine="loop", **kw).fit(X, y)
    assert vec.trained_members_.device.type == "cuda"
    np.testing.assert_allclose(vec.member_scores(X[:50]), loop.member_scores(X[:50]), atol=1e-3)
    cert = vec.certify(X[:100])
    assert cert.unit == "l2" and (cert.radius >= 0).all()


class _BNConv(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.out = torch.nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        return self.out(torch.relu(self.bn(self.conv(x))).flatten(1))


@pytest.mark.parametrize("sizes", [[24, 24, 24], [24, 18, 10, 40]], ids=["equal", "padded"])
def test_batchnorm_augmentation_and_dp_step_on_cuda_match_cpu(digits, sizes):
    """The features of the training-step tests, on the GPU: keyed draws are the CPU's."""
    from sklearn_certify.ensemble import (
        CertifiedNeuralNetClassifier,
        DPSGDStep,
        KeyedAugmentation,
    )

    X, y = digits
    X = X.reshape(len(X), 1, 8, 8)
    subsets, _ = disjoint_subsets(len(X), sizes, seed=1)
    kw = dict(n_classes=10, seed=2, engine="vectorized")
    for module, step in ((_BNConv, None), (TinyMLP, DPSGDStep(noise_multiplier=0.5))):
        rows = X if module is _BNConv else X.reshape(len(X), -1)
        base = dict(
            criterion=torch.nn.CrossEntropyLoss,
            max_epochs=2,
            batch_size=8,
            lr=0.1,
            iterator_train__shuffle=True,
            training_step=step,
            augment=KeyedAugmentation(crop_padding=1, flip=True, noise_std=0.05)
            if module is _BNConv
            else KeyedAugmentation(noise_std=0.05),
        )
        cpu = fit_members(CertifiedNeuralNetClassifier(module, **base), rows, y, subsets, **kw)
        gpu = fit_members(
            CertifiedNeuralNetClassifier(module, device="cuda", **base), rows, y, subsets, **kw
        )
        for a, b in zip(cpu, gpu, strict=True):
            for ta, tb in zip(
                a.module_.state_dict().values(), b.module_.state_dict().values(), strict=True
            ):
                torch.testing.assert_close(ta, tb.cpu(), rtol=0, atol=2e-4)
