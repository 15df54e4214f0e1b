"""The method registry: every method through ``certify`` and ``evaluate``, library defaults."""

import inspect
from dataclasses import replace

import numpy as np
import pytest

from sklearn_certify import Certificate
from sklearn_certify._audit import data_digest
from sklearn_certify.cli import build_parser
from sklearn_certify.cli._methods import METHODS, OPTIONS, build, method_params
from sklearn_certify.cli._outputs import file_sha256
from sklearn_certify.datasets import load_digits, load_digits_for_denoising
from tests._cli_helpers import certificates, forbid_training, read_rows, run_cli, user_error

#: Small, fast settings of each method (a loose alpha so that a few members certify something).
SMALL = {
    "dpa": ["--n-partitions", "5"],
    "rab": ["--n-estimators", "5", "--alpha", "0.2"],
    "denoised": ["--n-estimators", "5", "--alpha", "0.2"],
    "cohen": ["--n-samples", "60", "--alpha", "0.2"],
    "bagging": ["--n-estimators", "20", "--sample-size", "0.3", "--alpha", "0.2"],
}


def _parsed(command: str, method: str):
    required = {
        "certify": ["--data", "d.csv"],
        "evaluate": ["--attack", "backdoor", "--budgets", "0"],
    }
    return build_parser().parse_args([command, *required[command], "--method", method])


def test_every_method_has_small_settings():
    assert set(SMALL) == set(METHODS)


@pytest.mark.parametrize("command", ["certify", "evaluate"])
@pytest.mark.parametrize("key", list(METHODS))
def test_every_cli_default_is_the_library_default(command, key):
    """An option left out keeps the constructor's default, and --help states that default."""
    method = METHODS[key]
    args = _parsed(command, key)
    assert all(getattr(args, name) is None for name in OPTIONS)  # unset unless given
    estimator = build(args, method_params(args))
    assert type(estimator) is method.cls
    signature = inspect.signature(method.cls).parameters
    assert method.parameters(), key
    for name in method.parameters():
        assert estimator.get_params(deep=False)[name] == signature[name].default, (key, name)
    assert estimator.get_params(deep=False)["random_state"] == args.seed
    (parser,) = (a for a in build_parser()._actions if a.dest == "command")
    help_text = " ".join(parser.choices[command].format_help().split())
    for name in method.parameters():
        default = signature[name].default
        if not OPTIONS[name].negate and default is not None:
            assert f"{default}" in help_text.split(OPTIONS[name].flag(name), 2)[-1], name


def test_every_option_is_a_parameter_of_some_method():
    for name in OPTIONS:
        assert any(name in m.parameters() for m in METHODS.values()), name


def test_test_time_smoothing_draws_the_library_number_of_samples():
    """The CLI once defaulted n_samples to 1,000 while the library draws 10,000."""
    args = _parsed("evaluate", "cohen")
    assert build(args, method_params(args)).n_samples == 10_000


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    """150 training and 25 test digits (two classes keep every member fast)."""
    X, y = load_digits(digits=(1, 7))
    X = X.astype(np.float64)  # as the CLI reads it
    path = tmp_path_factory.mktemp("data") / "d.npz"
    np.savez(path, X=X[:150], y=y[:150], X_test=X[150:175], y_test=y[150:175])
    return path


