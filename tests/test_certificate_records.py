"""Certificates as audit records: metadata, digests, files that load back equal, resumable runs."""

import csv
import hashlib
import json
import re
import sys
import tempfile
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

import sklearn_certify
from sklearn_certify import (
    Certificate,
    DPAClassifier,
    RABClassifier,
    RandomizedSmoothingClassifier,
)
from sklearn_certify._audit import (
    certify_to_file,
    data_digest,
    metadata_path,
    read_certificate,
)
from sklearn_certify.datasets import load_digits


# ---------------------------------------------------------------------- random certificates
def _labels(kind: str, draw, n: int) -> np.ndarray:
    if kind == "int":
        return np.array(draw(st.lists(st.integers(-(2**40), 2**40), min_size=n, max_size=n)))
    if kind == "float":
        values = st.floats(allow_nan=False, allow_infinity=False, width=64)
        return np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype=float)
    if kind == "bool":
        return np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    text = st.text(st.characters(exclude_categories=("Cs",)), max_size=6)
    values = draw(st.lists(text, min_size=n, max_size=n))
    if kind == "object":
        out = np.empty(n, dtype=object)
        out[:] = values
        return out
    return np.array(values, dtype=f"<U{max(map(len, values), default=0) + 2}")  # wider than needed


@st.composite
def certificates(draw):
    """Any valid certificate: label dtype int/float/bool/str/object-str, optional extras."""
    n = draw(st.integers(0, 6))
    prediction = _labels(draw(st.sampled_from(["int", "str", "object", "float", "bool"])), draw, n)
    unit = draw(st.sampled_from(["samples", "rows", "label_flips", "l2", "input_l2"]))
    abstain = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    if unit in ("samples", "rows", "label_flips"):
        dtype = draw(st.sampled_from([np.int64, np.int32]))
        radius = np.array(draw(st.lists(st.integers(0, 10**6), min_size=n, max_size=n)), dtype)
    else:
        dtype = draw(st.sampled_from([np.float64, np.float32]))
        values = st.floats(0, 1e6, width=32 if dtype is np.float32 else 64)
        radius = np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype)
    radius[abstain] = 0
    fields = dict(prediction=prediction, radius=radius, abstain=abstain, unit=unit)
    if draw(st.booleans()):
        bound = st.one_of(st.floats(0, 1), st.just(np.nan))
        fields["p_lower"] = np.array(draw(st.lists(bound, min_size=n, max_size=n)), dtype=float)
        fields["p_upper"] = np.array(draw(st.lists(bound, min_size=n, max_size=n)), dtype=float)
    if draw(st.booleans()):
        k = draw(st.integers(1, 4))
        counts = st.lists(st.integers(0, 10**4), min_size=k, max_size=k)
        fields["votes"] = np.array(draw(st.lists(counts, min_size=n, max_size=n)), np.int64)
        fields["votes"] = fields["votes"].reshape(n, k)
        if draw(st.booleans()):
            fields["metadata"] = {"classes": [f"c{j}" for j in range(k)]}
    if draw(st.booleans()):
        scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5))
        json_data = st.recursive(
            scalars | st.floats(allow_nan=False, allow_infinity=False),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner),
            max_leaves=6,
        )
        metadata = draw(st.dictionaries(st.text(max_size=8), json_data, max_size=4))
        fields["metadata"] = {**fields.get("metadata", {}), **metadata}
    return Certificate(**fields)


EMPTY = Certificate(
    np.array([], dtype="<U5"), np.array([], dtype=np.int64), np.array([], dtype=bool), "samples",
    votes=np.zeros((0, 3), dtype=np.int64), metadata={"classes": ["a", "b", "c"]},
)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cert=certificates(), fmt=st.sampled_from(["csv", "json"]))
@example(cert=EMPTY, fmt="csv")
@example(cert=EMPTY, fmt="json")
def test_a_saved_certificate_loads_back_equal(cert, fmt):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"cert.{fmt}"
        rows = np.arange(len(cert))[::-1] * 3
        written = cert.save(path, rows=rows, extra_columns={"label": cert.prediction})
        assert written == ([path, metadata_path(path)] if fmt == "csv" else [path])
        loaded, read_rows, extra = read_certificate(path)
        assert loaded == cert and Certificate.load(path) == cert
        assert loaded.prediction.dtype == cert.prediction.dtype  # == checks it; said twice
        assert (loaded.votes is None) == (cert.votes is None)
        assert read_rows.tolist() == rows.tolist() and list(extra) == ["label"]


