"""Matplotlib figures for certificates."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["plot_certified_accuracy"]


def plot_certified_accuracy(curves, *, ax=None, xlabel: str = "attack size", title=None):
    """Step plot of certified accuracy against attack size.

    Parameters
    ----------
    curves : tuple (radii, accuracy) or mapping of label to such tuples
        Curves as returned by
        :func:`sklearn_certify.metrics.certified_accuracy_curve`.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure is made when None.
    xlabel : str, default="attack size"
        Label of the x axis, e.g. ``"poisoned samples"`` or ``"l2 radius"``.
    title : str, default=None
        Axes title.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_certify.plotting import plot_certified_accuracy
    >>> ax = plot_certified_accuracy({"DPA k=50": ([0, 1, 2], [0.9, 0.7, 0.2])})
    >>> ax.get_ylabel()
    'certified accuracy'
    """
    import matplotlib.pyplot as plt

    if not isinstance(curves, Mapping):
        curves = {None: curves}
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for label, curve in curves.items():
        if len(curve) != 2:
            raise ValueError(f"each curve must be a (radii, accuracy) pair, got {curve!r}.")
        radii, accuracy = (np.asarray(a, dtype=float) for a in curve)
        if radii.shape != accuracy.shape or radii.ndim != 1:
            raise ValueError("radii and accuracy must be 1-d arrays of the same length.")
        ax.step(radii, accuracy, where="post", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("certified accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    if title is not None:
        ax.set_title(title)
    if any(label is not None for label in curves):
        ax.legend()
    return ax
