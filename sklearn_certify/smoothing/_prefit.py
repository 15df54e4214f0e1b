"""A trained ``torch.nn.Module`` as a frozen scikit-learn classifier, for certification."""

from __future__ import annotations

__all__ = ["frozen_module"]


def frozen_module(module, classes, *, device=None):
    """Wrap a trained torch module as a frozen classifier that certifies without retraining.

    The module becomes an initialised skorch ``NeuralNetClassifier`` (its weights are used
    as they are: skorch keeps a module instance it is given), wrapped in
    :class:`sklearn.frozen.FrozenEstimator`, so that
    :class:`~sklearn_certify.RandomizedSmoothingClassifier` scores it on its device
    and ``fit`` trains nothing.

    Parameters
    ----------
    module : torch.nn.Module
        A trained module mapping a batch of rows to one score per class (logits or
        probabilities: the vote is their argmax).
    classes : array-like of shape (n_classes,)
        The label of each output column, in column order.
    device : str or torch.device, default=None
        Where to score (default: where the module's parameters are).

    Returns
    -------
    sklearn.frozen.FrozenEstimator
        Wrapping the skorch net; ``.estimator.module_`` is ``module`` itself.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sklearn_certify.smoothing import RandomizedSmoothingClassifier, frozen_module
    >>> module = torch.nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = module.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
    ...     _ = module.bias.zero_()
    >>> clf = RandomizedSmoothingClassifier(frozen_module(module, ["left", "right"]),
    ...                                     sigma=0.5, n_samples=500, alpha=0.01,
    ...                                     random_state=0)
    >>> X = np.array([[3.0, 0.0], [-3.0, 0.0]], dtype=np.float32)
    >>> cert = clf.fit(X).certify(X)  # fit trains nothing: the module is used as it is
    >>> cert.prediction.tolist(), bool(cert.radius.min() > 1)
    (['left', 'right'], True)
    """
    import torch
    from sklearn.frozen import FrozenEstimator
    from skorch import NeuralNetClassifier

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}.")
    classes = list(classes)
    if device is None:
        first = next(module.parameters(), None)
        device = first.device if first is not None else "cpu"
    net = NeuralNetClassifier(
        module,
        classes=classes,
        criterion=torch.nn.CrossEntropyLoss,
        device=str(device),
        train_split=None,
        verbose=0,
    )
    net.initialize()
    return FrozenEstimator(net)