@settings(max_examples=30, deadline=None)
@given(cert=certificates())
def test_the_csv_table_is_the_frame_with_row_and_unit_columns(cert):
    """``pandas.read_csv`` reads the table; its columns are ``to_frame``'s plus row and unit."""
    pd = pytest.importorskip("pandas")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cert.csv"
        cert.save(path)
        table = pd.read_csv(path, keep_default_na=False, dtype=str)
    frame = cert.to_frame()
    assert list(table.columns) == ["row", *frame.columns, "radius_unit"]
    assert table["row"].tolist() == [str(i) for i in range(len(cert))]
    assert set(table["radius_unit"]) <= {cert.unit}
    assert frame.attrs == {**cert.metadata, "unit": cert.unit}
    for name in frame.columns:
        if name != "prediction":  # the labels are checked by the round trip above
            assert table[name].tolist() == [str(v) for v in frame[name].tolist()], name


def test_frame_columns_name_votes_by_class_and_need_pandas(monkeypatch):
    cert = Certificate(
        np.array([1, 0]), np.array([2, 0]), np.array([False, True]), "samples",
        votes=np.array([[1, 5], [3, 3]]),
    )  # fmt: skip
    columns = ["prediction", "radius", "abstain", "votes_0", "votes_1"]
    assert list(cert.to_frame().columns) == columns
    named = replace(cert, metadata={"classes": ["no", "yes"]})
    frame = named.to_frame()
    assert frame["votes_yes"].tolist() == [5, 3] and frame.attrs["classes"] == ["no", "yes"]
    frame.attrs["classes"].append("maybe")  # attrs are a copy
    assert named.metadata["classes"] == ["no", "yes"]
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        cert.to_frame()


# ---------------------------------------------------------------------- the metadata field
def _cert(**overrides):
    fields = dict(
        prediction=np.array([3, 1]), radius=np.array([1, 0]), abstain=np.array([False, True]),
        unit="samples",
    )  # fmt: skip
    return Certificate(**{**fields, **overrides})


def test_metadata_defaults_to_empty_and_is_a_json_copy():
    assert _cert().metadata == {} and _cert(metadata=None).metadata == {}
    given_metadata = {"a": [1, 2], "b": {"c": None}}
    cert = _cert(metadata=given_metadata)
    given_metadata["a"].append(3)
    assert cert.metadata == {"a": [1, 2], "b": {"c": None}}
    assert "metadata" not in repr(cert)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"a": (1, 2)}, "lists, not tuples"),
        ({1: "x"}, "str dict keys"),
        ({"a": float("nan")}, "JSON data"),
        ({"a": object()}, "JSON data"),
        ({"unit": "l2"}, "metadata\\['unit'\\] is 'l2'"),
        (["unit"], "must be a dict"),
    ],
)
def test_metadata_that_json_would_not_keep_is_refused(metadata, message):
    with pytest.raises(ValueError, match=message):
        _cert(metadata=metadata)


def test_equality_is_exact_in_dtype_values_and_metadata():
    cert = _cert(p_lower=np.array([0.5, np.nan]), p_upper=np.array([0.1, np.nan]))
    assert cert == replace(cert) and cert != "not a certificate"
    assert cert != replace(cert, radius=cert.radius.astype(np.int32))
    assert cert != replace(cert, prediction=np.array([3, 2]))
    assert cert != replace(cert, p_lower=None, p_upper=None)
    assert cert != replace(cert, metadata={"note": 1})
    assert cert != replace(cert, p_lower=np.array([0.5, 0.0]))


# ---------------------------------------------------------------------- data_digest
def test_digest_follows_its_documented_layout():
    X, y = np.array([[1, 2]], dtype="<i2"), np.array(["ab"])
    expected = hashlib.sha256()
    expected.update(b'{"name": "X", "dtype": "<i2", "shape": [1, 2]}\n' + b"\x01\x00\x02\x00")
    expected.update(b'{"name": "y", "dtype": "<U2", "shape": [1]}\n' + b"a\0\0\0b\0\0\0")
    assert data_digest(X, y) == expected.hexdigest()
    # the byte order, memory layout and string width of the arrays do not matter
    assert data_digest(X.astype(">i2"), np.array(["ab"], dtype="<U7")) == expected.hexdigest()
    assert data_digest(np.array(["ab"], dtype=object)) == data_digest(np.array(["ab"]))


