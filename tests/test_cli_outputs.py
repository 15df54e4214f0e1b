"""--out is a folder for every command, checked before any work; outputs are traceable."""

import json
import os

import numpy as np
import pytest

from tests._cli_helpers import (
    FAST,
    certificates,
    digits_csv,
    forbid_training,
    read_rows,
    run_cli,
    user_error,
    write_csv,
)


@pytest.fixture
def no_fit(monkeypatch):
    """Fail the test if anything is trained: errors must come before the fit."""
    forbid_training(monkeypatch)


@pytest.fixture
def data(tmp_path):
    return digits_csv(tmp_path / "d.csv", n=160)


def _certify(data, out, *extra):
    return ["certify", "--data", data, "--out", out, *FAST, *extra]


# ---------------------------------------------------------------- inputs are never overwritten
def test_out_equal_to_an_input_is_refused(tmp_path, capsys, no_fit, data):
    before = data.read_bytes()
    assert "is the --data file" in user_error(_certify(data, data), capsys)
    out = tmp_path / "results"
    out.mkdir()
    inside = digits_csv(out / "certificates.csv", n=160)
    line = user_error(_certify(inside, out), capsys)
    assert "would overwrite the --data file" in line and "choose another --out" in line
    test = digits_csv(out / "certified_accuracy.csv", n=10)
    assert "--test-data" in user_error(_certify(data, out, "--test-data", test), capsys)
    assert data.read_bytes() == before
    signs = tmp_path / "bound" / "bound_curve.csv"
    signs.parent.mkdir()
    rows = [[float(i), 1 if i % 2 else -1] for i in range(20)]
    write_csv(signs, ["x", "label"], rows)
    before = signs.read_bytes()
    assert "is the --data file" in user_error(["bound", "--data", signs, "--out", signs], capsys)
    line = user_error(["bound", "--data", signs, "--out", signs.parent], capsys)
    assert "would overwrite the --data file" in line
    assert signs.read_bytes() == before


# ---------------------------------------------------------------- unwritable outputs, before fit
def test_unwritable_out_fails_before_training(tmp_path, capsys, no_fit, data):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = user_error(_certify(data, blocker / "sub"), capsys)
    assert "cannot create the folder" in line
    assert "is a file" in user_error(_certify(data, blocker), capsys)
    assert "looks like a file name" in user_error(_certify(data, tmp_path / "certs.csv"), capsys)
    assert "argument --out: expected a folder name" in user_error(_certify(data, ""), capsys)
    out = tmp_path / "out"
    (out / "certificates.csv").mkdir(parents=True)
    assert "certificates.csv there is a folder" in user_error(_certify(data, out), capsys)
    (out / "certificates.csv").rmdir()
    (out / "certificates.meta.json").mkdir()
    assert "certificates.meta.json there is a folder" in user_error(_certify(data, out), capsys)
    demo = ["demo", "--quick", "--out", blocker]
    assert "is a file" in user_error(demo, capsys)
    bound = ["bound", "--out", blocker / "sub", "--epsilons", "0", "--max-iter", "1"]
    assert "cannot create the folder" in user_error(bound, capsys)


def test_out_without_write_permission(tmp_path, capsys, no_fit, data, monkeypatch):
    from sklearn_certify.cli import _outputs

    def refuse(**kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_outputs.tempfile, "TemporaryFile", refuse)
    line = user_error(_certify(data, tmp_path / "out"), capsys)
    assert "is not writable (Permission denied)" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_read_only_out_folder(tmp_path, capsys, no_fit, data):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o500)
    try:
        assert "is not writable" in user_error(_certify(data, out), capsys)
    finally:
        out.chmod(0o700)


# ---------------------------------------------------------------- traceable rows, summary
def test_random_split_rows_are_data_rows_of_the_input(tmp_path, capsys, data):
    out = tmp_path / "out"
    code, printed, _ = run_cli(_certify(data, out, "--test-size", "0.3", "--seed", "3"), capsys)
    assert code == 0
    rows, row = certificates(out)
    table = np.loadtxt(data, delimiter=",", skiprows=1)
    assert len(rows) == 48 and np.all(np.diff(row) > 0)
    assert [int(r["label"]) for r in rows] == table[row, -1].astype(int).tolist()
    assert "stratified random 48 of the 160 rows of d.csv (--test-size 0.3, --seed 3)" in printed
    assert "'row' column of certificates.csv is the 0-based data row of d.csv" in printed
    summary = json.loads((out / "certified_accuracy.json").read_text())
    assert summary["row_column"].startswith("0-based data row of d.csv")
    assert summary["n_train"] == 112 and summary["n_test"] == 48


def test_certify_prints_a_summary(tmp_path, capsys, data):
    code, printed, _ = run_cli(_certify(data, tmp_path / "out"), capsys)
    assert code == 0
    summary = json.loads((tmp_path / "out" / "certified_accuracy.json").read_text())
    assert f"clean accuracy {summary['clean_accuracy']:.3f}" in printed
    assert "median certified radius" in printed and "(training rows inserted + deleted)" in printed
    assert "certified accuracy" in printed and "at radius 1" in printed


def test_certify_out_is_a_folder_like_demo_and_bound(tmp_path, capsys, data):
    out = tmp_path / "new" / "folder"
    assert run_cli(_certify(data, out), capsys)[0] == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "certificates.csv",
        "certificates.meta.json",
        "certified_accuracy.csv",
        "certified_accuracy.json",
        "certified_accuracy.png",
    ]
    curve = read_rows(out / "certified_accuracy.csv")
    rows, _ = certificates(out)
    correct = np.array([r["correct"] == "True" for r in rows])
    radius = np.array([int(r["radius"]) for r in rows])
    for point in curve:
        expected = np.mean(correct & (radius >= int(point["radius"])))
        assert float(point["certified_accuracy"]) == pytest.approx(expected)
    assert {r["radius_unit"] for r in rows} == {"samples"}


def test_figures_are_written_without_layout_warnings(tmp_path):
    """The plot helpers lay figures out themselves; the CLI adds no second layout engine."""
    import warnings

    from sklearn_certify.__main__ import main

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code = main(
            ["bound", "--epsilons", "0", "0.05", "--max-iter", "50", "--out", str(tmp_path / "b")]
        )
    assert code in (0, None)
    assert (tmp_path / "b" / "bound_curve.png").exists()
