"""make_mnist_net / MnistCNN trained on real MNIST digits from load_mnist."""

import numpy as np
import pytest
import torch
from torch import nn

from sklearn_certify.datasets import load_mnist
from sklearn_certify.nets import MnistCNN, make_mnist_net


@pytest.mark.parametrize("batch_norm", [False, True])
def test_mnist_net_trains_one_epoch_on_real_digits_and_outputs_logits(batch_norm):
    X, y = load_mnist(shape="image", split="train")
    X, y = X[:200], y[:200]
    torch.manual_seed(0)
    net = make_mnist_net(batch_norm=batch_norm, max_epochs=1).fit(X, y)
    losses = net.history[:, "train_loss"]
    assert len(losses) == 1 and np.isfinite(losses[0])
    assert net.criterion_.__class__ is nn.CrossEntropyLoss
    logits = net.forward(X[:50]).numpy()
    assert logits.shape == (50, 10) and logits.dtype == np.float32
    assert not np.allclose(logits.sum(axis=1), 1.0)  # raw logits, not probabilities
    proba = net.predict_proba(X[:50])
    assert np.allclose(proba, torch.softmax(torch.from_numpy(logits), dim=1).numpy(), atol=1e-6)
    has_norm = any(isinstance(m, nn.BatchNorm2d) for m in net.module_.modules())
    assert has_norm is batch_norm


def test_mnist_cnn_convolutions_drop_their_bias_only_under_batch_norm():
    for batch_norm in (False, True):
        convs = [m for m in MnistCNN(batch_norm=batch_norm).modules() if isinstance(m, nn.Conv2d)]
        assert len(convs) == 2 and all((c.bias is None) is batch_norm for c in convs)


def test_make_mnist_net_defaults_stay_a_plain_net_without_schedule_or_augmentation():
    from skorch import NeuralNetClassifier

    net = make_mnist_net()
    assert type(net) is NeuralNetClassifier
    assert net.callbacks is None and not hasattr(net, "augment")
    assert type(make_mnist_net(milestones=(2,))) is NeuralNetClassifier  # a schedule alone


def test_make_mnist_net_milestones_divide_the_learning_rate_by_ten_per_epoch():
    from skorch.callbacks import LRScheduler

    X, y = load_mnist(shape="image", split="train")
    net = make_mnist_net(max_epochs=4, lr=0.2, milestones=(1, 3), channels=2, batch_size=16)
    [(name, schedule)] = net.callbacks
    assert name == "lr" and isinstance(schedule, LRScheduler)
    assert (schedule.policy, schedule.step_every) == ("MultiStepLR", "epoch")
    assert schedule.kwargs == {"milestones": [1, 3], "gamma": 0.1}
    net.fit(X[:16], y[:16])  # one batch per epoch: the schedule steps at each epoch's end
    assert np.allclose(net.history[:, "event_lr"], [0.2, 0.02, 0.02, 0.002])


@pytest.mark.parametrize("padding", [1, 2])
def test_make_mnist_net_crop_padding_gives_a_certified_net_with_keyed_crops(padding):
    from sklearn_certify.ensemble import CertifiedNeuralNetClassifier, KeyedAugmentation

    net = make_mnist_net(crop_padding=padding, batch_norm=True, max_epochs=2)
    assert type(net) is CertifiedNeuralNetClassifier
    aug = net.augment
    assert isinstance(aug, KeyedAugmentation)
    assert (aug.crop_padding, aug.flip, aug.noise_std, aug.padding_mode) == (
        padding,
        False,
        0.0,
        "constant",
    )
    assert (net.module, net.module__batch_norm, net.max_epochs) == (MnistCNN, True, 2)
    assert net.training_step is None  # skorch's own loss and gradients


def test_make_mnist_net_rejects_a_negative_crop_padding():
    with pytest.raises(ValueError, match="crop_padding"):
        make_mnist_net(crop_padding=-1)


def test_every_mnist_net_option_trains_on_the_vectorized_engine_without_fallback():
    import warnings

    from sklearn_certify.ensemble import EngineFallbackWarning, StackedMembers, fit_members

    X, y = load_mnist(shape="image", split="train")
    X, y = X[:64], y[:64]
    net = make_mnist_net(batch_norm=True, max_epochs=1, milestones=(1,), crop_padding=2, channels=4)
    halves = [np.arange(32), np.arange(32, 64)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", EngineFallbackWarning)
        members = fit_members(net, X, y, halves, n_classes=10, seed=0, engine="auto")
    assert isinstance(members, StackedMembers) and len(members) == 2
