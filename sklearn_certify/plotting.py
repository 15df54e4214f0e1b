"""Matplotlib figures for certificates."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["plot_bound_curve", "plot_certified_accuracy"]


def plot_certified_accuracy(curves, *, ax=None, xlabel: str = "attack size", title=None):
    """Step plot of certified accuracy against attack size.

    Integer attack sizes (``"samples"``, ``"label_flips"``) are drawn as steps
    that hold each value from ``r`` to ``r + 1``, the last one included, so the
    accuracy at the largest radius is visible. Other radii (``"l2"``) are drawn
    as the left-continuous step function certified accuracy is: the value at a
    corner ``r_i`` holds on ``(r_{i-1}, r_i]``.

    Parameters
    ----------
    curves : tuple (radii, accuracy) or mapping of label to such tuples
        Curves as returned by
        :func:`sklearn_certify.metrics.certified_accuracy_curve`.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure (with constrained layout, so the labels
        fit) is made when None.
    xlabel : str, default="attack size"
        Label of the x axis, e.g. ``"poisoned samples"`` or ``"label flips"``.
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
        _, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
    for label, curve in curves.items():
        if len(curve) != 2:
            raise ValueError(f"each curve must be a (radii, accuracy) pair, got {curve!r}.")
        radii, accuracy = (np.asarray(a, dtype=float) for a in curve)
        if radii.shape != accuracy.shape or radii.ndim != 1:
            raise ValueError("radii and accuracy must be 1-d arrays of the same length.")
        if radii.size and np.all(radii == np.round(radii)):
            # Attack sizes are counts: the value at r holds up to r + 1, also for the last r.
            radii = np.append(radii, radii[-1] + 1)
            accuracy = np.append(accuracy, accuracy[-1])
            ax.step(radii, accuracy, where="post", label=label)
        else:
            ax.step(radii, accuracy, where="pre", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("certified accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    if title is not None:
        ax.set_title(title)
    if any(label is not None for label in curves):
        ax.legend()
    return ax


def plot_bound_curve(curve, *, ax=None, show_error: bool = True, title=None):
    """Bound U*, the candidate attack's losses and its test error against epsilon.

    The figure of Steinhardt, Koh & Liang (2017, Fig. 2) in one call: the
    dashed line is U*, the certified upper bound on the poisoned *training*
    loss under the oracle defence; the solid lines are what the candidate
    attack achieves (total train loss, clean train loss, test loss) and, on a
    second axis, the test error. The test loss is not bounded by U*.

    Parameters
    ----------
    curve : sklearn_certify.convex.BoundCurve
        Output of :func:`sklearn_certify.convex.bound_curve`.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure (with constrained layout) is made when None.
    show_error : bool, default=True
        Draw the test error on a twin axis (skipped when it was not computed).
    title : str, default=None
        Axes title.

    Returns
    -------
    matplotlib.axes.Axes
        The loss axes (the error axes is ``ax.right_ax`` when drawn).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_certify.convex import bound_curve
    >>> from sklearn_certify.datasets import load_digits_1v7
    >>> from sklearn_certify.plotting import plot_bound_curve
    >>> X, y = load_digits_1v7()
    >>> ax = plot_bound_curve(bound_curve(X, y, [0.0, 0.1], rho_sq=0.8, max_iter=200))
    >>> ax.get_xlabel()
    'epsilon (poison points / clean points)'
    """
    import matplotlib.pyplot as plt

    for name in ("epsilons_effective", "upper_bounds", "attack_total_train_loss"):
        if not hasattr(curve, name):
            raise TypeError(
                "curve must be the BoundCurve returned by sklearn_certify.convex.bound_curve; "
                f"got {type(curve).__name__} without {name!r}."
            )
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.8), layout="constrained")
    eps = np.asarray(curve.epsilons_effective, dtype=float)
    ax.plot(eps, curve.upper_bounds, "k--", marker="o", label="U* (bound on train loss)")
    series = (
        ("attack_total_train_loss", "attack: total train loss", "C0"),
        ("attack_clean_train_loss", "attack: clean train loss", "C1"),
        ("attack_test_loss", "attack: test loss", "C2"),
    )
    for name, label, color in series:
        values = np.asarray(getattr(curve, name), dtype=float)
        if np.any(np.isfinite(values)):
            ax.plot(eps, values, color=color, marker=".", label=label)
    ax.set_xlabel("epsilon (poison points / clean points)")
    ax.set_ylabel("hinge loss" if _curve_loss(curve) == "hinge" else "loss")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    error = np.asarray(getattr(curve, "attack_test_error", []), dtype=float)
    if show_error and error.size and np.any(np.isfinite(error)):
        right = ax.twinx()
        right.plot(eps, error, color="C3", marker="x", label="attack: test error")
        right.set_ylabel("test error")
        right.set_ylim(0, max(0.05, float(np.nanmax(error)) * 1.2))
        more_handles, more_labels = right.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
        ax.right_ax = right
    ax.legend(handles, labels, fontsize="small", loc="upper left")
    if title is not None:
        ax.set_title(title)
    return ax


def _curve_loss(curve) -> str:
    results = getattr(curve, "results", None)
    return results[0].loss if results else "hinge"
