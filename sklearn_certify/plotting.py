"""Matplotlib figures for certificates."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["plot_attack_vs_certificate", "plot_bound_curve", "plot_certified_accuracy"]


def plot_certified_accuracy(
    curves,
    *,
    ax=None,
    xlabel: str = "attack size",
    title=None,
    drop_to_zero: bool = True,
    legend_loc: str = "best",
):
    """Step plot of certified accuracy against attack size.

    Integer attack sizes (``"samples"``, ``"label_flips"``) are drawn as steps
    that hold each value from ``r`` to ``r + 1``, the last one included, so the
    accuracy at the largest radius is visible. Other radii (``"l2"``,
    ``"input_l2"``) are drawn as the left-continuous step function certified
    accuracy is: the value at a corner ``r_i`` holds on ``(r_{i-1}, r_i]``.

    A curve from :func:`~sklearn_certify.metrics.certified_accuracy_curve`
    (default radii) ends at the largest radius certified for a correct
    prediction: nothing is certified beyond it. With ``drop_to_zero`` (the
    default) each line therefore ends with its drop to zero, at ``r + 1`` for
    integer sizes and at the last corner for real radii, instead of stopping in
    mid-air.

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
    drop_to_zero : bool, default=True
        End each line with its drop to zero after the last radius (see above).
        Pass False for a curve evaluated at radii of your choice
        (``certified_accuracy_curve(..., radii=...)``), whose last value need
        not be the last non-zero one.
    legend_loc : str, default="best"
        Where the legend goes (matplotlib's ``loc``); ``"outside"`` puts it to
        the right of the axes, where it cannot hide a curve.

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
        radii, accuracy, where = _step_points(curve, drop_to_zero)
        # A curve of one point (nothing certified) would be invisible as a line.
        marker = "o" if radii.size == 1 else None
        ax.step(radii, accuracy, where=where, label=label, marker=marker)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("certified accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    if title is not None:
        ax.set_title(title)
    if any(label is not None for label in curves):
        _place_legend(ax, legend_loc)
    return ax


def _place_legend(ax, loc: str, *args, **kwargs):
    """``ax.legend`` at matplotlib's ``loc``, or right of the axes for ``"outside"``."""
    if loc == "outside":
        return ax.legend(*args, loc="upper left", bbox_to_anchor=(1.02, 1.0), **kwargs)
    return ax.legend(*args, loc=loc, **kwargs)


def _step_points(curve, drop_to_zero: bool):
    """The points and ``where`` of one certified-accuracy step line (see the caller)."""
    if len(curve) != 2:
        raise ValueError(f"each curve must be a (radii, accuracy) pair, got {curve!r}.")
    radii, accuracy = (np.asarray(a, dtype=float) for a in curve)
    if radii.shape != accuracy.shape or radii.ndim != 1:
        raise ValueError("radii and accuracy must be 1-d arrays of the same length.")
    drop = drop_to_zero and radii.size > 0 and accuracy[-1] > 0
    if drop_to_zero and radii.size and accuracy[-1] == 0:
        # Already ends at zero (nothing certified at all: the single point (0, 0)).
        return radii, accuracy, "post"
    if radii.size and np.all(radii == np.round(radii)):
        # Attack sizes are counts: the value at r holds up to r + 1, also for the last r.
        radii = np.append(radii, radii[-1] + 1)
        accuracy = np.append(accuracy, 0.0 if drop else accuracy[-1])
        return radii, accuracy, "post"
    if drop:
        radii, accuracy = np.append(radii, radii[-1]), np.append(accuracy, 0.0)
    return radii, accuracy, "pre"


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
    # Below the axes: inside, it would hide the lines it names.
    ax.legend(
        handles,
        labels,
        fontsize="small",
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        ncols=2,
    )
    if title is not None:
        ax.set_title(title)
    return ax


def _curve_loss(curve) -> str:
    results = getattr(curve, "results", None)
    return results[0].loss if results else "hinge"


#: What an attack budget counts, in words (x axis of :func:`plot_attack_vs_certificate`).
BUDGET_WORDS = {
    "rows": "poisoned training rows",
    "samples": "inserted+deleted training rows",
    "label_flips": "flipped training labels",
    "l2": "l2 norm of the training-set perturbation",
    "linf": "largest l_inf change of a training row",
}

#: The columns of :func:`sklearn_certify.attacks.evaluate_under_attack` drawn, and their style.
_ATTACK_SERIES = (
    ("certified_accuracy", "certified accuracy", "-", "o"),
    ("clean_accuracy", "clean accuracy", ":", "."),
    ("attack_success", "attack success", "--", "x"),
)


def _attack_rows(table) -> list:
    rows = table.to_dict("records") if hasattr(table, "to_dict") else list(table)
    needed = {"budget", "budget_unit", "violation", *(name for name, *_ in _ATTACK_SERIES)}
    for row in rows:
        if not isinstance(row, Mapping) or not needed <= set(row):
            raise ValueError(
                "each table must be the rows returned by "
                "sklearn_certify.attacks.evaluate_under_attack (or a DataFrame of them), with "
                f"the columns {sorted(needed)}."
            )
    if not rows:
        raise ValueError("the table has no rows to plot.")
    return sorted(rows, key=lambda row: row["budget"])


def plot_attack_vs_certificate(table, *, ax=None, title=None, legend_loc: str = "best"):
    """Certified accuracy, clean accuracy and attack success against the attack budget.

    Draws what :func:`sklearn_certify.attacks.evaluate_under_attack` measured: at each
    budget, the certified accuracy the clean model claims against an attack of that size
    (solid), the accuracy of the poisoned model on clean test data (dotted) and the
    fraction of test points on which the attack reached its goal (dashed). A budget at
    which the attack changed a certified prediction (a certificate violation) is marked
    with a red cross.

    Parameters
    ----------
    table : list of dict, DataFrame, or mapping of label to either
        The rows returned by ``evaluate_under_attack``; a mapping draws several tables
        (e.g. one per method) in one colour each.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure (with constrained layout) is made when None.
    title : str, default=None
        Axes title.
    legend_loc : str, default="best"
        Where the legend goes (matplotlib's ``loc``); ``"outside"`` puts it to the right
        of the axes, where it cannot hide a line.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_certify.plotting import plot_attack_vs_certificate
    >>> rows = [dict(budget=b, budget_unit="rows", certified_accuracy=c, clean_accuracy=0.9,
    ...              attack_success=s, violation=False)
    ...         for b, c, s in [(0, 0.9, 0.0), (10, 0.4, 0.1), (50, 0.0, 0.8)]]
    >>> ax = plot_attack_vs_certificate(rows)
    >>> ax.get_xlabel(), len(ax.get_lines())
    ('attack budget (poisoned training rows)', 3)
    """
    import matplotlib.pyplot as plt

    tables = table if isinstance(table, Mapping) else {None: table}
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.8), layout="constrained")
    units = set()
    flagged = False
    for i, (label, rows) in enumerate(tables.items()):
        rows = _attack_rows(rows)
        units.update(row["budget_unit"] for row in rows)
        budgets = np.array([row["budget"] for row in rows], dtype=float)
        for j, (name, words, style, marker) in enumerate(_ATTACK_SERIES):
            values = np.array([row[name] for row in rows], dtype=float)
            color = f"C{j}" if label is None else f"C{i}"
            text = words if label is None else f"{label}: {words}"
            ax.plot(budgets, values, linestyle=style, marker=marker, color=color, label=text)
        bad = np.array([bool(row["violation"]) for row in rows])
        if bad.any():
            values = np.array([row["certified_accuracy"] for row in rows], dtype=float)
            ax.plot(
                budgets[bad],
                values[bad],
                "X",
                color="red",
                markersize=10,
                label=None if flagged else "certified prediction changed",
            )
            flagged = True
    if len(units) != 1:
        raise ValueError(f"the tables count their budgets in different units: {sorted(units)}.")
    unit = units.pop()
    ax.set_xlabel(f"attack budget ({BUDGET_WORDS.get(unit, unit)})")
    ax.set_ylabel("fraction of test points")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    _place_legend(ax, legend_loc, fontsize="small")
    if title is not None:
        ax.set_title(title)
    return ax
