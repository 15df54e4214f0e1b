"""RandomizedSmoothingClassifier with a skorch net on its device (CUDA skipped without a GPU).

The same checks run on the CPU, so the test itself is exercised everywhere; on a GPU machine
run ``python -m pytest tests/test_cohen_cuda.py``.
"""

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier

from sklearn_certify import RandomizedSmoothingClassifier
from sklearn_certify.datasets import load_digits
from sklearn_certify.metrics import certified_accuracy

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    ),
]


class CNN(torch.nn.Module):
    """A small convolutional net on (1, 8, 8) digits."""

    def __init__(self, channels=8):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, channels, 3, padding=1)
        self.out = torch.nn.Linear(channels * 16, 10)

    def forward(self, X):
        h = torch.nn.functional.max_pool2d(torch.relu(self.conv(X)), 2)
        return self.out(h.flatten(1))


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("device", DEVICES)
def test_images_on_the_nets_device(device):
    X, y = load_digits(shape="image", split="train")
    X_test, y_test = load_digits(shape="image", split="test")
    X_test, y_test = X_test[:30], y_test[:30]
    net = NeuralNetClassifier(
        CNN,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        lr=0.05,
        max_epochs=6,
        batch_size=64,
        iterator_train__shuffle=True,
        train_split=None,
        verbose=0,
        device=device,
    )
    clf = RandomizedSmoothingClassifier(
        net, sigma=0.25, n_select=20, n_samples=300, alpha=0.01, batch_size=128, random_state=0
    ).fit(X, y)
    assert next(clf.estimator_.module_.parameters()).device.type == device
    cert = clf.certify(X_test)
    assert np.all(cert.votes.sum(axis=1) == 300)
    assert certified_accuracy(y_test, cert) > 0.7
    assert np.array_equal(clf.certify(X_test[4:5]).votes, cert.votes[4:5])
    assert np.array_equal(clf.certify(X_test[::-1]).votes, cert.votes[::-1])
    assert np.array_equal(clf.certify(X_test).votes, cert.votes)
    if device == "cpu":  # GPU training kernels need not be bit-reproducible
        again = RandomizedSmoothingClassifier(**clf.get_params(deep=False)).fit(X, y)
        assert np.array_equal(again.certify(X_test).votes, cert.votes)
