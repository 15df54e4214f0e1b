"""Reading --data: the label column is found by name, and every malformed input is one clear line.

Each error must be exit status 2 with one line on stderr naming the option, the
place in the file and the fix, before any training.
"""

import numpy as np
import pandas
import pytest

from tests._cli_helpers import (
    FAST,
    certificates,
    digits_csv,
    forbid_training,
    run_cli,
    user_error,
    write_csv,
)


@pytest.fixture
def no_fit(monkeypatch):
    """Fail the test if anything is trained: errors must come before the fit."""
    forbid_training(monkeypatch)


def _certify(data, out, *extra):
    return ["certify", "--data", data, "--out", out, *FAST, *extra]


# ---------------------------------------------------------------- the label column (by name)
def test_csv_without_label_column_is_refused(tmp_path, capsys, no_fit):
    data = write_csv(tmp_path / "d.csv", ["a", "b", "c"], [[1, 2, 3], [4, 5, 6]])
    line = user_error(_certify(data, tmp_path / "out"), capsys)
    assert "no column named 'label'" in line and "--label-column NAME" in line
    assert "'a', 'b', 'c'" in line


def test_label_column_is_a_name_not_a_position(tmp_path, capsys, no_fit):
    data = digits_csv(tmp_path / "d.csv", n=30)
    line = user_error(_certify(data, tmp_path / "out", "--label-column", "99"), capsys)
    assert "no column named '99'" in line and "not a position" in line
    line = user_error(_certify(data, tmp_path / "out", "--label-column", "0"), capsys)
    assert "no column named '0'" in line


def test_label_column_is_found_by_name_anywhere(tmp_path, capsys):
    first = digits_csv(tmp_path / "first.csv", label="digit", label_first=True)
    last = digits_csv(tmp_path / "last.csv", label="digit")
    for data in (first, last):
        out = tmp_path / data.stem
        code, _, err = run_cli(_certify(data, out, "--label-column", "digit"), capsys)
        assert code == 0, err
        rows, _ = certificates(out)
        assert np.mean([r["correct"] == "True" for r in rows]) > 0.5
    assert certificates(tmp_path / "first")[0] == certificates(tmp_path / "last")[0]


# ---------------------------------------------------------------- malformed CSV files
CSV_CASES = {
    "empty": ("", "is empty"),
    "header only": ("a,b,label\n", "no data rows"),
    "ragged": ("a,b,label\n1,2,0\n3,0\n", "line 3: 2 values but the header names 3 columns"),
    "non-numeric": (
        "a,b,label\n1,2,0\n3,x,1\n5,,1\n",
        "2 non-numeric feature cell(s), the first at line 3, column 'b': 'x'",
    ),
    "nan": ("a,b,label\n1,nan,0\n3,4,1\n", "NaN or infinite feature cell(s), the first at line 2"),
    "inf": ("a,b,label\n1,2,0\n3,-inf,1\n", "column 'b': '-inf'"),
    "empty label": ("a,b,label\n1,2,0\n3,4,\n", "line 3: empty label"),
    "repeated name": ("a,a,label\n1,2,0\n", "repeats the column name(s) 'a'"),
    "pandas index": (",a,label\n0,1,0\n", "header column 1 has no name"),
    "no header": ("1,2,0\n3,4,1\n", "looks like data"),
    "blank first line": ("\na,label\n1,0\n", "line 1 is blank"),
    "only a label": ("label\n0\n1\n", "no feature columns"),
}


@pytest.mark.parametrize("name", sorted(CSV_CASES))
def test_malformed_csv_is_one_clear_line(tmp_path, capsys, no_fit, name):
    text, expected = CSV_CASES[name]
    data = tmp_path / "d.csv"
    data.write_text(text)
    line = user_error(_certify(data, tmp_path / "out"), capsys)
    assert f"--data {data}" in line and expected in line