@pytest.mark.parametrize("key", list(METHODS))
def test_certify_writes_the_library_certificates_for_every_method(tmp_path, capsys, npz, key):
    out = tmp_path / "out"
    # ridge: deterministic, so the CLI's and the library's fits match bit for bit
    argv = ["certify", "--method", key, *SMALL[key], "--base", "ridge", "--data", npz]
    code, printed, err = run_cli([*argv, "--out", out], capsys)
    assert code == 0, err
    rows, numbers = certificates(out)
    assert numbers.tolist() == list(range(25))
    # The library's own certificate, fitted with the same options and seed.
    args = build_parser().parse_args([str(a) for a in [*argv, "--out", out]])
    data = np.load(npz)
    clf = build(args, method_params(args)).fit(data["X"], data["y"])
    cert = clf.certify(data["X_test"])
    assert [int(r["prediction"]) for r in rows] == cert.prediction.tolist()
    assert np.allclose([float(r["radius"]) for r in rows], cert.radius)
    assert [r["abstain"] == "True" for r in rows] == cert.abstain.tolist()
    assert {r["radius_unit"] for r in rows} == {cert.unit} == {METHODS[key].unit()}
    assert [int(r["label"]) for r in rows] == data["y_test"].tolist()
    probabilistic = not METHODS[key].exact
    assert ({"p_lower", "p_upper"} <= set(rows[0])) == probabilistic
    if probabilistic:
        assert np.allclose([float(r["p_lower"]) for r in rows], cert.p_lower)
        assert "with probability 1 - alpha" in printed
    assert (out / "certified_accuracy.json").exists()
    # The file loads as the library's certificate, with a record of what it certifies.
    saved = Certificate.load(out / "certificates.csv")
    assert replace(saved, metadata=None) == cert
    meta = saved.metadata
    assert meta["estimator"] == METHODS[key].estimator and meta["method"] == key
    assert meta["seed"] == clf.seed_ and meta["classes"] == clf.classes_.tolist()
    assert meta["random_state"] == 0 and meta["unit"] == cert.unit
    assert meta["train_digest"] == data_digest(data["X"], data["y"])
    assert meta["test_digest"] == data_digest(data["X_test"])
    assert meta["data"] == str(npz) and meta["data_sha256"] == file_sha256(npz)
    assert "certificates.meta.json" in printed


@pytest.mark.parametrize("key", list(METHODS))
def test_evaluate_runs_every_method(tmp_path, capsys, key):
    budgets = ["0"] if key == "cohen" else ["0", "2"]
    argv = ["evaluate", "--method", key, *SMALL[key], "--base", "tree", "--digits", "1", "7"]
    argv += ["--attack", "backdoor", "--target-label", "1", "--budgets", *budgets, "--n-test", "10"]
    code, _, err = run_cli([*argv, "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    rows = read_rows(tmp_path / "o" / "attack_table.csv")
    assert [int(r["budget"]) for r in rows] == [int(b) for b in budgets]
    assert {r["radius_unit"] for r in rows} == {METHODS[key].unit()}
    assert {r["violation"] for r in rows} == {"False"}


@pytest.fixture
def no_fit(monkeypatch):
    """Fail the test if anything is trained: errors must come before the fit."""
    forbid_training(monkeypatch)


def test_the_estimators_own_checks_are_one_line_before_training(tmp_path, capsys, no_fit, npz):
    base = ["certify", "--data", npz, "--out", tmp_path / "out"]
    line = user_error([*base, "--method", "rab", "--n-estimators", "1"], capsys)
    assert "--method rab: The '--n-estimators' parameter of RABClassifier must be" in line
    line = user_error([*base, "--method", "denoised", "--denoiser", "digits"], capsys)
    assert "--method denoised:" in line and "rows the denoiser was trained on" in line
    line = user_error([*base, "--threat-model", "label_flip", "--hash", "pixel_sum"], capsys)
    assert "--hash='pixel_sum' is unused under --threat-model='label_flip'" in line
    assert not (tmp_path / "out").exists()  # refused before any work


def test_denoised_with_the_bundled_denoiser_on_rows_it_never_saw(tmp_path, capsys):
    X, y = load_digits_for_denoising(split="train")
    X_test, y_test = load_digits_for_denoising(split="test")
    data = tmp_path / "d.npz"
    np.savez(data, X=X[:120], y=y[:120], X_test=X_test[:10], y_test=y_test[:10])
    argv = ["certify", "--method", "denoised", "--denoiser", "digits", *SMALL["denoised"]]
    code, _, err = run_cli(
        [*argv, "--base", "tree", "--data", data, "--out", tmp_path / "o"], capsys
    )
    assert code == 0, err
    rows, numbers = certificates(tmp_path / "o")
    assert numbers.tolist() == list(range(10)) and {r["radius_unit"] for r in rows} == {"l2"}
