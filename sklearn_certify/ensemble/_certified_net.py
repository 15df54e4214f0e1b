"""A skorch classifier whose training step and augmentation both engines run the same way."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from skorch import NeuralNetClassifier

__all__ = ["CertifiedNeuralNetClassifier"]


def check_step_settings(net):
    """Return ``net.training_step`` (``None`` without one) after checking it and ``augment``."""
    from sklearn_certify.ensemble._step import TrainingStep

    step = getattr(net, "training_step", None)
    augment = getattr(net, "augment", None)
    if step is not None and not isinstance(step, TrainingStep):
        raise TypeError(
            f"training_step must be a TrainingStep (subclass it to change the loss or the "
            f"gradients), got {type(step).__name__}."
        )
    if augment is not None and not callable(augment):
        raise TypeError(
            f"augment must be callable as augment(x, row_ids, keys, epochs), e.g. "
            f"KeyedAugmentation(crop_padding=2), got {type(augment).__name__}."
        )
    return step


class _KeyedRows(dict):
    """``{"X": rows, "row_ids": their ids}``: training rows with the ids augmentation keys on."""


class CertifiedNeuralNetClassifier(NeuralNetClassifier):
    """skorch's ``NeuralNetClassifier`` with a replaceable training step and keyed augmentation.

    Use it as the base net of any certified ensemble. Both engines then train each member with
    the same :class:`~sklearn_certify.ensemble.TrainingStep` and the same augmentation: the
    vectorized engine batches them across members with :func:`torch.func.vmap`, the loop
    engine runs them in this net's ``train_step_single``. Without ``training_step`` and
    ``augment`` it trains exactly as ``NeuralNetClassifier``.

    Parameters
    ----------
    module : type of torch.nn.Module
        As for skorch (the class; settings as ``module__<name>``).
    *args, **kwargs
        Every other skorch setting (``criterion``, ``optimizer``, ``lr``, ``max_epochs``,
        ``batch_size``, ``callbacks``, ...).
    training_step : TrainingStep, default=None
        The member's loss and gradients (``None``: skorch's own step). A step other than the
        default needs ``criterion`` to be the class ``CrossEntropyLoss`` or ``NLLLoss``.
    augment : callable, default=None
        Training-time augmentation, e.g. :class:`~sklearn_certify.ensemble.KeyedAugmentation`:
        ``augment(x, row_ids, keys, epochs)`` on ``(1, W, ...)`` rows, a draw per (member key,
        row, epoch). Predictions never see it.
    member_key : int, default=0
        Key of this net's own randomness (augmentation draws, a step's noise). An ensemble
        sets it for each member to ``member_seed(seed_, member_id, "step")``; set it yourself
        to train one net alone as that member.

    Notes
    -----
    ``fit(X, y, row_ids=None)`` keys each row's augmentation by ``row_ids`` (default: the
    row's position in ``X``); ``X`` must be an array or tensor. The epoch a draw belongs to is
    the net's epoch count (``len(history) - 1``), and the step number a step sees counts the
    optimizer steps since :meth:`initialize`. A ``training_step`` computes its outputs inside
    its own :mod:`torch.func` transforms, so callbacks get no training predictions
    (``y_pred=None``): score on validation data instead of ``EpochScoring(on_train=True)``.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sklearn_certify.ensemble import CertifiedNeuralNetClassifier, TrainingStep
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 4)).astype(np.float32); y = (X[:, 0] > 0).astype(np.int64)
    >>> net = CertifiedNeuralNetClassifier(
    ...     torch.nn.Linear, module__in_features=4, module__out_features=2,
    ...     criterion=torch.nn.CrossEntropyLoss, max_epochs=3, batch_size=16, lr=0.5,
    ...     training_step=TrainingStep(), train_split=None, verbose=0)
    >>> _ = net.fit(X, y)
    >>> net.n_steps_  # 3 epochs of 4 batches
    12
    >>> bool(net.score(X, y) > 0.8)
    True
    """

    def __init__(
        self, module, *args, training_step=None, augment=None, member_key: int = 0, **kwargs
    ):
        super().__init__(module, *args, **kwargs)
        self.training_step = training_step
        self.augment = augment
        self.member_key = member_key

    # ------------------------------------------------------------------ fitting
    def initialize(self):
        from sklearn_certify.ensemble._batch_norm import batch_norms

        step = check_step_settings(self)
        super().initialize()
        if getattr(step, "per_sample", False) and batch_norms(self.module_):
            raise ValueError(
                f"{step!r} computes per-sample gradients, which BatchNorm's batch statistics "
                "mix across rows; replace the module's BatchNorm layers (e.g. with GroupNorm)."
            )
        self.n_steps_ = 0
        return self

    def fit(self, X, y=None, row_ids=None, **fit_params):
        """Fit as skorch does; ``row_ids`` (default ``arange(len(X))``) key the augmentation."""
        return super().fit(self._keyed(X, row_ids), y, **fit_params)

    def partial_fit(self, X, y=None, classes=None, row_ids=None, **fit_params):
        """Partial fit as skorch does, with ``row_ids`` as in :meth:`fit`."""
        return super().partial_fit(self._keyed(X, row_ids), y, classes, **fit_params)

    def _keyed(self, X, row_ids):
        if isinstance(X, _KeyedRows):
            return X
        if self.augment is None and self.training_step is None:
            return X
        if isinstance(X, Mapping) or not hasattr(X, "shape"):
            raise TypeError(
                "CertifiedNeuralNetClassifier with augment or training_step trains on an array "
                f"or tensor X, got {type(X).__name__}; pass the rows as one array."
            )
        n = len(X)
        ids = np.arange(n) if row_ids is None else np.asarray(row_ids)
        if ids.shape != (n,) or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"row_ids must be {n} integers (one per row of X), got {ids!r}.")
        return _KeyedRows(X=X, row_ids=ids.astype(np.int64))

    def infer(self, x, **fit_params):
        if isinstance(x, Mapping) and "row_ids" in x:
            x = x["X"]
        return super().infer(x, **fit_params)

    def train_step_single(self, batch, **fit_params):
        import torch
        from skorch.dataset import unpack_data
        from skorch.utils import to_tensor

        Xi, yi = unpack_data(batch)
        row_ids = None
        if isinstance(Xi, Mapping) and "row_ids" in Xi:
            Xi, row_ids = Xi["X"], Xi["row_ids"]
        if self.augment is None and self.training_step is None:
            out = super().train_step_single((Xi, yi), **fit_params)
            self.n_steps_ += 1
            return out
        self._set_training(True)
        x = to_tensor(Xi, device=self.device)
        key = torch.tensor(int(self.member_key), dtype=torch.int64, device=x.device)
        if self.augment is not None:
            epoch = torch.tensor([len(self.history) - 1], dtype=torch.int64, device=x.device)
            ids = to_tensor(row_ids, device=self.device).to(torch.int64)
            x = self.augment(x[None], ids[None], key[None], epoch)[0]
        if self.training_step is None:
            y_pred = self.infer(x, **fit_params)
            loss = self.get_loss(y_pred, yi, X=x, training=True)
            loss.backward()
        else:
            y_pred, loss = self._custom_step(x, yi, key, fit_params)
        self.n_steps_ += 1
        return {"loss": loss, "y_pred": y_pred}

    def _custom_step(self, x, yi, key, fit_params):
        """Run ``training_step``; leave its gradients in ``.grad``; return ``(None, loss)``."""
        import torch
        from skorch.utils import to_tensor
        from torch.func import functional_call

        from sklearn_certify.ensemble._step import row_loss_of

        if fit_params:
            raise TypeError(
                f"fit parameters {sorted(fit_params)} reach the module's forward, which a "
                "training_step does not pass on; drop them."
            )
        row_loss = row_loss_of(self)
        if row_loss.class_weight is not None:
            row_loss = row_loss._replace(class_weight=row_loss.class_weight.to(x))
        module = self.module_
        params = dict(module.named_parameters())
        buffers = dict(module.named_buffers())

        def loss_of(p, xb, yb, mask):
            out = functional_call(module, (p, buffers), (xb,))
            return self.training_step.loss(out, yb, mask, row_loss)

        y = to_tensor(yi, device=self.device).to(torch.int64)
        mask = torch.ones(y.shape[0], dtype=torch.bool, device=y.device)
        step = torch.tensor(self.n_steps_, dtype=torch.int64, device=y.device)
        detached = {name: p.detach() for name, p in params.items()}
        grads, loss = self.training_step.gradients(loss_of, detached, (x, y, mask), key, step)
        for name, p in params.items():
            p.grad = grads[name].detach().clone()
        return None, loss.detach()  # the outputs live inside the step's own transforms
