import matplotlib
import numpy as np
import pytest

from sklearn_certify.datasets import load_digits, load_digits_1v7
from sklearn_certify.plotting import plot_certified_accuracy

matplotlib.use("Agg")


def test_digits_shapes_ranges_and_split():
    X, _y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert X.min() == 0.0 and X.max() == 1.0
    Xi, _ = load_digits(shape="image")
    assert Xi.shape == (1797, 1, 8, 8) and np.array_equal(Xi.reshape(-1, 64), X)
    Xr, _ = load_digits(raw=True)
    assert Xr.dtype == np.uint8 and Xr.max() == 16 and np.allclose(Xr / 16, X)
    Xtr, _ytr = load_digits(split="train")
    Xte, yte = load_digits(split="test")
    assert len(Xtr) + len(Xte) == 1797 and len(Xte) == 450
    # stratified and disjoint
    assert np.bincount(yte).min() >= 43
    train_rows = {r.tobytes() for r in Xtr}
    assert sum(r.tobytes() in train_rows for r in Xte) < 10  # only exact duplicate images


def test_digits_1v7_labels():
    X, y = load_digits_1v7()
    _Xd, yd = load_digits(digits=(1, 7))
    assert set(np.unique(y)) == {-1, 1}
    assert np.array_equal(y == 1, yd == 7) and X.dtype == np.float64


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(shape="square"), "shape"),
        (dict(digits=(1, 12)), "digits"),
        (dict(split="valid"), "split"),
        (dict(split="test", test_size=1.5), "test_size"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_digits(**kwargs)


def test_plot_certified_accuracy_draws_one_step_line_per_curve():
    ax = plot_certified_accuracy(
        {"a": ([0, 1, 2], [0.9, 0.5, 0.1]), "b": (np.array([0, 3]), np.array([0.8, 0.2]))},
        xlabel="poisoned samples",
        title="t",
    )
    assert len(ax.get_lines()) == 2 and ax.get_xlabel() == "poisoned samples"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    _x, yv = ax.get_lines()[0].get_data()
    assert list(yv)[:1] == [0.9]


def test_plot_rejects_malformed_curves():
    with pytest.raises(ValueError, match="same length"):
        plot_certified_accuracy(([0, 1], [0.5]))


@pytest.mark.parametrize("title", [None, "k=30"])
def test_plot_certified_accuracy_keeps_its_labels_inside_the_figure(title):
    ax = plot_certified_accuracy(
        {"DPA": (np.arange(16), np.linspace(0.95, 0.02, 16))},
        xlabel="poisoned training samples",
        title=title,
    )
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    # The axes with its tick labels, axis labels, title and legend.
    boxes = {"axes and everything drawn around it": ax.get_tightbbox(renderer)}
    boxes.update(
        {
            t.get_text(): t.get_window_extent(renderer)
            for t in (ax.xaxis.label, ax.yaxis.label, ax.title)
            if t.get_text()
        }
    )
    for name, box in boxes.items():
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1, name
        assert fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1, name


def test_plot_certified_accuracy_ends_each_curve_at_its_drop_to_zero():
    """Nothing is certified beyond a full curve's last radius: the line says so."""
    ax = plot_certified_accuracy(([0, 1, 2, 3], [0.9, 0.6, 0.3, 0.1]))
    x, yv = ax.get_lines()[0].get_data()
    # The step at the largest radius (3) is drawn up to 4 at its own height, then drops to 0,
    # where the certified accuracy at radius 4 is.
    assert list(x[-2:]) == [3, 4] and list(yv[-2:]) == [0.1, 0.0]
    ax.figure.canvas.draw()
    assert ax.get_xlim()[1] >= 4


def test_plot_certified_accuracy_real_radii_drop_at_the_last_corner():
    ax = plot_certified_accuracy(([0.0, 0.25, 0.7], [0.9, 0.6, 0.2]))
    line = ax.get_lines()[0]
    assert line.get_drawstyle() == "steps-pre"
    assert list(line.get_xdata()[-2:]) == [0.7, 0.7]
    assert list(line.get_ydata()[-2:]) == [0.2, 0.0]


def test_plot_certified_accuracy_of_a_real_certificate_matches_the_metric():
    """Where the drawn line stands is the certified accuracy at that radius, also past the end."""
    from sklearn_certify import Certificate
    from sklearn_certify.metrics import certified_accuracy, certified_accuracy_curve

    y = np.array([0, 1, 1, 0, 1])
    for unit, radius in (("samples", [0, 3, 1, 2, 5]), ("l2", [0.0, 0.3, 0.1, 0.2, 0.4])):
        cert = Certificate(np.array([0, 1, 1, 0, 0]), np.array(radius), np.zeros(5, bool), unit)
        line = plot_certified_accuracy(certified_accuracy_curve(y, cert)).get_lines()[0]
        x_last, y_last = line.get_xdata()[-1], line.get_ydata()[-1]
        assert y_last == 0.0 == certified_accuracy(y, cert, x_last + (unit == "l2") * 1e-9)


def test_plot_certified_accuracy_chosen_radii_keep_their_last_value():
    ax = plot_certified_accuracy(([0, 1, 2, 3], [0.9, 0.6, 0.3, 0.1]), drop_to_zero=False)
    x, yv = ax.get_lines()[0].get_data()
    assert list(x[-2:]) == [3, 4] and list(yv[-2:]) == [0.1, 0.1]
    ax = plot_certified_accuracy(([0.0, 0.7], [0.9, 0.2]), drop_to_zero=False)
    assert list(ax.get_lines()[0].get_ydata()) == [0.9, 0.2]


def test_plot_certified_accuracy_legend_outside_does_not_cover_the_axes():
    curves = {f"k={k}": (np.arange(4), np.linspace(0.9, 0.1, 4)) for k in (5, 15)}
    ax = plot_certified_accuracy(curves, legend_loc="outside")
    fig = ax.figure
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
    assert legend.x0 >= ax.get_window_extent().x1
    assert legend.x1 <= fig.bbox.x1


def _legend_and_axes_boxes(ax):
    fig = ax.figure
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
    return legend, ax.get_window_extent(), fig.bbox


def test_plot_bound_curve_legend_sits_below_the_lines():
    from sklearn_certify.convex import bound_curve
    from sklearn_certify.datasets import load_digits_1v7
    from sklearn_certify.plotting import plot_bound_curve

    X, y = load_digits_1v7()
    ax = plot_bound_curve(bound_curve(X, y, [0.0, 0.1], rho_sq=0.8, max_iter=50), title="t")
    legend, axes, figure = _legend_and_axes_boxes(ax)
    assert legend.y1 <= axes.y0 and figure.y0 <= legend.y0  # below the axes, inside the figure
    assert len(ax.get_legend().get_texts()) >= 3


def test_plot_attack_vs_certificate_legend_outside():
    from sklearn_certify.plotting import plot_attack_vs_certificate

    rows = [
        dict(
            budget=b,
            budget_unit="rows",
            certified_accuracy=c,
            clean_accuracy=0.9,
            attack_success=s,
            violation=False,
        )
        for b, c, s in [(0, 0.9, 0.0), (10, 0.4, 0.1), (50, 0.0, 0.8)]
    ]
    ax = plot_attack_vs_certificate({"a": rows, "b": rows}, legend_loc="outside")
    legend, axes, figure = _legend_and_axes_boxes(ax)
    assert legend.x0 >= axes.x1 and legend.x1 <= figure.x1


def test_plot_certified_accuracy_nothing_certified_is_a_visible_point_at_zero():
    """A real-radius curve with nothing certified is (0, 0): not stretched to radius 1."""
    ax = plot_certified_accuracy({"none": ([0.0], [0.0]), "some": ([0.0, 0.3], [0.8, 0.4])})
    nothing = ax.get_lines()[0]
    assert list(nothing.get_xdata()) == [0.0] and list(nothing.get_ydata()) == [0.0]
    assert nothing.get_marker() == "o"
    ax.figure.canvas.draw()
    assert ax.get_xlim()[1] < 0.5