def test_digest_changes_with_any_value_dtype_shape_or_label():
    X, y = load_digits()
    X, y = X[:50], y[:50]
    base = data_digest(X, y)
    assert base == data_digest(X.copy(), y.copy()) == data_digest(np.asfortranarray(X), y)
    changed = X.copy()
    changed[17, 5] += 1e-6
    others = [
        data_digest(changed, y),
        data_digest(X.astype(np.float64), y),
        data_digest(X.reshape(50, 8, 8), y),
        data_digest(X, np.roll(y, 1)),
        data_digest(X),
        data_digest(X[:49], y[:49]),
    ]
    assert len({base, *others}) == 1 + len(others)


def test_digest_refuses_what_has_no_byte_form():
    with pytest.raises(ValueError, match="y has"):
        data_digest(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(TypeError, match="object array"):
        data_digest(np.array([1, "a"], dtype=object))
    with pytest.raises(TypeError, match="only bool, numeric and string arrays"):
        data_digest(np.array(["2024-01-01"], dtype="datetime64[D]"))


# ---------------------------------------------------------------------- with_metadata
@pytest.fixture(scope="module")
def digits():
    X, y = load_digits()
    return X[:300], y[:300], X[300:360]


@pytest.fixture(scope="module")
def dpa(digits):
    X, y, _ = digits
    return DPAClassifier(DecisionTreeClassifier(), n_partitions=5, random_state=3).fit(X, y)


def test_with_metadata_records_what_the_certificate_certifies(digits, dpa):
    X, y, X_test = digits
    before = datetime.now(timezone.utc).replace(microsecond=0)
    cert = dpa.certify(X_test).with_metadata(
        dpa, X_train=X, y_train=y, X_test=X_test, extra={"source": "digits", "k": np.int64(5)}
    )
    meta = cert.metadata
    assert meta["unit"] == "samples" and meta["estimator"] == "DPAClassifier"
    assert meta["params"]["n_partitions"] == 5 and meta["params"]["random_state"] == 3
    assert meta["params"]["estimator"] == "DecisionTreeClassifier()"
    assert meta["random_state"] == 3 and meta["seed"] == dpa.seed_ and meta["alpha"] is None
    assert meta["classes"] == list(range(10))
    assert meta["train_digest"] == data_digest(X, y)
    assert meta["test_digest"] == data_digest(X_test)
    assert meta["versions"]["sklearn_certify"] == sklearn_certify.__version__
    assert meta["versions"]["numpy"] == np.__version__
    assert before <= datetime.fromisoformat(meta["created"]) <= datetime.now(timezone.utc)
    assert meta["source"] == "digits" and meta["k"] == 5
    assert replace(cert, metadata=None) == dpa.certify(X_test)  # the arrays are untouched
    for fmt in ("csv", "json"):
        with tempfile.TemporaryDirectory() as folder:
            cert.save(Path(folder) / f"c.{fmt}")
            assert Certificate.load(Path(folder) / f"c.{fmt}") == cert


def test_metadata_keeps_the_fitted_parameters_and_stable_reprs(digits):
    X, y, X_test = digits
    clf = RandomizedSmoothingClassifier(
        DecisionTreeClassifier(max_depth=6), sigma=0.5, n_samples=30, alpha=0.1,
        random_state=np.random.RandomState(0),
    ).fit(X[:100], y[:100])  # fmt: skip
    cert = clf.certify(X_test[:3])
    clf.set_params(sigma=2.0)  # after fit: certify still uses sigma_ = 0.5
    meta = cert.with_metadata(clf).metadata
    assert meta["params"]["sigma"] == 2.0 and meta["fitted_params"]["sigma"] == 0.5
    assert meta["alpha"] == 0.1 and meta["seed"] == clf.seed_
    assert meta["random_state"] == "RandomState(MT19937)"  # no memory address
    assert meta["train_digest"] is None and meta["test_digest"] is None


def test_fitted_params_are_the_settings_fit_resolved_not_fitted_data(digits):
    X, y, X_test = digits
    clf = RABClassifier(
        DecisionTreeClassifier(max_depth=4), n_estimators=4, alpha=0.3, random_state=0
    ).fit(X[:100], y[:100])
    meta = clf.certify(X_test[:2]).with_metadata(clf).metadata
    assert clf.test_noise_.shape == (4, 64) and meta["params"]["test_noise"] is True
    assert "test_noise" not in meta["fitted_params"]  # the members' noise is data
    assert meta["params"]["n_select"] is None and meta["fitted_params"]["n_select"] == 1


def test_with_metadata_refuses_data_or_estimators_that_do_not_fit(digits, dpa):
    X, y, X_test = digits
    cert = dpa.certify(X_test[:4])
    with pytest.raises(ValueError, match="X_test has 60 rows but the certificate 4"):
        cert.with_metadata(dpa, X_test=X_test)
    with pytest.raises(ValueError, match="y_train is given without X_train"):
        cert.with_metadata(dpa, y_train=y)
    with pytest.raises(ValueError, match="would replace metadata"):
        cert.with_metadata(dpa, extra={"seed": 1})
    with pytest.raises(NotFittedError):
        cert.with_metadata(DPAClassifier(DecisionTreeClassifier()))
    two = DPAClassifier(DecisionTreeClassifier(), n_partitions=3).fit(X[y < 2], y[y < 2])
    with pytest.raises(ValueError, match="votes for 10 classes but the estimator has 2"):
        cert.with_metadata(two)


# ---------------------------------------------------------------------- save / load errors
def test_save_and_load_say_what_is_wrong(tmp_path):
    cert = _cert()
    with pytest.raises(ValueError, match=r"\.csv or \.json"):
        cert.save(tmp_path / "cert.txt")
    cert.save(tmp_path / "cert.txt", format="json")
    assert Certificate.load(tmp_path / "cert.txt", format="json") == cert
    with pytest.raises(ValueError, match="choose another"):
        cert.save(tmp_path / "c.csv", extra_columns={"radius": [1, 2]})
    with pytest.raises(ValueError, match="choose another"):
        cert.save(tmp_path / "c.csv", extra_columns={"votes_x": [1, 2]})
    with pytest.raises(ValueError, match="must have 2 entries"):
        cert.save(tmp_path / "c.csv", extra_columns={"label": [1]})
    with pytest.raises(ValueError, match="rows must be 2 integers"):
        cert.save(tmp_path / "c.csv", rows=[0.5, 1.5])
    with pytest.raises(TypeError, match="labels of bool, integer, float or string"):
        _cert(prediction=np.array([1, "a"], dtype=object)).save(tmp_path / "c.csv")
    cert.save(tmp_path / "c.csv")
    metadata_path(tmp_path / "c.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"c\.meta\.json"):
        Certificate.load(tmp_path / "c.csv")
    (tmp_path / "other.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="not a certificate file"):
        Certificate.load(tmp_path / "other.json")
    cert.save(tmp_path / "c.json")
    payload = json.loads((tmp_path / "c.json").read_text())
    (tmp_path / "c.json").write_text(json.dumps({**payload, "version": 2}))
    with pytest.raises(ValueError, match="reads version 1"):
        Certificate.load(tmp_path / "c.json")
    del payload["fields"]
    (tmp_path / "c.json").write_text(json.dumps(payload))
    with pytest.raises(ValueError, match=re.escape("lacks the entries ['fields']")):
        Certificate.load(tmp_path / "c.json")


def test_a_csv_edited_by_hand_is_refused(tmp_path):
    path = tmp_path / "c.csv"
    _cert(metadata={"note": "x"}).save(path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:2], lines[2].replace("samples", "l2")]) + "\n")
    with pytest.raises(ValueError, match="radius_unit is not 'samples'"):
        Certificate.load(path)
    path.write_text("\n".join([*lines[:2], "1,2"]) + "\n")
    with pytest.raises(ValueError, match="line 3: 2 fields"):
        Certificate.load(path)


