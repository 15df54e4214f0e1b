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

from sklearn_certify import Certificate
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


FAMILY_KEYS = ("dpa", "rab", "denoised", "cohen")


def _check_demo_outputs(out, keys=FAMILY_KEYS):
    """Every output of the demo, cross-checked; return the JSON summary."""
    summary = json.loads((out / "certified_accuracy.json").read_text())
    assert list(summary["families"]) == list(keys)
    table = _read_csv(out / "families.csv")
    curves = _read_csv(out / "certified_accuracy.csv")
    for key in keys:
        family = summary["families"][key]
        exact = key == "dpa"
        # Each row says what its radius counts and whether it holds exactly or w.p. 1 - alpha.
        assert family["unit"] == {"dpa": "samples", "cohen": "input_l2"}.get(key, "l2")
        assert (family["holds"] == "exactly") == exact
        assert (family["alpha"] is None) == exact
        assert ("test-input" in family["radius_counts"]) == (key == "cohen")
        certs = _read_csv(out / f"certificates_{key}.csv")
        assert len(certs) == family["n_test"]
        saved = Certificate.load(out / f"certificates_{key}.csv")  # with its .meta.json file
        assert len(saved) == family["n_test"] and saved.unit == family["unit"]
        assert saved.metadata["estimator"] == family["estimator"]
        assert saved.metadata["family"] == key and saved.metadata["test_digest"] is not None
        assert [int(c["row"]) for c in certs] == list(range(len(certs)))
        correct = np.array([c["correct"] == "True" and c["abstain"] == "False" for c in certs])
        radius = np.array([float(c["radius"]) for c in certs])
        # The curve and the table are recomputable from the certificates.
        curve = [r for r in curves if r["family"] == key]
        assert [float(r["radius"]) for r in curve] == family["curve"]["radius"]
        accuracy = [float(r["certified_accuracy"]) for r in curve]
        assert all(a >= b for a, b in itertools.pairwise(accuracy))
        for r, a in zip(family["curve"]["radius"], accuracy, strict=True):
            assert np.mean(correct & (radius >= r)) == pytest.approx(a)
        rows = [r for r in table if r["family"] == key]
        assert {(r["unit"], r["holds"]) for r in rows} == {(family["unit"], family["holds"])}
        assert float(rows[0]["radius"]) == 0 and family["family"].startswith(rows[0]["name"])
        for row in rows:
            expected = np.mean(correct & (radius >= float(row["radius"])))
            assert float(row["certified_accuracy"]) == pytest.approx(expected, abs=1e-4)
    assert (out / "certified_accuracy.png").read_bytes()[:4] == b"\x89PNG"
    return summary


def test_demo_quick_shows_every_family(tmp_path, capsys):
    assert main(["demo", "--quick", "--verbose", "--out", str(tmp_path)]) == 0
    printed, err = capsys.readouterr()
    assert "radius counts" in printed and "certified accuracy" in printed
    for words in ("exactly", "w.p. >= 0.999", "DPA", "RAB", "denoised", "test-time"):
        assert words in printed
    assert "certifying families" in err  # the demo's own progress bar
    assert "fitting members" in err  # --verbose: the engine's progress bar over members
    summary = _check_demo_outputs(tmp_path)
    assert summary["settings"]["n_partitions"] == 5
    assert summary["families"]["denoised"]["row_column"].startswith(
        "index into load_digits_for_denoising"
    )
    for family in summary["families"].values():
        assert family["n_test"] == 100
        assert family["curve"]["certified_accuracy"][0] > 0.3


def test_demo_figure_has_a_panel_per_family_with_its_own_unit(tmp_path, monkeypatch):
    import matplotlib.figure

    saved = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: saved.append(fig))
    argv = ["demo", "--quick", "--families", "dpa", "cohen", "--epochs", "2", "--out", tmp_path]
    assert main([str(a) for a in argv]) == 0
    (fig,) = saved
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_xlabel() for ax in axes] == [
        "radius: training rows inserted + deleted",
        "radius: l2 norm of the test-input change",
    ]
    assert "holds exactly" in axes[0].get_title()
    assert "holds with probability >= 1 - alpha = 0.999" in axes[1].get_title()
    assert "own unit" in fig.get_suptitle()


def test_demo_quick_finite_aggregation_runoff(tmp_path):
    args = ["demo", "--quick", "--families", "dpa", "--spread", "2", "--election", "runoff"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    summary = _check_demo_outputs(tmp_path, ("dpa",))
    assert summary["families"]["dpa"]["family"] == "Finite Aggregation d=2 (k=5 CNNs, run-off)"
    assert not (tmp_path / "certificates_rab.csv").exists()


@pytest.mark.slow
def test_demo_default_run(tmp_path):
    """The real default demo (every family at full size) as users run it."""
    result = subprocess.run(
        [sys.executable, "-m", "sklearn_certify", "demo", "--out", str(tmp_path)],
        env=dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"),
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    assert "certified accuracy" in result.stdout
    families = _check_demo_outputs(tmp_path)["families"]
    assert families["dpa"]["n_test"] == 450 and families["denoised"]["n_test"] == 270
    assert families["dpa"]["median_certified_radius"] >= 5
    for family in families.values():
        assert family["curve"]["certified_accuracy"][0] > 0.8
    for key in ("rab", "denoised", "cohen"):
        assert families[key]["median_certified_radius"] >= 0.2


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