def test_non_utf8_csv(tmp_path, capsys, no_fit):
    data = tmp_path / "d.csv"
    data.write_bytes(b"a,label\n\xff\xfe,0\n")
    assert "not UTF-8" in user_error(_certify(data, tmp_path / "out"), capsys)


def test_blank_lines_are_skipped_like_pandas(tmp_path, capsys):
    data = digits_csv(tmp_path / "d.csv", n=120)
    lines = data.read_text().splitlines()
    data.write_text("\n".join([*lines[:5], "", *lines[5:], ""]) + "\n")
    out = tmp_path / "out"
    assert run_cli(_certify(data, out), capsys)[0] == 0
    rows, row = certificates(out)
    frame = pandas.read_csv(data)
    assert [int(r["label"]) for r in rows] == frame["label"].iloc[row].tolist()


# ---------------------------------------------------------------- files that are not inputs
def test_missing_folder_and_unknown_files(tmp_path, capsys, no_fit):
    out = tmp_path / "out"
    assert "no such file" in user_error(_certify(tmp_path / "missing.csv", out), capsys)
    assert "is a folder" in user_error(_certify(tmp_path, out), capsys)
    other = tmp_path / "d.txt"
    other.write_text("a,label\n1,0\n")
    assert "expected a .csv or .npz file" in user_error(_certify(other, out), capsys)
    line = user_error(["bound", "--data", tmp_path / "missing.npz", "--out", out], capsys)
    assert "no such file" in line and "digits-1v7" in line
    assert "is a folder" in user_error(["bound", "--data", tmp_path, "--out", out], capsys)


# ---------------------------------------------------------------- malformed .npz files
def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


NPZ_CASES = {
    "missing arrays": (dict(features=np.zeros((4, 2))), "no array(s) 'X', 'y'"),
    "object labels": (
        dict(X=np.zeros((2, 2)), y=np.array([1, "a"], dtype=object)),
        "Object arrays cannot be loaded",
    ),
    "image arrays": (dict(X=np.zeros((4, 2, 2)), y=np.arange(4)), "shape (4, 2, 2)"),
    "string features": (dict(X=np.array([["a"]]), y=np.array([0])), "dtype <U1"),
    "complex features": (dict(X=np.ones((2, 2)) * 1j, y=np.arange(2)), "dtype complex128"),
    "short labels": (dict(X=np.zeros((4, 2)), y=np.arange(3)), "one label per row"),
    "continuous labels": (dict(X=np.zeros((3, 2)), y=np.array([0.5, 1.5, 2.25])), "continuous"),
    "nan features": (
        dict(X=np.array([[0.0, 1.0], [np.nan, 2.0]]), y=np.arange(2)),
        "the first at X[1, 0]",
    ),
    "test labels only": (
        dict(X=np.zeros((4, 2)), y=np.arange(4), y_test=np.arange(2)),
        "no 'X_test'",
    ),
}


@pytest.mark.parametrize("name", sorted(NPZ_CASES))
def test_malformed_npz_is_one_clear_line(tmp_path, capsys, no_fit, name):
    arrays, expected = NPZ_CASES[name]
    data = _npz(tmp_path / "d.npz", **arrays)
    line = user_error(_certify(data, tmp_path / "out"), capsys)
    assert f"--data {data}" in line and expected in line


def test_npz_that_is_not_an_archive(tmp_path, capsys, no_fit):
    text = tmp_path / "d.npz"
    text.write_text("a,b\n")
    assert "not a readable .npz" in user_error(_certify(text, tmp_path / "out"), capsys)
    single = tmp_path / "single.npz"
    with open(single, "wb") as f:
        np.save(f, np.zeros(3))
    assert "single .npy array" in user_error(_certify(single, tmp_path / "out"), capsys)


def test_npz_with_boolean_features(tmp_path, capsys):
    data = _npz(tmp_path / "d.npz", X=np.eye(20, 4, dtype=bool), y=np.arange(20) % 2)
    code, _, err = run_cli(
        ["certify", "--data", data, "--out", tmp_path / "o", "--n-partitions", "2"], capsys
    )
    assert code == 0, err
