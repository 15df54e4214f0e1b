"""Test rows are matched to the training columns by name, never by position."""

import numpy as np
import pandas
import pytest
from sklearn.tree import DecisionTreeClassifier

from sklearn_certify import DPAClassifier
from tests._cli_helpers import (
    FAST,
    certificates,
    digits_table,
    read_rows,
    run_cli,
    user_error,
    write_csv,
)


def _test_csv(path, X, y, names, order, *, labels=True):
    header = [names[j] for j in order] + (["label"] if labels else [])
    rows = [[*x[order].tolist(), *([int(t)] if labels else [])] for x, t in zip(X, y, strict=True)]
    return write_csv(path, header, rows)


@pytest.fixture
def train_csv(tmp_path):
    X, y, names = digits_table(240)
    return write_csv(tmp_path / "train.csv", [*names, "label"], np.column_stack([X, y]).tolist())


def test_reordered_test_columns_are_matched_by_name(tmp_path, capsys, train_csv):
    X, y, names = digits_table(60, start=600)
    order = np.random.default_rng(0).permutation(len(names))
    same = _test_csv(tmp_path / "same.csv", X, y, names, np.arange(len(names)))
    shuffled = _test_csv(tmp_path / "shuffled.csv", X, y, names, order)
    for test in (same, shuffled):
        argv = ["certify", "--data", train_csv, "--test-data", test, "--out", tmp_path / test.stem]
        assert run_cli([*argv, *FAST], capsys)[0] == 0
    assert read_rows(tmp_path / "same" / "certificates.csv") == read_rows(
        tmp_path / "shuffled" / "certificates.csv"
    )


def test_test_rows_without_labels(tmp_path, capsys, train_csv):
    X, y, names = digits_table(20, start=600)
    test = _test_csv(tmp_path / "t.csv", X, y, names, np.arange(len(names))[::-1], labels=False)
    out = tmp_path / "out"
    out.mkdir()
    (out / "certified_accuracy.csv").write_text("radius,certified_accuracy\n0,1.0\n")  # stale
    code, printed, _ = run_cli(
        ["certify", "--data", train_csv, "--test-data", test, "--out", out, *FAST], capsys
    )
    assert code == 0 and "No labels" in printed
    rows, row = certificates(out)
    assert row.tolist() == list(range(20)) and "label" not in rows[0]
    assert sorted(p.name for p in out.iterdir()) == ["certificates.csv", "certificates.meta.json"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda h: h[1:], "lacks the feature column(s) 'p0'"),
        (lambda h: [*h, "extra"], "has column(s) 'extra' that --data lacks"),
        (lambda h: ["target" if n == "label" else n for n in h], "'target' that --data lacks"),
    ],
)
def test_mismatched_test_columns_are_refused(tmp_path, capsys, train_csv, change, expected):
    names = digits_table(5)[2]
    header = change([*names, "label"])
    rows = [list(range(len(header)))] * 3
    test = write_csv(tmp_path / "t.csv", header, rows)
    argv = ["certify", "--data", train_csv, "--test-data", test, "--out", tmp_path / "o", *FAST]
    line = user_error(argv, capsys)
    assert expected in line and "matched by header name" in line


def test_test_data_of_another_format_is_refused(tmp_path, capsys, train_csv):
    test = tmp_path / "t.npz"
    np.savez(test, X=np.zeros((2, 64)))
    argv = ["certify", "--data", train_csv, "--test-data", test, "--out", tmp_path / "o"]
    assert "must be a .csv file like --data" in user_error(argv, capsys)


def test_npz_test_data_with_other_width_is_refused(tmp_path, capsys):
    X, y, _ = digits_table(40)
    np.savez(tmp_path / "train.npz", X=X, y=y)
    np.savez(tmp_path / "test.npz", X=X[:, :10])
    argv = ["certify", "--data", tmp_path / "train.npz", "--test-data", tmp_path / "test.npz"]
    line = user_error([*argv, "--out", tmp_path / "o"], capsys)
    assert "10 feature columns but X of train.npz has 64" in line


def test_dataframe_with_reordered_columns_is_refused_by_the_estimator():
    X, y, names = digits_table(120)
    frame = pandas.DataFrame(X, columns=names)
    clf = DPAClassifier(DecisionTreeClassifier(), n_partitions=3, random_state=0).fit(frame, y)
    assert clf.predict(frame).shape == (120,)
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(frame[names[::-1]])
    with pytest.raises(ValueError, match="feature names"):
        clf.certify(frame[names[::-1]])
