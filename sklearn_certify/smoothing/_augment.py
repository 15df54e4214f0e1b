"""Gaussian data augmentation for skorch nets: fresh noise on every training batch.

A classifier smoothed at test time (Cohen et al., 2019) is only accurate if its base model has
learned to classify noisy inputs, so it is trained on ``x + N(0, sigma^2 I)`` with a new draw
each time a row is seen. That is the opposite of training-set smoothing
(:class:`~sklearn_certify.RABClassifier`), where each member must see one *fixed* noisy copy.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator

__all__ = ["GaussianAugmentation"]


class GaussianAugmentation(BaseEstimator):
    """skorch callback adding fresh Gaussian noise to every training batch.

    Before each *training* batch reaches the module, its inputs ``Xi`` are replaced by
    ``Xi + sigma * z`` with ``z`` standard normal, drawn anew for every batch (so a row gets
    a different perturbation each epoch). Validation batches (``train_split``), ``predict``,
    ``predict_proba`` and ``forward`` see the inputs unchanged. Works with any
    ``NeuralNet`` whose training batches are ``[Xi, yi]`` lists with a floating-point tensor
    ``Xi``, which is what skorch's default dataset and ``DataLoader`` produce.

    The noise comes from a private :class:`torch.Generator`, never from torch's global one.
    It is seeded from ``random_state`` when the net (re)initializes its callbacks, i.e. at
    every ``fit``: the same net, data and ``random_state`` give the same noise. A
    ``partial_fit`` continues the stream.

    The class implements the hooks of ``skorch.callbacks.Callback`` (skorch calls callbacks
    by these method names) without subclassing it, so that importing this package does not
    import skorch and torch.

    Parameters
    ----------
    sigma : float
        Standard deviation of the noise, in the units of the net's inputs.
    random_state : int or None, default=None
        Seed of the noise. ``None`` draws fresh entropy from the operating system at each
        initialization (not reproducible).

    Attributes
    ----------
    generator_ : torch.Generator
        The generator the noise is drawn from (CPU); set by ``initialize``.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skorch import NeuralNetClassifier
    >>> from sklearn_certify.smoothing import GaussianAugmentation
    >>> X = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    >>> y = (X[:, 0] > 0).astype(np.int64)
    >>> net = NeuralNetClassifier(torch.nn.Linear, module__in_features=4, module__out_features=2,
    ...                           criterion=torch.nn.CrossEntropyLoss, max_epochs=3,
    ...                           train_split=None, verbose=0,
    ...                           callbacks=[GaussianAugmentation(0.25, random_state=0)])
    >>> net.fit(X, y).predict(X).shape
    (64,)
    """

    def __init__(self, sigma: float, random_state: int | None = None):
        self.sigma = sigma
        self.random_state = random_state

    def initialize(self) -> GaussianAugmentation:
        """Check the parameters and seed a fresh generator (skorch calls this at ``fit``)."""
        import torch

        sigma = self.sigma
        if isinstance(sigma, (bool, np.bool_)) or not isinstance(sigma, numbers.Real):
            raise TypeError(f"GaussianAugmentation sigma must be a real number, got {sigma!r}.")
        if not (np.isfinite(sigma) and sigma > 0):
            raise ValueError(f"GaussianAugmentation sigma must be finite and > 0, got {sigma}.")
        seed = self.random_state
        if seed is not None and (
            isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0
        ):
            raise ValueError(
                "GaussianAugmentation random_state must be a non-negative int or None, got "
                f"{seed!r}."
            )
        sequence = np.random.SeedSequence(None if seed is None else int(seed))
        state = sequence.generate_state(2, dtype=np.uint32)
        self.generator_ = torch.Generator().manual_seed((int(state[0]) << 31) | int(state[1] >> 1))
        return self

    def on_batch_begin(self, net, batch=None, training=None, **kwargs) -> None:
        """Replace a training batch's inputs by a noisy copy (other batches are left alone)."""
        import torch

        if not training:
            return
        if not isinstance(batch, list) or len(batch) != 2:
            raise TypeError(
                "GaussianAugmentation needs training batches that are [Xi, yi] lists (skorch's "
                f"default dataset and DataLoader), got {type(batch).__name__}."
            )
        inputs = batch[0]
        if not (torch.is_tensor(inputs) and inputs.is_floating_point()):
            kind = inputs.dtype if torch.is_tensor(inputs) else type(inputs).__name__
            raise TypeError(
                f"GaussianAugmentation adds noise to floating-point tensor inputs, got {kind}."
            )
        noise = torch.randn(inputs.shape, generator=self.generator_, dtype=inputs.dtype)
        # a new tensor, so that the rows the batch was collated from are never modified
        batch[0] = inputs + self.sigma * noise.to(inputs.device)

    # the other hooks of skorch's callback protocol: nothing to do
    def on_train_begin(self, net, X=None, y=None, **kwargs) -> None:
        """Called by skorch at the beginning of training; does nothing."""

    def on_train_end(self, net, X=None, y=None, **kwargs) -> None:
        """Called by skorch at the end of training; does nothing."""

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs) -> None:
        """Called by skorch at the beginning of each epoch; does nothing."""

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs) -> None:
        """Called by skorch at the end of each epoch; does nothing."""

    def on_batch_end(self, net, batch=None, training=None, **kwargs) -> None:
        """Called by skorch after each batch; does nothing."""

    def on_grad_computed(
        self, net, named_parameters, X=None, y=None, training=None, **kwargs
    ) -> None:
        """Called by skorch once gradients are computed; does nothing."""
