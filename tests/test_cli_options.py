"""Options: every bad value is one clear line before any work; every option is documented."""

import argparse
import configparser
import importlib
import re
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

import sklearn_certify
from sklearn_certify.cli import build_parser, main, package_version
from tests._cli_helpers import FAST, digits_csv, forbid_training, run_cli, user_error

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_fit(monkeypatch):
    """Fail the test if anything is trained: errors must come before the fit."""
    forbid_training(monkeypatch)


@pytest.fixture
def data(tmp_path):
    return digits_csv(tmp_path / "d.csv", n=60)


CERTIFY_CASES = [
    (["--n-partitions", "0"], "argument --n-partitions: expected an integer >= 1, got '0'"),
    (["--n-partitions", "x"], "argument --n-partitions"),
    (["--n-partitions", "61"], "--method dpa: --n-partitions=61 is larger than the number of"),
    (["--spread", "0"], "argument --spread"),
    (["--election", "best"], "argument --election: invalid choice: 'best'"),
    (["--threat-model", "any"], "argument --threat-model"),
    (["--hash", "md5"], "argument --hash"),
    (["--base", "svm"], "argument --base"),
    (["--method", "fa"], "argument --method"),
    (["--n-jobs", "0"], "argument --n-jobs: expected a non-zero integer"),
    (["--seed", "-1"], "argument --seed"),
    (["--seed", str(2**32)], "argument --seed"),
    (["--test-size", "1"], "argument --test-size: expected a number strictly between 0 and 1"),
    (["--test-size", "nan"], "argument --test-size"),
    (["--test-size", "0.99"], "--test-size 0.99 of 60 row(s) leaves no training rows"),
    (["--threat-model", "label_flip", "--spread", "2"], "needs --spread=1, got --spread=2"),
    (
        ["--threat-model", "label_flip", "--hash", "pixel_sum"],
        "--hash='pixel_sum' is unused under --threat-model='label_flip'",
    ),
    (["--sigma", "0.5"], "--sigma applies to --method rab, denoised or cohen only; drop it."),
    (["--method", "cohen"], "--n-partitions applies to --method dpa only; drop it."),
    (["--sample-size", "1.5"], "argument --sample-size: expected an integer >= 1 or a number in"),
    (["--sample-size", "0"], "argument --sample-size: expected an integer >= 1, got '0'"),
    (["--method", "denoised", "--denoiser", "mnist"], "argument --denoiser: invalid choice"),
    (["--x-key", "features"], "--x-key: only for .npz files; drop it."),
    (["--hash", "pixel_sum"], "--hash='pixel_sum' needs integer pixel values in 0..255"),
    (["--unknown"], "unrecognized arguments: --unknown"),
]


@pytest.mark.parametrize(("extra", "expected"), CERTIFY_CASES)
def test_bad_certify_options(tmp_path, capsys, no_fit, data, extra, expected):
    argv = ["certify", "--data", data, "--out", tmp_path / "out", "--n-partitions", "5", *extra]
    assert expected in user_error(argv, capsys)


def test_certify_options_that_do_not_apply_to_npz(tmp_path, capsys, no_fit):
    data = tmp_path / "d.npz"
    np.savez(data, X=np.eye(4), y=np.arange(4), X_test=np.eye(4))
    base = ["certify", "--data", data, "--out", tmp_path / "out"]
    assert "--label-column: only for .csv" in user_error([*base, "--label-column", "y"], capsys)
    assert "--test-size: only for splitting --data" in user_error(
        [*base, "--test-size", "0.5"], capsys
    )
    assert "holds its own test arrays" in user_error([*base, "--test-data", data], capsys)


BOUND_CASES = [
    (["--epsilons", "1.2"], "argument --epsilons: expected a number in [0, 1), got '1.2'"),
    (["--epsilons", "nan"], "argument --epsilons"),
    (["--epsilons"], "argument --epsilons: expected at least one argument"),
    (["--rho-sq", "0"], "argument --rho-sq: expected a finite number > 0"),
    (["--rho-sq", "inf"], "argument --rho-sq"),
    (["--percentile", "0"], "argument --percentile"),
    (["--percentile", "101"], "argument --percentile"),
    (["--max-iter", "0"], "argument --max-iter"),
    (["--lr", "-1"], "argument --lr"),
    (["--oracle", "exact"], "argument --oracle"),
    (["--loss", "squared"], "argument --loss"),
    (["--learner", "svm"], "argument --learner"),
    (["--attack", "random"], "argument --attack"),
    (["--test-size", "0"], "argument --test-size"),
    (["--seed", "x"], "argument --seed"),
    (["--label-column", "y"], "--label-column: only for .csv files"),
]


