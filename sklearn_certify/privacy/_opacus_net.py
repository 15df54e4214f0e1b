"""A skorch classifier trained with Opacus's DP-SGD: the loop engine's private member."""

from __future__ import annotations

from skorch import NeuralNetClassifier

__all__ = ["OpacusNeuralNetClassifier"]


class OpacusNeuralNetClassifier(NeuralNetClassifier):
    """skorch's ``NeuralNetClassifier`` whose optimizer steps are Opacus's DP-SGD.

    Training runs the module through ``opacus.GradSampleModule``, which records every
    row's gradient, and wraps the optimizer in ``opacus.optimizers.DPOptimizer``, which
    clips each row's gradient to ``max_grad_norm``, adds Gaussian noise of standard deviation
    ``noise_multiplier * max_grad_norm`` (from torch's generator) and divides by
    ``expected_batch_size`` before the optimizer's own step. Prediction uses the plain module,
    which shares the parameters. :class:`~sklearn_certify.DPVoteClassifier` trains its members
    with this net on the loop engine; the vectorized engine runs the same algorithm as
    :class:`~sklearn_certify.ensemble.DPSGDStep`.

    Parameters
    ----------
    module : type of torch.nn.Module
        As for skorch (no BatchNorm: Opacus refuses it).
    *args, **kwargs
        Every other skorch setting.
    noise_multiplier : float, default=1.0
        Noise standard deviation over the clipping norm.
    max_grad_norm : float, default=1.0
        Clipping norm of each row's gradient.
    expected_batch_size : int, default=None
        Divisor of the noisy sum (``None``: ``batch_size``).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sklearn_certify.privacy import OpacusNeuralNetClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(64, 4)).astype(np.float32); y = (X[:, 0] > 0).astype(np.int64)
    >>> net = OpacusNeuralNetClassifier(
    ...     torch.nn.Linear, module__in_features=4, module__out_features=2,
    ...     criterion=torch.nn.CrossEntropyLoss, max_epochs=20, lr=1.0, batch_size=64,
    ...     noise_multiplier=0.5, max_grad_norm=1.0, train_split=None, verbose=0)
    >>> _ = torch.manual_seed(0); _ = net.fit(X, y)
    >>> type(net.optimizer_).__name__, bool(net.score(X, y) > 0.8)
    ('DPOptimizer', True)
    """

    def __init__(
        self,
        module,
        *args,
        noise_multiplier: float = 1.0,
        max_grad_norm: float = 1.0,
        expected_batch_size: int | None = None,
        **kwargs,
    ):
        super().__init__(module, *args, **kwargs)
        self.noise_multiplier = noise_multiplier
        self.max_grad_norm = max_grad_norm
        self.expected_batch_size = expected_batch_size

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Train as skorch does, with Opacus's per-row gradient hooks on the module meanwhile.

        The hooks are removed when training ends, so the fitted module is a plain module.
        """
        import warnings

        from opacus import GradSampleModule

        if not self.initialized_:
            self.initialize()
        # kept in a dict: skorch allows torch modules as attributes only in initialize_*
        self._opacus_training = {"grad_sampler": GradSampleModule(self.module_)}
        try:
            with warnings.catch_warnings():
                # Opacus's backward hooks fire on inputs that need no gradient: harmless
                warnings.filterwarnings("ignore", "Full backward hook is firing")
                return super().partial_fit(X, y, classes, **fit_params)
        finally:
            self._opacus_training.pop("grad_sampler").remove_hooks()

    def initialize_optimizer(self, *args, **kwargs):
        from opacus.optimizers import DPOptimizer

        super().initialize_optimizer(*args, **kwargs)
        expected = self.expected_batch_size or self.batch_size
        self.optimizer_ = DPOptimizer(
            self.optimizer_,
            noise_multiplier=float(self.noise_multiplier),
            max_grad_norm=float(self.max_grad_norm),
            expected_batch_size=int(expected),
        )
        return self

    def infer(self, x, **fit_params):
        sampler = getattr(self, "_opacus_training", {}).get("grad_sampler")
        if sampler is not None and self.module_.training:
            from skorch.utils import to_tensor

            return sampler(to_tensor(x, device=self.device), **fit_params)
        return super().infer(x, **fit_params)
