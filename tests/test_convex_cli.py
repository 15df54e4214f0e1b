"""``python -m sklearn_certify bound``: bundled data, .npz and .csv input, outputs, errors."""

import csv
import subprocess
import sys

import numpy as np
import pytest

from sklearn_certify import convex, plotting
from sklearn_certify.cli import COMMAND_MODULES, main
from tests._cli_helpers import user_error

FAST = ["--max-iter", "100", "--epsilons", "0", "0.05"]


def _read(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_bound_is_registered():
    assert "bound" in COMMAND_MODULES


def test_bound_on_bundled_digits(tmp_path, capsys):
    assert main(["bound", "--out", str(tmp_path), *FAST]) == 0
    rows = _read(tmp_path / "bound_curve.csv")
    assert [float(r["epsilon"]) for r in rows] == [0.0, 0.05]
    for r in rows:
        assert float(r["attack_total_train_loss"]) <= float(r["upper_bound"]) + 1e-6
    assert (tmp_path / "bound_curve.png").stat().st_size > 1000
    assert "wrote" in capsys.readouterr().out


def test_bound_on_npz_and_csv(tmp_path):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(1, 1, (30, 3)), rng.normal(-1, 1, (30, 3))])
    y = np.repeat([1, -1], 30)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    assert main(["bound", "--data", str(tmp_path / "d.npz"), "--rho-sq", "1",
                 "--out", str(tmp_path / "npz"), *FAST]) == 0
    assert len(_read(tmp_path / "npz" / "bound_curve.csv")) == 2
    table = np.column_stack([y, X])
    np.savetxt(tmp_path / "d.csv", table, delimiter=",", header="label,a,b,c", comments="")
    assert main(["bound", "--data", str(tmp_path / "d.csv"), "--label-column", "label",
                 "--out", str(tmp_path / "csv"), "--oracle", "cvxpy", *FAST]) == 0
    assert len(_read(tmp_path / "csv" / "bound_curve.csv")) == 2


def test_bound_errors(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "bad.npz", X=rng.normal(size=(20, 2)), y=np.repeat([0, 1], 10))
    line = user_error(["bound", "--data", tmp_path / "bad.npz", "--out", tmp_path, *FAST], capsys)
    assert "labels must be -1 and +1" in line
    line = user_error(["bound", "--data", tmp_path / "missing.npz"], capsys)
    assert "no such file" in line
    line = user_error(["bound", "--epsilons", "1.2", "--out", tmp_path], capsys)
    assert "--epsilons: expected a number in [0, 1)" in line
    for extreme in ("0.001", "0.99"):  # the bundled split leaves a side without both classes
        line = user_error(["bound", "--test-size", extreme, "--out", tmp_path, *FAST], capsys)
        assert "--test-size" in line


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            ["--loss", "logistic", "--learner", "linear_svc"],
            "--learner linear_svc trains LinearSVC, which has no --loss logistic",
        ),
        (
            ["--epsilons", "0.01", "0.99", "--max-iter", "50"],
            "--epsilons 0.99 with --max-iter 50: epsilon asks for round(epsilon * 270) poison "
            "rows (270 training rows), up to 267",
        ),
    ],
)
def test_bound_refuses_impossible_options_before_any_work(
    tmp_path, capsys, monkeypatch, extra, expected
):
    """One line and exit 2, before the first epsilon is computed or --out is created."""

    def no_work(*args, **kwargs):
        raise AssertionError("the curve was computed before the refusal")

    monkeypatch.setattr(convex, "bound_curve", no_work)
    out = tmp_path / "out"
    assert expected in user_error(["bound", "--out", out, *extra], capsys)
    assert not out.exists()


def test_bound_says_what_the_number_bounds(tmp_path, capsys, monkeypatch):
    """U* bounds the poisoned training loss under the oracle defence, not the test loss."""
    titles = []
    original = plotting.plot_bound_curve

    def record(curve, **kwargs):
        titles.append(kwargs["title"])
        return original(curve, **kwargs)

    monkeypatch.setattr(plotting, "plot_bound_curve", record)
    assert main(["bound", "--out", str(tmp_path), *FAST]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "U* is a certified upper bound on the poisoned TRAINING loss" in printed
    assert "ORACLE sphere+slab defence" in printed and "Steinhardt, Koh & Liang 2017" in printed
    assert "It is not a bound on test loss" in printed
    assert "the defence removes no clean points, the training set is large" in printed
    assert "test loss exceeds U*" in printed  # digits: the attacked test loss sits above U*
    assert "measured on the fixed stratified 0.25 split of digits-1v7" in printed
    assert titles == [
        "U* bounds the poisoned training loss\n(oracle sphere+slab defence, digits-1v7)"
    ]


def test_module_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "sklearn_certify", "bound", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "--epsilons" in out and "--rho-sq" in out
