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