@pytest.mark.parametrize(("extra", "expected"), BOUND_CASES)
def test_bad_bound_options(tmp_path, capsys, extra, expected):
    assert expected in user_error(["bound", "--out", tmp_path / "out", *extra], capsys)


def test_bound_labels_must_be_signs(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X=rng.normal(size=(20, 2)), y=np.repeat([0, 1], 10))
    line = user_error(["bound", "--data", tmp_path / "d.npz", "--out", tmp_path / "o"], capsys)
    assert "labels must be -1 and +1" in line and "got 0, 1" in line
    np.savez(tmp_path / "one.npz", X=rng.normal(size=(20, 2)), y=np.repeat([-1, 1], [19, 1]))
    line = user_error(["bound", "--data", tmp_path / "one.npz", "--out", tmp_path / "o"], capsys)
    assert "of class +1; each class needs at least 2" in line


DEMO_CASES = [
    (["--n-partitions", "0"], "argument --n-partitions"),
    (["--n-partitions", "5000"], "--n-partitions 5000 is more than the 1347 training digits"),
    (["--epochs", "0"], "argument --epochs"),
    (["--spread", "-1"], "argument --spread"),
    (["--election", "x"], "argument --election"),
    (["--seed", "-1"], "argument --seed"),
    (["--device", "nonsense"], "--device 'nonsense' cannot be used here"),
    (["--families", "svm"], "argument --families: invalid choice: 'svm'"),
    (["--families"], "argument --families: expected at least one argument"),
    (["--threads", "0"], "argument --threads"),
]


@pytest.mark.parametrize(("extra", "expected"), DEMO_CASES)
def test_bad_demo_options(tmp_path, capsys, no_fit, extra, expected):
    assert expected in user_error(["demo", "--out", tmp_path / "out", *extra], capsys)


def test_missing_or_unknown_command(capsys):
    assert "required: COMMAND" in user_error([], capsys)
    assert "invalid choice: 'train'" in user_error(["train"], capsys)
    assert "required: --data" in user_error(["certify"], capsys)


# ---------------------------------------------------------------- help, version, verbose
def _subparsers():
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_every_option_of_every_command_has_help():
    for command, parser in _subparsers().items():
        for action in parser._actions:
            assert action.help and action.help.strip(), (command, action.option_strings)


def test_certify_help_states_radius_units():
    help_text = " ".join(_subparsers()["certify"].format_help().split())
    assert "radius: training rows inserted + deleted; holds exactly" in help_text
    assert "radius: training labels flipped" in help_text
    assert "radius: l2 norm of the test-input change; holds with probability" in help_text


def test_version(capsys, monkeypatch):
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out.strip().endswith(metadata.version("sklearn_certify"))

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    assert package_version() == sklearn_certify.__version__


def test_certify_verbose_shows_a_progress_bar(tmp_path, capsys, data):
    argv = ["certify", "--data", data, "--out", tmp_path / "out", *FAST]
    code, _, quiet = run_cli(argv, capsys)
    assert code == 0 and "fitting members" not in quiet
    code, _, err = run_cli([*argv, "--verbose"], capsys)
    assert code == 0 and "fitting members" in err and "member/s" in err


# ---------------------------------------------------------------- the console script
def test_console_script_runs_the_command_line(capsys, monkeypatch):
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    scripts = dict(
        line.split(" = ")
        for line in config["options.entry_points"]["console_scripts"].strip().splitlines()
    )
    module, function = scripts["sklearn-certify"].split(":")
    entry = getattr(importlib.import_module(module), function)
    assert entry is main
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/sklearn-certify", "--help"])
    with pytest.raises(SystemExit) as exc:
        entry()
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("usage: sklearn-certify [-h] [--version] COMMAND")


def test_cli_page_documents_every_option():
    page = (ROOT / "docs" / "user_guide" / "cli.rst").read_text()
    assert "sklearn-certify" in page
    for command, parser in _subparsers().items():
        assert f"sklearn-certify {command}" in page
        for action in parser._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help":
                    assert re.search(rf"``{option}\b", page), (command, option)
    assert "cli" in (ROOT / "docs" / "user_guide" / "index.rst").read_text().split()
