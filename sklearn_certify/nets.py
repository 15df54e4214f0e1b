"""Small skorch networks for the bundled 8x8 digits.

The ``demo`` command, the examples and the benchmarks train these on the digits of
:func:`sklearn_certify.datasets.load_digits`: :func:`make_digits_net` a CNN on ``(n, 1,
8, 8)`` images (``shape="image"``), :func:`make_digits_mlp` an MLP on flat rows of 64
pixels. Both modules output logits, so the nets use ``torch.nn.CrossEntropyLoss``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DigitsCNN", "DigitsMLP", "make_digits_mlp", "make_digits_net"]


class DigitsCNN(nn.Module):
    """Two 3x3 conv blocks and a linear head for (n, 1, 8, 8) digit images.

    Parameters
    ----------
    channels : int, default=16
        Channels of the first conv block (the second has twice as many).
    n_classes : int, default=10
        Output logits.
    """

    def __init__(self, channels: int = 16, n_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(2 * channels * 4, n_classes)

    def forward(self, X):
        """Logits of shape ``(n, n_classes)``."""
        return self.head(self.features(X).flatten(1))


class DigitsMLP(nn.Module):
    """A 64-pixel MLP with ``depth`` hidden layers of ``hidden`` units and 10 logits.

    Parameters
    ----------
    hidden : int, default=64
        Width of every hidden layer.
    depth : int, default=1
        Number of hidden layers.
    """

    def __init__(self, hidden: int = 64, depth: int = 1):
        super().__init__()
        layers, width = [], 64
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.layers = nn.Sequential(*layers, nn.Linear(width, 10))

    def forward(self, X):
        """Logits of shape ``(n, 10)``."""
        return self.layers(X)


def _sgd_net(module, *, max_epochs: int, lr: float, batch_size: int, device: str, **module_params):
    from skorch import NeuralNetClassifier

    return NeuralNetClassifier(
        module,
        **{f"module__{name}": value for name, value in module_params.items()},
        criterion=nn.CrossEntropyLoss,  # the modules output logits
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        lr=lr,
        max_epochs=max_epochs,
        batch_size=batch_size,
        iterator_train__shuffle=True,
        train_split=None,
        device=device,
        verbose=0,
    )


def make_digits_net(
    *,
    max_epochs: int = 30,
    lr: float = 0.05,
    batch_size: int = 16,
    channels: int = 16,
    device: str = "cpu",
):
    """The skorch CNN the ``demo`` trains on every DPA partition.

    Parameters
    ----------
    max_epochs : int, default=30
        Epochs per member.
    lr : float, default=0.05
        SGD learning rate (momentum 0.9).
    batch_size : int, default=16
        Mini-batch size.
    channels : int, default=16
        Width of :class:`DigitsCNN`.
    device : str, default="cpu"
        Torch device, e.g. ``"cuda"``.

    Returns
    -------
    skorch.NeuralNetClassifier
        Unfitted net whose module is the class :class:`DigitsCNN`.

    Examples
    --------
    >>> from sklearn_certify.nets import make_digits_net
    >>> net = make_digits_net(max_epochs=2)
    >>> net.max_epochs, net.module.__name__
    (2, 'DigitsCNN')
    """
    return _sgd_net(
        DigitsCNN,
        max_epochs=max_epochs,
        lr=lr,
        batch_size=batch_size,
        device=device,
        channels=channels,
    )


def make_digits_mlp(
    *,
    hidden: int = 64,
    depth: int = 1,
    max_epochs: int = 10,
    lr: float = 0.1,
    batch_size: int = 32,
    device: str = "cpu",
):
    """The skorch MLP the ``demo``'s smoothing families train on flat digits.

    Parameters
    ----------
    hidden : int, default=64
        Width of every hidden layer of :class:`DigitsMLP`.
    depth : int, default=1
        Number of hidden layers.
    max_epochs : int, default=10
        Epochs per member.
    lr : float, default=0.1
        SGD learning rate (momentum 0.9).
    batch_size : int, default=32
        Mini-batch size.
    device : str, default="cpu"
        Torch device, e.g. ``"cuda"``.

    Returns
    -------
    skorch.NeuralNetClassifier
        Unfitted net whose module is the class :class:`DigitsMLP`.

    Examples
    --------
    >>> from sklearn_certify.nets import make_digits_mlp
    >>> net = make_digits_mlp(hidden=128, depth=2)
    >>> net.module.__name__, net.module__hidden, net.module__depth
    ('DigitsMLP', 128, 2)
    """
    return _sgd_net(
        DigitsMLP,
        max_epochs=max_epochs,
        lr=lr,
        batch_size=batch_size,
        device=device,
        hidden=hidden,
        depth=depth,
    )
