"""The ``demo`` and ``certify`` sub-commands, run for real."""

import csv
import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from sklearn_certify.cli import build_parser, main
from sklearn_certify.datasets import load_digits


@pytest.fixture(autouse=True)
def _one_thread():
    """Torch/OpenMP threads oversubscribe the cores under ``pytest -n 2``; one per worker."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(previous)


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _check_demo_outputs(out, n_test):
    curve = _read_csv(out / "certified_accuracy.csv")
    accuracy = [float(r["certified_accuracy"]) for r in curve]
    assert [int(r["radius"]) for r in curve] == list(range(len(curve)))
    assert all(a >= b for a, b in itertools.pairwise(accuracy))
    summary = json.loads((out / "certified_accuracy.json").read_text())
    assert summary["curve"]["certified_accuracy"] == accuracy
    assert summary["clean_accuracy"] == pytest.approx(accuracy[0])
    certs = _read_csv(out / "certificates.csv")
    assert len(certs) == n_test == summary["n_test"]
    correct = np.array([c["prediction"] == c["label"] for c in certs])
    radius = np.array([int(c["radius"]) for c in certs])
    for r, a in enumerate(accuracy):  # the table is recomputable from the certificates
        assert np.mean(correct & (radius >= r)) == pytest.approx(a)
    assert (out / "certified_accuracy.png").read_bytes()[:4] == b"\x89PNG"
    return summary


def test_demo_quick(tmp_path, capsys):
    assert main(["demo", "--quick", "--verbose", "--out", str(tmp_path)]) == 0
    printed, err = capsys.readouterr()
    assert "radius  certified_accuracy" in printed
    assert "fitting members" in err  # --verbose: the engine's progress bar over members
    summary = _check_demo_outputs(tmp_path, 100)
    assert summary["n_partitions"] == 5 and summary["clean_accuracy"] > 0.5


def test_demo_quick_finite_aggregation_runoff(tmp_path):
    args = ["demo", "--quick", "--spread", "2", "--election", "runoff", "--out", str(tmp_path)]
    assert main(args) == 0
    summary = _check_demo_outputs(tmp_path, 100)
    assert summary["method"] == "finite_aggregation" and summary["election"] == "runoff"


def test_demo_default_run(tmp_path):
    """The real default demo (30 CNN members, 30 epochs) as users run it."""
    result = subprocess.run(
        [sys.executable, "-m", "sklearn_certify", "demo", "--out", str(tmp_path)],
        env=dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert "clean accuracy" in result.stdout
    summary = _check_demo_outputs(tmp_path, 450)
    assert summary["n_partitions"] == 30
    assert summary["clean_accuracy"] > 0.85
    assert summary["median_certified_radius"] >= 5


def test_certify_npz_with_test_arrays(tmp_path, capsys):
    X, y = load_digits(split="train")
    X_test, y_test = load_digits(split="test")
    data = tmp_path / "digits.npz"
    np.savez(data, X=X, y=y, X_test=X_test[:60], y_test=y_test[:60])
    out = tmp_path / "certs"
    code = main(
        [
            "certify",
            "--method",
            "dpa",
            "--data",
            str(data),
            "--n-partitions",
            "11",
            "--base",
            "tree",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    rows = _read_csv(out / "certificates.csv")
    assert len(rows) == 60 and [int(r["row"]) for r in rows] == list(range(60))
    assert {"row", "prediction", "radius", "abstain", "label", "correct", "votes_0"} <= set(rows[0])
    radius = np.array([int(r["radius"]) for r in rows])
    votes = np.array([[int(r[f"votes_{c}"]) for c in range(10)] for r in rows])
    assert np.all(votes.sum(axis=1) == 11) and np.all(radius <= 5)
    printed = capsys.readouterr().out
    assert "all 60 rows of X_test of digits.npz" in printed
    assert "index into array 'X_test' of digits.npz" in printed


def test_certify_csv_with_string_labels_and_label_column(tmp_path):
    X, y = load_digits(digits=(1, 7))
    names = np.where(y == 1, "one", "seven")
    data = tmp_path / "ones_sevens.csv"
    with data.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["digit", *[f"p{j}" for j in range(64)]])
        for label, row in zip(names, X, strict=True):
            writer.writerow([label, *row.tolist()])
    out = tmp_path / "certs"
    args = [
        "certify",
        "--data",
        str(data),
        "--label-column",
        "digit",
        "--n-partitions",
        "9",
        "--threat-model",
        "label_flip",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    rows = _read_csv(out / "certificates.csv")
    assert len(rows) == int(np.ceil(0.25 * len(y)))
    assert {r["prediction"] for r in rows} <= {"one", "seven"}
    assert {"votes_one", "votes_seven", "radius_unit"} <= set(rows[0])
    assert {r["radius_unit"] for r in rows} == {"label_flips"}
    accuracy = np.mean([r["correct"] == "True" for r in rows])
    assert accuracy > 0.9


def test_help_lists_commands():
    help_text = build_parser().format_help()
    assert "demo" in help_text and "certify" in help_text
