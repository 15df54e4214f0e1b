"""Small skorch networks for the bundled digits.

The ``demo`` command, the examples and the benchmarks train these on the digits of
:func:`sklearn_certify.datasets.load_digits`: :func:`make_digits_net` a CNN on ``(n, 1,
8, 8)`` images (``shape="image"``), :func:`make_digits_mlp` an MLP on flat rows of 64
pixels. :func:`make_mnist_net` is a CNN, optionally with BatchNorm, a step learning-rate
schedule and random-crop augmentation, on the ``(n, 1, 28, 28)`` MNIST images of
:func:`sklearn_certify.datasets.load_mnist`. All modules output logits, so the nets use
``torch.nn.CrossEntropyLoss``.
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
        Add a ``BatchNorm2d`` after each convolution. The vectorized engine batches
        BatchNorm across members: each member normalises with its own batch statistics and
        keeps its own running statistics (padding rows of a short batch are left out of
        both).
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


def _sgd_net(
    module,
    *,
    max_epochs: int,
    lr: float,
    batch_size: int,
    device: str,
    net_class=None,
    net_params: dict | None = None,
    **module_params,
):
    """A ``net_class`` (default ``NeuralNetClassifier``) training ``module`` with SGD."""
    from skorch import NeuralNetClassifier

    return (net_class or NeuralNetClassifier)(
        module,
        **{f"module__{name}": value for name, value in module_params.items()},
        **(net_params or {}),
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
    milestones: tuple[int, ...] | None = None,
    crop_padding: int = 0,
):
    """A skorch CNN for the 28x28 MNIST images of :func:`~sklearn_certify.datasets.load_mnist`.

    Every option vectorizes: DPA and RAB train all members of the net together with the
    vectorized engine, BatchNorm, the learning-rate schedule and the augmentation included.

    Parameters
    ----------
    batch_norm : bool, default=False
        Add BatchNorm after each convolution of :class:`MnistCNN`.
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
    milestones : tuple of int, default=None
        Epochs at which the learning rate is divided by 10: a skorch
        ``LRScheduler(policy="MultiStepLR", milestones=milestones, gamma=0.1)`` stepped
        once per epoch, named ``"lr"``. ``None`` keeps ``lr`` constant.
    crop_padding : int, default=0
        When > 0, train on random 28x28 crops of each image padded by ``crop_padding``
        zero pixels per side, a new crop per row and epoch:
        :class:`~sklearn_certify.ensemble.KeyedAugmentation` ``(crop_padding=crop_padding)``,
        keyed by (member, row, epoch) so a member's crops do not depend on the other
        members. Predictions see the images as they are.

    Returns
    -------
    skorch.NeuralNetClassifier
        Unfitted net whose module is the class :class:`MnistCNN`, trained with
        ``torch.nn.CrossEntropyLoss`` on its logits; a
        :class:`~sklearn_certify.ensemble.CertifiedNeuralNetClassifier` (a subclass) when
        ``crop_padding > 0``.

    Examples
    --------
    >>> from sklearn_certify.nets import make_mnist_net
    >>> net = make_mnist_net(batch_norm=True, max_epochs=3)
    >>> net.module.__name__, net.module__batch_norm, net.max_epochs
    ('MnistCNN', True, 3)

    With a step schedule and random crops:

    >>> net = make_mnist_net(batch_norm=True, max_epochs=6, milestones=(4,), crop_padding=2)
    >>> type(net).__name__, net.augment
    ('CertifiedNeuralNetClassifier', KeyedAugmentation(crop_padding=2, flip=False, ...))
    >>> name, schedule = net.callbacks[0]
    >>> name, schedule.policy, schedule.kwargs
    ('lr', 'MultiStepLR', {'milestones': [4], 'gamma': 0.1})
    """
    from skorch import NeuralNetClassifier
    from skorch.callbacks import LRScheduler

    from sklearn_certify.ensemble import CertifiedNeuralNetClassifier, KeyedAugmentation

    augment = KeyedAugmentation(crop_padding=crop_padding)  # checks crop_padding
    extra = {"augment": augment} if augment.crop_padding else {}
    if milestones is not None:
        schedule = LRScheduler(policy="MultiStepLR", milestones=list(milestones), gamma=0.1)
        extra["callbacks"] = [("lr", schedule)]
    return _sgd_net(
        MnistCNN,
        net_class=CertifiedNeuralNetClassifier if augment.crop_padding else NeuralNetClassifier,
        net_params=extra,
        max_epochs=max_epochs,
        lr=lr,
        batch_size=batch_size,
        device=device,
        channels=channels,
        batch_norm=batch_norm,
    )
