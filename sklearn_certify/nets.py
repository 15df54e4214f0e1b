"""Small skorch networks for the bundled digits.

The ``demo`` command, the examples and the benchmarks train these on the digits of
:func:`sklearn_certify.datasets.load_digits`: :func:`make_digits_net` a CNN on ``(n, 1,
8, 8)`` images (``shape="image"``), :func:`make_digits_mlp` an MLP on flat rows of 64
pixels. :func:`make_mnist_net` is a CNN, optionally with BatchNorm, on the ``(n, 1, 28,
28)`` MNIST images of :func:`sklearn_certify.datasets.load_mnist`. All modules output
logits, so the nets use ``torch.nn.CrossEntropyLoss``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "DigitsCNN",
    "DigitsMLP",
    "MnistCNN",
    "make_digits_mlp",
    "make_digits_net",
    "make_mnist_net",
]


class DigitsCNN(nn.Module):
    """Two 3x3 conv blocks and a linear head for (n, 1, 8, 8) digit images.

    Parameters
    ----------
    channels : int, default=16
        Channels of the first conv block (the second has twice as many).
    n_classes : int, default=10
        Output logits.

    Examples
    --------
    >>> import torch
    >>> from sklearn_certify.nets import DigitsCNN
    >>> DigitsCNN(channels=4)(torch.zeros(3, 1, 8, 8)).shape
    torch.Size([3, 10])
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

    Examples
    --------
    >>> import torch
    >>> from sklearn_certify.nets import DigitsMLP
    >>> DigitsMLP(hidden=8, depth=2)(torch.zeros(3, 64)).shape
    torch.Size([3, 10])
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


def _mnist_block(in_channels: int, out_channels: int, batch_norm: bool) -> list[nn.Module]:
    """A 3x3 conv, an optional BatchNorm, ReLU and a 2x2 max-pool halving the image."""
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not batch_norm)
    norm = [nn.BatchNorm2d(out_channels)] if batch_norm else []
    return [conv, *norm, nn.ReLU(), nn.MaxPool2d(2)]


class MnistCNN(nn.Module):
    """Two 3x3 conv blocks and a linear head for (n, 1, 28, 28) MNIST images.

    Each block is a 3x3 convolution, a BatchNorm when ``batch_norm=True`` (the convolution
    then has no bias), ReLU and a 2x2 max-pool: 28x28 -> 14x14 -> 7x7.

    Parameters
    ----------
    channels : int, default=16
        Channels of the first conv block (the second has twice as many).
    batch_norm : bool, default=False
        Add a ``BatchNorm2d`` after each convolution. A module with BatchNorm has
        buffers, which the vectorized engine does not batch yet: DPA and RAB then train
        it with the loop engine and say so with an ``EngineFallbackWarning``.
    n_classes : int, default=10
        Output logits.

    Examples
    --------
    >>> import torch
    >>> from sklearn_certify.nets import MnistCNN
    >>> MnistCNN(batch_norm=True)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(self, channels: int = 16, batch_norm: bool = False, n_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            *_mnist_block(1, channels, batch_norm),
            *_mnist_block(channels, 2 * channels, batch_norm),
        )
        self.head = nn.Linear(2 * channels * 7 * 7, n_classes)

    def forward(self, X):
        """Logits of shape ``(n, n_classes)``."""
        return self.head(self.features(X).flatten(1))


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


def make_mnist_net(
    *,
    batch_norm: bool = False,
    max_epochs: int = 10,
    lr: float = 0.05,
    batch_size: int = 32,
    channels: int = 16,
    device: str = "cpu",
):
    """A skorch CNN for the 28x28 MNIST images of :func:`~sklearn_certify.datasets.load_mnist`.

    Parameters
    ----------
    batch_norm : bool, default=False
        Add BatchNorm after each convolution of :class:`MnistCNN`. Without it the net
        vectorizes across DPA and RAB members; with it they fall back to the loop engine
        with an ``EngineFallbackWarning``.
    max_epochs : int, default=10
        Epochs per member.
    lr : float, default=0.05
        SGD learning rate (momentum 0.9).
    batch_size : int, default=32
        Mini-batch size.
    channels : int, default=16
        Width of :class:`MnistCNN`.
    device : str, default="cpu"
        Torch device, e.g. ``"cuda"``.

    Returns
    -------
    skorch.NeuralNetClassifier
        Unfitted net whose module is the class :class:`MnistCNN`, trained with
        ``torch.nn.CrossEntropyLoss`` on its logits.

    Examples
    --------
    >>> from sklearn_certify.nets import make_mnist_net
    >>> net = make_mnist_net(batch_norm=True, max_epochs=3)
    >>> net.module.__name__, net.module__batch_norm, net.max_epochs
    ('MnistCNN', True, 3)
    """
    return _sgd_net(
        MnistCNN,
        max_epochs=max_epochs,
        lr=lr,
        batch_size=batch_size,
        device=device,
        channels=channels,
        batch_norm=batch_norm,
    )