# ---------------------------------------------------------------------- certify_to_file
def _without_metadata(cert):
    return replace(cert, metadata=None)


def _table(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("base", [DecisionTreeClassifier(), LogisticRegression(max_iter=300)])
def test_an_interrupted_run_resumes_to_the_single_run_certificate(tmp_path, digits, base):
    X, y, X_test = digits
    clf = DPAClassifier(base, n_partitions=5, random_state=0).fit(X, y)
    path = tmp_path / "certs.csv"
    first = certify_to_file(clf, X_test, path, start=5, stop=23, chunk_size=7, X_train=X, y_train=y)
    assert _without_metadata(first) == clf.certify(X_test[5:23])
    assert first.metadata["rows"] == [5, 23]
    cert = certify_to_file(clf, X_test, path, start=5, chunk_size=7, X_train=X, y_train=y)
    assert _without_metadata(cert) == clf.certify(X_test[5:])
    assert cert == Certificate.load(path)
    assert cert.metadata["rows"] == [5, 60] and cert.metadata["seed"] == clf.seed_
    assert cert.metadata["test_digest"] == data_digest(X_test[5:])
    assert cert.metadata["train_digest"] == data_digest(X, y)
    table = _table(path)
    assert [int(r["row"]) for r in table] == list(range(5, 60))
    for line in (table[0], table[30], table[-1]):  # the row column locates each row
        row = int(line["row"])
        alone = clf.certify(X_test[row : row + 1])
        assert int(line["radius"]) == alone.radius[0]
        assert int(line["prediction"]) == alone.prediction[0]
        assert [int(line[f"votes_{c}"]) for c in range(10)] == alone.votes[0].tolist()


def test_chunk_size_does_not_change_the_file_and_a_cut_line_is_redone(tmp_path, digits, dpa):
    X_test = digits[2]
    one, many = tmp_path / "one.csv", tmp_path / "many.csv"
    certify_to_file(dpa, X_test, one, stop=12, chunk_size=1)
    certify_to_file(dpa, X_test, many, stop=12, chunk_size=50)
    assert one.read_bytes() == many.read_bytes()
    with many.open("a", newline="") as handle:
        handle.write("12,7,1,Fa")  # a write cut short by a crash
    cert = certify_to_file(dpa, X_test, many, stop=20, chunk_size=50)
    assert _without_metadata(cert) == dpa.certify(X_test[:20])
    assert [int(r["row"]) for r in _table(many)] == list(range(20))


def test_test_time_smoothing_resumes_row_by_row(tmp_path, digits):
    X, y, X_test = digits
    clf = RandomizedSmoothingClassifier(
        DecisionTreeClassifier(max_depth=6), sigma=0.5, n_samples=50, alpha=0.1, random_state=0
    ).fit(X[:150], y[:150])
    path = tmp_path / "cohen.csv"
    certify_to_file(clf, X_test[:12], path, stop=5, chunk_size=2)
    cert = certify_to_file(clf, X_test[:12], path, chunk_size=4)
    assert _without_metadata(cert) == clf.certify(X_test[:12])
    assert cert.unit == "input_l2" and cert.metadata["alpha"] == 0.1
    assert np.isfinite(cert.p_lower).all()


def test_a_file_of_another_run_is_not_continued(tmp_path, digits, dpa):
    X, y, X_test = digits
    path = tmp_path / "certs.csv"
    certify_to_file(dpa, X_test, path, stop=10, chunk_size=5, X_train=X, y_train=y)
    before = path.read_bytes()
    other = DPAClassifier(DecisionTreeClassifier(), n_partitions=5, random_state=4).fit(X, y)
    with pytest.raises(ValueError, match=r"another estimator.*\(params, random_state, seed differ"):
        certify_to_file(other, X_test, path, X_train=X, y_train=y)
    with pytest.raises(ValueError, match="train_digest differ"):
        certify_to_file(dpa, X_test, path, X_train=X[::-1], y_train=y[::-1])
    changed = X_test.copy()
    changed[3, 0] += 1
    with pytest.raises(ValueError, match=re.escape("started on rows 0..9 of another X")):
        certify_to_file(dpa, changed, path, X_train=X, y_train=y)
    with pytest.raises(ValueError, match=re.escape("not the first rows of 2..59")):
        certify_to_file(dpa, X_test, path, start=2, X_train=X, y_train=y)
    with pytest.raises(ValueError, match=re.escape("not the first rows of 0..5")):
        certify_to_file(dpa, X_test, path, stop=6, X_train=X, y_train=y)
    assert path.read_bytes() == before
    saved = tmp_path / "saved.csv"
    dpa.certify(X_test[:3]).with_metadata(dpa, X_train=X, y_train=y).save(saved)
    with pytest.raises(ValueError, match="not written by certify_to_file"):
        certify_to_file(dpa, X_test, saved, X_train=X, y_train=y)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(start=5, stop=5), ValueError, "0 <= start < stop <= len"),
        (dict(stop=61), ValueError, "0 <= start < stop <= len"),
        (dict(start=-1), ValueError, "0 <= start < stop <= len"),
        (dict(chunk_size=0), ValueError, "chunk_size must be at least 1"),
        (dict(start=1.0), TypeError, "start must be an int"),
        (dict(chunk_size=True), TypeError, "chunk_size must be an int"),
        (dict(path="certs.json"), ValueError, "appends to a .csv file"),
    ],
)
def test_certify_to_file_checks_its_arguments(tmp_path, digits, dpa, kwargs, error, message):
    path = tmp_path / kwargs.pop("path", "certs.csv")
    with pytest.raises(error, match=re.escape(message)):
        certify_to_file(dpa, digits[2], path, **kwargs)
    assert not path.exists()
