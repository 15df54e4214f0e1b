"""``sklearn-certify evaluate``: the harness from the command line."""

import argparse
import json
import re

import numpy as np
import pytest

import sklearn_certify.attacks
from sklearn_certify.cli import build_parser
from sklearn_certify.datasets import load_digits
from tests._cli_helpers import (
    digits_csv,
    digits_table,
    forbid_training,
    read_rows,
    run_cli,
    user_error,
    write_csv,
)

FAST = ["--n-partitions", "10", "--base", "tree"]


@pytest.fixture
def no_fit(monkeypatch):
    """Fail the test if anything is trained: errors must come before the fit."""
    forbid_training(monkeypatch)


def test_backdoor_on_the_bundled_digits(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["evaluate", "--attack", "backdoor", "--budgets", "0", "5", "100", *FAST, "--out", out]
    code, stdout, err = run_cli(argv, capsys)
    assert code == 0, err
    rows = read_rows(out / "attack_table.csv")
    assert [int(r["budget"]) for r in rows] == [0, 5, 100]
    assert {r["violation"] for r in rows} == {"False"} and rows[0]["radius_unit"] == "samples"
    payload = json.loads((out / "attack_table.json").read_text())
    assert payload["attack"] == "backdoor" and payload["attack_params"]["target_label"] == 0
    assert payload["rows"][2]["certified_changed"] is None  # NaN: nothing certified at 100
    assert (out / "attack_vs_certificate.png").stat().st_size > 0
    assert "cert_changed" in stdout and "wrote" in stdout


def test_partition_insertion_and_label_flips_on_a_csv(tmp_path, capsys):
    data = digits_csv(tmp_path / "d.csv", n=300)
    argv = [
        "evaluate",
        "--data",
        data,
        "--attack",
        "partition_insertion",
        "--budgets",
        "0",
        "3",
        "--n-partitions",
        "7",
        "--base",
        "knn",
        "--n-test",
        "3",
        "--out",
        tmp_path / "a",
    ]
    code, stdout, err = run_cli(argv, capsys)
    assert code == 0, err
    assert "3 test rows" in stdout and "held out at random" in stdout
    argv = [
        "evaluate",
        "--data",
        data,
        "--attack",
        "label_flip",
        "--strategy",
        "nearest",
        "--threat-model",
        "label_flip",
        "--budgets",
        "0",
        "2",
        "--n-partitions",
        "7",
        "--base",
        "tree",
        "--n-test",
        "3",
        "--out",
        tmp_path / "b",
    ]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    rows = read_rows(tmp_path / "b" / "attack_table.csv")
    assert [r["radius_unit"] for r in rows] == ["label_flips"] * 2


def test_rab_and_cohen_from_the_command_line(tmp_path, capsys):
    rab = ["--method", "rab", "--n-estimators", "6", "--alpha", "0.05", "--digits", "1", "7"]
    argv = ["evaluate", "--attack", "backdoor", "--target-label", "1", "--budgets", "0", "3"]
    code, stdout, err = run_cli([*argv, *rab, "--strength", "0.1", "--out", tmp_path / "r"], capsys)
    assert code == 0, err
    rows = read_rows(tmp_path / "r" / "attack_table.csv")
    assert [r["radius_unit"] for r in rows] == ["l2", "l2"] and "tolerated" in stdout
    assert float(rows[0]["cost"]) > 0  # the trigger on the test digit counts
    payload = json.loads((tmp_path / "r" / "attack_table.json").read_text())
    assert payload["method"] == "rab" and payload["test_noise"] is True
    assert payload["attack_params"]["variant"] == "clean_label"
    assert payload["attack_params"]["mode"] == "modify"
    cohen = ["--method", "cohen", "--n-samples", "100", "--n-test", "30", "--budgets", "0"]
    code, _, err = run_cli(
        ["evaluate", "--attack", "backdoor", *cohen, "--out", tmp_path / "c"], capsys
    )
    assert code == 0, err
    (row,) = read_rows(tmp_path / "c" / "attack_table.csv")
    assert row["radius_unit"] == "input_l2" and float(row["cost"]) == pytest.approx(1.0, abs=0.01)


def test_violations_exit_with_status_one_on_request(tmp_path, capsys, monkeypatch):
    def fake(*args, **kwargs):
        return [
            dict(
                attack="BackdoorAttack",
                estimator="DPAClassifier",
                budget=3,
                budget_unit="rows",
                cost=3,
                radius_unit="samples",
                n_points=1,
                clean_accuracy=1.0,
                attack_success=1.0,
                certified_accuracy=1.0,
                n_certified=1,
                certified_changed=1.0,
                n_certified_changed=1,
                failure_bound=0.0,
                n_tolerated=0,
                changed_tolerance=0.0,
                uncertified_changed=float("nan"),
                violation=True,
            )
        ]

    monkeypatch.setattr(sklearn_certify.attacks, "evaluate_under_attack", fake)
    argv = ["evaluate", "--attack", "backdoor", "--budgets", "3", "--out", tmp_path / "o"]
    code, _, err = run_cli([*argv, "--on-violation", "error"], capsys)
    assert code == 1 and "changed certified predictions at budget(s) [3]" in err
    assert run_cli(argv, capsys)[0] == 0


CASES = [
    (["--attack", "backdoor", "--budgets", "-1"], "argument --budgets: expected an integer >= 0"),
    (["--attack", "backdoor"], "the following arguments are required: --budgets"),
    (["--attack", "poison", "--budgets", "1"], "argument --attack: invalid choice"),
    (
        ["--attack", "label_flip", "--budgets", "1", "--trigger", "blend"],
        "--trigger applies to --attack backdoor only",
    ),
    (
        ["--attack", "backdoor", "--budgets", "1", "--strategy", "nearest"],
        "--strategy applies to --attack label_flip only",
    ),
    (
        ["--attack", "partition_insertion", "--budgets", "1", "--threat-model", "label_flip"],
        "PartitionInsertionAttack inserts rows, which the label-flip threat model",
    ),
    (["--attack", "sphere_slab", "--budgets", "1"], "needs two classes"),
    (
        ["--attack", "sphere_slab", "--budgets", "1", "--digits", "1", "7", "--target-label", "1"],
        "--target-label does not apply",
    ),
    (
        ["--attack", "backdoor", "--budgets", "1", "--target-label", "12"],
        "--target-label 12 is not a training label",
    ),
    (
        ["--attack", "backdoor", "--budgets", "1", "--digits", "1", "7"],
        "targets label 0, which the training rows do not have",
    ),
    (["--attack", "backdoor", "--budgets", "5000"], "budget=5000 is more than the"),
    (
        ["--attack", "label_flip", "--strategy", "nearest", "--budgets", "5000"],
        "budget=5000 is more than the 1216 training rows not labelled 8 (the rarest label)",
    ),
    (
        ["--attack", "feature_collision", "--budgets", "0", "100000"],
        "--budgets 0 100000: Against evaluated test point 0: budget=100000 is more than the "
        "137 training rows labelled base_label=3",
    ),
    (
        ["--method", "rab", "--attack", "feature_collision", "--budgets", "0", "3", "100000"],
        "budget=100000 is more than the",
    ),
    (
        ["--attack", "backdoor", "--budgets", "1", "--label-column", "y"],
        "--label-column: only for .csv files, not --data digits",
    ),
    (
        ["--attack", "backdoor", "--budgets", "0", "--digits", "3", "--target-label", "3"],
        "every training row has label 3; an attack and a certificate need at least two "
        "labels: keep at least two --digits",
    ),
    (["--attack", "backdoor", "--budgets", "1", "--test-size", "0.5"], "fixed test split"),
    (["--attack", "backdoor", "--budgets", "1", "--digits", "12"], "--digits: digits must be"),
    (
        ["--attack", "backdoor", "--budgets", "1", "--n-partitions", "5000"],
        "--method dpa: --n-partitions=5000 is larger than the number of training samples",
    ),
    (
        [
            "--attack",
            "label_flip",
            "--budgets",
            "1",
            "--threat-model",
            "label_flip",
            "--spread",
            "2",
        ],
        "needs --spread=1, got --spread=2",
    ),
    (
        ["--attack", "backdoor", "--budgets", "1", "--target-label", "2", "--n-test", "1"],
        "--n-test 1: the first 1 test rows all have label 2, the target label (--target-label), "
        "and --attack backdoor is evaluated on rows of other labels; raise --n-test.",
    ),
    (["--attack", "backdoor", "--budgets", "1", "--strength", "0"], "argument --strength"),
    (
        ["--attack", "backdoor", "--budgets", "1", "--on-violation", "stop"],
        "argument --on-violation",
    ),
    (
        ["--method", "rab", "--attack", "label_flip", "--budgets", "1"],
        "LabelFlipAttack changes labels, which a certificate counting l2 does not measure",
    ),
    (
        ["--method", "rab", "--attack", "backdoor", "--budgets", "1", "--variant", "dirty_label"],
        "BackdoorAttack changes labels, which a certificate counting l2 does not measure",
    ),
    (
        ["--method", "rab", "--attack", "backdoor", "--budgets", "1", "--poison-mode", "insert"],
        "BackdoorAttack inserts or deletes rows, which a certificate counting l2 does not",
    ),
    (
        ["--method", "rab", "--attack", "backdoor", "--budgets", "1", "--n-estimators", "1"],
        "--method rab: The '--n-estimators' parameter of RABClassifier must be an int in the "
        "range [2, inf)",
    ),
    (
        ["--method", "rab", "--attack", "backdoor", "--budgets", "1", "--n-partitions", "5"],
        "--n-partitions applies to --method dpa only",
    ),
    (
        ["--attack", "backdoor", "--budgets", "1", "--sigma", "0.5"],
        "--sigma applies to --method rab, denoised or cohen only",
    ),
    (
        ["--method", "cohen", "--attack", "backdoor", "--budgets", "1", "--no-test-noise"],
        "--no-test-noise applies to --method rab only",
    ),
    (
        ["--method", "cohen", "--attack", "backdoor", "--budgets", "0", "2"],
        "budgets: 2 rows poisons the training set, but RandomizedSmoothingClassifier's",
    ),
    (
        ["--method", "cohen", "--attack", "feature_collision", "--budgets", "0", "1"],
        "covers a perturbation of the test input only",
    ),
    (["--method", "rab", "--attack", "backdoor", "--budgets", "1", "--alpha", "1"], "--alpha"),
    (
        ["--attack", "backdoor", "--budgets", "1", "--eps-linf", "0.1"],
        "--eps-linf applies to --attack feature_collision only",
    ),
]


@pytest.mark.parametrize(("extra", "expected"), CASES)
def test_bad_evaluate_options(tmp_path, capsys, no_fit, extra, expected):
    assert expected in user_error(["evaluate", "--out", tmp_path / "out", *extra], capsys)
    assert not (tmp_path / "out").exists()  # refused before any work


def test_one_label_blames_the_labels_not_n_test(tmp_path, capsys, no_fit):
    """One-class training rows: the message names the labels and the fix, for every attack."""
    data = digits_csv(tmp_path / "d.csv", n=60)
    rows = read_rows(data)
    write_csv(tmp_path / "one.csv", list(rows[0]), [[*list(r.values())[:-1], 0] for r in rows])
    for attack in ("backdoor", "feature_collision", "label_flip", "partition_insertion"):
        argv = ["evaluate", "--data", tmp_path / "one.csv", "--attack", attack, "--budgets", "0"]
        line = user_error([*argv, "--out", tmp_path / "o"], capsys)
        assert "every training row has label 0" in line and "add rows of another label" in line
        assert "--n-test" not in line


def test_test_rows_of_the_target_label_alone_name_the_fix(tmp_path, capsys, no_fit):
    X, y = load_digits(digits=(0, 1))
    npz = tmp_path / "d.npz"
    np.savez(npz, X=X[:100], y=y[:100], X_test=X[100:][y[100:] == 0], y_test=y[100:][y[100:] == 0])
    argv = ["evaluate", "--data", npz, "--attack", "backdoor", "--budgets", "0"]
    line = user_error([*argv, "--out", tmp_path / "o"], capsys)
    assert "every test row has label 0: choose another --target-label" in line


def _options(command: str) -> set:
    parser = build_parser()
    (commands,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {o for action in commands.choices[command]._actions for o in action.option_strings}


@pytest.mark.parametrize("command", ["bound", "certify", "evaluate"])
def test_every_option_a_file_message_suggests_exists(tmp_path, capsys, command):
    """A file without the expected label column or arrays: each --option named is the command's."""
    X, y, names = digits_table(n=40)
    csv_file = write_csv(tmp_path / "d.csv", [*names, "digit"], [[*x, 1] for x in X])
    np.savez(tmp_path / "d.npz", A=X, b=y)
    extra = {"evaluate": ["--attack", "backdoor", "--budgets", "0"]}.get(command, [])
    for data in (csv_file, tmp_path / "d.npz"):
        line = user_error([command, "--data", data, *extra, "--out", tmp_path / "o"], capsys)
        suggested = set(re.findall(r"--[a-z][a-z-]*", line))
        assert suggested and suggested <= _options(command), (command, line)


def test_the_label_column_the_message_suggests_is_an_option(tmp_path, capsys):
    """evaluate suggests --label-column for a .csv without 'label'; following it works."""
    X, y, names = digits_table(n=120)
    rows = [[*x, t] for x, t in zip(X, y, strict=True)]
    data = write_csv(tmp_path / "d.csv", [*names, "digit"], rows)
    argv = ["evaluate", "--data", data, "--attack", "backdoor", "--budgets", "0", "2", *FAST]
    line = user_error([*argv, "--out", tmp_path / "a"], capsys)
    assert "Name the label column with --label-column NAME" in line
    code, _, err = run_cli([*argv, "--label-column", "digit", "--out", tmp_path / "b"], capsys)
    assert code == 0, err
    assert len(read_rows(tmp_path / "b" / "attack_table.csv")) == 2
    np.savez(tmp_path / "d.npz", X=X, y=y)
    npz = ["evaluate", "--data", tmp_path / "d.npz", "--attack", "backdoor", "--budgets", "0"]
    line = user_error([*npz, "--label-column", "digit", "--out", tmp_path / "c"], capsys)
    assert "--label-column: only for .csv files" in line


def test_bad_evaluate_files(tmp_path, capsys, no_fit):
    base = ["evaluate", "--attack", "backdoor", "--budgets", "1", "--out", tmp_path / "o"]
    data = digits_csv(tmp_path / "d.csv", n=40)
    assert "--digits applies to --data digits only" in user_error(
        [*base, "--data", data, "--digits", "1"], capsys
    )
    assert "no such file" in user_error([*base, "--data", tmp_path / "none.csv"], capsys)
    npz = tmp_path / "d.npz"
    np.savez(npz, X=np.eye(8), y=np.arange(8) % 2, X_test=np.eye(8))
    assert "X_test has no labels" in user_error([*base, "--data", npz], capsys)
    np.savez(npz, X=np.eye(8), y=np.arange(8) % 2, X_test=np.eye(8), y_test=np.arange(8) % 2)
    assert "holds its own test rows" in user_error(
        [*base, "--data", npz, "--test-size", "0.5"], capsys
    )
    assert "looks like a file name" in user_error(
        ["evaluate", "--attack", "backdoor", "--budgets", "1", "--out", tmp_path / "t.csv"],
        capsys,
    )
