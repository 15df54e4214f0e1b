"""Training steps and augmentation that both engines run: exact, independent, refused clearly.

A member trained by the vectorized engine equals the same ``CertifiedNeuralNetClassifier``
fitted alone by skorch (the loop engine) up to float rounding (``atol=2e-5``; a step that
differentiates each row on its own, DP-SGD, within ``1e-4`` after three epochs), and is
bit-identical whatever its chunk partners.
"""

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch import NeuralNetClassifier
from skorch.callbacks import LRScheduler

from sklearn_certify.ensemble import (
    CertifiedNeuralNetClassifier,
    DPSGDStep,
    EngineFallbackWarning,
    KeyedAugmentation,
    MemberPlan,
    TrainingStep,
    fit_members,
    member_seed,
)
from sklearn_certify.ensemble._skorch import torch_seeded
from sklearn_certify.ensemble._threads import one_thread
from tests._ensemble_helpers import TinyMLP, disjoint_subsets, first_digits


class SmallConv(torch.nn.Module):
    def __init__(self, batch_norm=False):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4) if batch_norm else torch.nn.Identity()
        self.out = torch.nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        return self.out(torch.relu(self.bn(self.conv(x))).flatten(1))


class MarginStep(TrainingStep):
    """A loss of our own: cross-entropy plus a penalty on the largest logit (per real row)."""

    def loss(self, outputs, y, mask, row_loss):
        penalty = (outputs.amax(-1).square() * mask).sum() / mask.sum().clamp(min=1)
        return super().loss(outputs, y, mask, row_loss) + 0.05 * penalty


@pytest.fixture(scope="module")
def digits():
    X, y = first_digits(400)
    return X, y


def _net(module=TinyMLP, cls=CertifiedNeuralNetClassifier, **kw):
    params = dict(
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=3,
        batch_size=8,
        lr=0.1,
        optimizer__momentum=0.9,
        iterator_train__shuffle=True,
    )
    params.update(kw)
    return cls(module, **params)


def _state(net):
    return [t.detach().clone() for t in net.module_.state_dict().values()]


def _close(a, b, atol=2e-5):
    for ta, tb in zip(_state(a), _state(b), strict=True):
        torch.testing.assert_close(ta, tb, rtol=0, atol=atol)


def _equal(a, b):
    return all(torch.equal(x, y) for x, y in zip(_state(a), _state(b), strict=True))


