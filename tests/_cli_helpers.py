"""Running the command line in-process and writing small input files, for the CLI tests."""

import csv

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier
from skorch import NeuralNet

from sklearn_certify.cli import main
from sklearn_certify.datasets import load_digits


def run_cli(argv, capsys):
    """Run ``main(argv)``; return (exit status, stdout, stderr), argparse exits included."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def user_error(argv, capsys) -> str:
    """Run ``argv``, require exit status 2 and one stderr line without traceback; return it."""
    code, _, err = run_cli(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert ": error: " in lines[0]
    return lines[0]


def forbid_training(monkeypatch):
    """Fail the test if a base estimator the CLI builds is trained: errors come first.

    The certified estimators' own ``fit`` runs their checks (the CLI calls it with a
    stand-in base estimator before any training), so the bases are what must not train.
    """

    def fit(self, X, y=None, **kwargs):
        raise AssertionError("trained before reporting the error")

    for base in (Pipeline, DecisionTreeClassifier, NeuralNet):
        monkeypatch.setattr(base, "fit", fit)


def write_csv(path, header, rows):
    """Write ``header`` and ``rows`` with the csv module; return ``path``."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def digits_table(n=240, start=0):
    """``n`` bundled digits from ``start``: features, integer labels and pixel names."""
    X, y = load_digits()
    return X[start : start + n], y[start : start + n], [f"p{j}" for j in range(X.shape[1])]


def digits_csv(path, n=240, start=0, *, label="label", label_first=False):
    """A digits CSV with a header; the label column named ``label``, first or last."""
    X, y, names = digits_table(n, start)
    rows = [[*x.tolist(), int(t)] for x, t in zip(X, y, strict=True)]
    header = [*names, label]
    if label_first:
        header = header[-1:] + header[:-1]
        rows = [r[-1:] + r[:-1] for r in rows]
    return write_csv(path, header, rows)


def read_rows(path):
    """A CSV file's rows as dicts."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


#: Fast certify settings: trees on few partitions.
FAST = ["--n-partitions", "5", "--base", "tree"]


def certificates(out):
    """``certificates.csv`` of an ``--out`` folder as dicts, and the row numbers."""
    rows = read_rows(out / "certificates.csv")
    return rows, np.array([int(r["row"]) for r in rows])
