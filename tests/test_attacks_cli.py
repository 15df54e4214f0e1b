"""``sklearn-certify evaluate``: the harness from the command line."""

import json

import numpy as np
import pytest

import sklearn_certify.attacks
from sklearn_certify import DPAClassifier, RABClassifier, RandomizedSmoothingClassifier
from tests._cli_helpers import digits_csv, read_rows, run_cli, user_error

FAST = ["--n-partitions", "10", "--base", "tree"]


@pytest.fixture
def no_fit(monkeypatch):
    """Fail the test if anything is trained: errors must come before the fit."""

    def fit(self, X, y):
        raise AssertionError("trained before reporting the error")

    for method in (DPAClassifier, RABClassifier, RandomizedSmoothingClassifier):
        monkeypatch.setattr(method, "fit", fit)


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
        "which --threat-model label_flip does not certify",
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
    (["--attack", "label_flip", "--strategy", "nearest", "--budgets", "5000"], "use budgets up to"),
    (["--attack", "backdoor", "--budgets", "1", "--test-size", "0.5"], "fixed test split"),
    (["--attack", "backdoor", "--budgets", "1", "--digits", "12"], "--digits: digits must be"),
    (
        ["--attack", "backdoor", "--budgets", "1", "--n-partitions", "5000"],
        "--n-partitions 5000 is more than the 1347 training rows",
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
        "--spread 2 needs --threat-model general",
    ),
    (
        ["--attack", "backdoor", "--budgets", "1", "--target-label", "2", "--n-test", "1"],
        "none of these test rows",
    ),
    (["--attack", "backdoor", "--budgets", "1", "--strength", "0"], "argument --strength"),
    (
        ["--attack", "backdoor", "--budgets", "1", "--on-violation", "stop"],
        "argument --on-violation",
    ),
    (
        ["--method", "rab", "--attack", "label_flip", "--budgets", "1"],
        "--attack label_flip with --method rab: RAB's radius counts changes of the training",
    ),
    (
        ["--method", "rab", "--attack", "backdoor", "--budgets", "1", "--variant", "dirty_label"],
        "--variant dirty_label with --method rab",
    ),
    (
        ["--method", "rab", "--attack", "backdoor", "--budgets", "1", "--poison-mode", "insert"],
        "--poison-mode insert with --method rab",
    ),
    (
        ["--method", "rab", "--attack", "backdoor", "--budgets", "1", "--n-estimators", "1"],
        "RAB needs at least 2 members",
    ),
    (
        ["--method", "rab", "--attack", "backdoor", "--budgets", "1", "--n-partitions", "5"],
        "--n-partitions applies to --method dpa only",
    ),
    (
        ["--attack", "backdoor", "--budgets", "1", "--sigma", "0.5"],
        "--sigma applies to --method rab and --method cohen only",
    ),
    (
        ["--method", "cohen", "--attack", "backdoor", "--budgets", "1", "--no-test-noise"],
        "--no-test-noise applies to --method rab only",
    ),
    (
        ["--method", "cohen", "--attack", "backdoor", "--budgets", "0", "2"],
        "--method cohen trusts the training set",
    ),
    (
        ["--method", "cohen", "--attack", "feature_collision", "--budgets", "0"],
        "test-time smoothing trusts the training set",
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