def _vectorized(net, X, y, subsets, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error", EngineFallbackWarning)
        return fit_members(net, X, y, subsets, engine="vectorized", **kw)


AUGMENT = KeyedAugmentation(crop_padding=1, flip=True, noise_std=0.05)

CASES = {
    "margin_loss": dict(training_step=MarginStep()),
    "dp_sgd": dict(training_step=DPSGDStep(max_grad_norm=0.5, noise_multiplier=0.3)),
    "augment": dict(module=SmallConv, augment=AUGMENT),
    "augment_batchnorm_schedule": dict(
        module=SmallConv,
        module__batch_norm=True,
        augment=AUGMENT,
        callbacks=[("lr", LRScheduler(policy="MultiStepLR", milestones=[1, 2], gamma=0.3))],
    ),
    "augment_dp_sgd": dict(
        module=SmallConv, augment=AUGMENT, training_step=DPSGDStep(noise_multiplier=0.5)
    ),
}


def _rows(case, X):
    return X.reshape(len(X), 1, 8, 8) if "augment" in case else X


@pytest.mark.parametrize("case", list(CASES))
def test_members_match_skorch_alone(digits, case):
    """Members of different sizes, in one chunk, against skorch's fit of each alone."""
    X, y = digits
    X = _rows(case, X)
    subsets, _ = disjoint_subsets(len(X), [23, 40, 18], seed=1)
    net = _net(**CASES[case])
    kw = dict(n_classes=10, seed=7)
    loop = fit_members(net, X, y, subsets, engine="loop", **kw)
    vec = _vectorized(net, X, y, subsets, **kw)
    atol = 1e-4 if "dp_sgd" in case else 2e-5
    for a, b in zip(loop, vec, strict=True):
        _close(a, b, atol)
    # the loop engine's member is the net fitted alone, keyed as the engine keys it
    alone = clone(net).set_params(
        member_key=member_seed(7, 1, "step"),
        classes=list(range(10)),
        train_split=None,
        verbose=0,
        iterator_train__generator=torch.Generator().manual_seed(member_seed(7, 1, "shuffle")),
    )
    with one_thread(), torch_seeded(member_seed(7, 1, "torch_init")):  # as members train
        alone.fit(X[subsets[1]], y[subsets[1]], row_ids=subsets[1])
    assert _equal(alone, loop[1])


@pytest.mark.parametrize("case", list(CASES))
def test_members_are_independent_of_their_chunk_partners(digits, case):
    X, y = digits
    X = _rows(case, X)
    subsets, rest = disjoint_subsets(len(X), [23, 40, 18, 30], seed=2)
    net = _net(**CASES[case])
    kw = dict(n_classes=10, seed=3, chunk_size=2)
    total = len(subsets)
    ref = _vectorized(net, X, y, MemberPlan(subsets, None, total), **kw)
    changed = list(subsets)
    changed[2] = np.concatenate([subsets[2], rest[:3]])
    new = _vectorized(net, X, y, MemberPlan(changed, None, total), **kw)
    assert not _equal(new[2], ref[2])
    assert all(_equal(new[i], ref[i]) for i in (0, 1, 3))
    keep = [1, 3]
    part = _vectorized(net, X, y, MemberPlan([subsets[i] for i in keep], keep, total), **kw)
    assert all(_equal(m, ref[i]) for m, i in zip(part, keep, strict=True))


def test_default_step_is_skorchs_step(digits):
    """``TrainingStep()`` trains as skorch: bit for bit vectorized, to rounding in the loop."""
    X, y = digits
    subsets, _ = disjoint_subsets(len(X), [23, 40], seed=1)
    kw = dict(n_classes=10, seed=7)
    plain = _net(cls=NeuralNetClassifier)
    stepped = _net(training_step=TrainingStep())
    vec_plain = _vectorized(plain, X, y, subsets, **kw)
    vec_stepped = _vectorized(stepped, X, y, subsets, **kw)
    assert all(_equal(a, b) for a, b in zip(vec_plain, vec_stepped, strict=True))
    loop_plain = fit_members(plain, X, y, subsets, engine="loop", **kw)
    loop_stepped = fit_members(stepped, X, y, subsets, engine="loop", **kw)
    for a, b, rows in zip(loop_plain, loop_stepped, subsets, strict=True):
        _close(a, b)
        assert b.n_steps_ == 3 * -(-len(rows) // 8)


def test_steps_and_augmentation_change_training(digits):
    """Each feature acts: a member differs from the plain net's member with the same seed."""
    X, y = digits
    Xc = X.reshape(len(X), 1, 8, 8)
    subsets, _ = disjoint_subsets(len(X), [40], seed=1)
    kw = dict(n_classes=10, seed=7)
    plain = _vectorized(_net(module=SmallConv), Xc, y, subsets, **kw)[0]
    for extra in (
        dict(augment=KeyedAugmentation(crop_padding=1)),
        dict(augment=KeyedAugmentation(flip=True)),
        dict(augment=KeyedAugmentation(noise_std=0.05)),
        dict(training_step=MarginStep()),
        dict(training_step=DPSGDStep(max_grad_norm=1e-3, noise_multiplier=0.0)),
    ):
        assert not _equal(
            _vectorized(_net(module=SmallConv, **extra), Xc, y, subsets, **kw)[0], plain
        )
    # DP-SGD's noise is keyed by the member: two seeds, two noises
    dp = _net(training_step=DPSGDStep(noise_multiplier=1.0))
    a = _vectorized(dp, X, y, subsets, n_classes=10, seed=1)[0]
    b = _vectorized(dp, X, y, subsets, n_classes=10, seed=2)[0]
    assert not _equal(a, b)


def test_refusals_name_the_setting(digits):
    X, y = digits
    subsets, _ = disjoint_subsets(len(X), [20, 20])
    kw = dict(n_classes=10, seed=0)
    with pytest.raises(TypeError, match="training_step must be a TrainingStep"):
        fit_members(_net(training_step=lambda *a: None), X, y, subsets, **kw)
    with pytest.raises(TypeError, match="augment must be callable"):
        fit_members(_net(augment="crop"), X, y, subsets, **kw)
    bn_dp = _net(module=SmallConv, module__batch_norm=True, training_step=DPSGDStep())
    for engine in ("loop", "vectorized"):
        with pytest.raises(ValueError, match=r"per-sample gradients.*BatchNorm"):
            fit_members(bn_dp, X.reshape(-1, 1, 8, 8), y, subsets, engine=engine, **kw)
    with pytest.raises(ValueError, match=r"crop_padding=1.*reshape"):
        fit_members(_net(augment=KeyedAugmentation(crop_padding=1)), X, y, subsets, **kw)

    class MyNet(CertifiedNeuralNetClassifier):
        pass

    with pytest.warns(EngineFallbackWarning, match="MyNet is a subclass"):
        fit_members(_net(cls=MyNet, max_epochs=1), X, y, subsets, **kw)
    net = _net(augment=KeyedAugmentation(noise_std=0.1))
    with pytest.raises(TypeError, match="array or tensor X"):
        net.fit({"x": X}, y)
    with pytest.raises(ValueError, match="row_ids must be 400 integers"):
        net.fit(X, y, row_ids=np.arange(3))


def test_rab_with_augmented_members_certifies_alike_on_both_engines(digits):
    """RAB: fixed certified noise per member, a fresh crop per epoch, either engine."""
    from sklearn_certify import RABClassifier

    X, y = digits
    Xc = X.reshape(len(X), 1, 8, 8)
    net = _net(module=SmallConv, augment=KeyedAugmentation(crop_padding=1), max_epochs=2)
    kw = dict(n_estimators=6, sigma=0.3, random_state=0)
    vec = RABClassifier(net, engine="vectorized", **kw).fit(Xc[:300], y[:300])
    loop = RABClassifier(net, engine="loop", **kw).fit(Xc[:300], y[:300])
    a, b = vec.certify(Xc[300:360]), loop.certify(Xc[300:360])
    assert (a.prediction == b.prediction).mean() >= 0.95
    np.testing.assert_allclose(a.radius, b.radius, atol=0.05)
