"""Content hashing: stable, content-only, identical across processes; the official pixel sum."""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from sklearn_certify.datasets import load_digits
from sklearn_certify.partition import bucket_of_rows, canonical_rows, content_order, row_digests


def _reference_bucket(row, n_buckets):
    """Independent re-statement of the documented digest hash."""
    data = np.asarray(row, dtype="<f8").ravel() + 0.0
    digest = hashlib.sha256(data.tobytes()).digest()
    return int.from_bytes(digest[:8], "little") % n_buckets


def test_digest_matches_documented_definition():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 7))
    expected = [_reference_bucket(row, 13) for row in X]
    assert bucket_of_rows(X, 13).tolist() == expected


def test_digest_ignores_row_position_and_other_rows():
    X, _ = load_digits(split="train")
    buckets = bucket_of_rows(X, 50)
    perm = np.random.default_rng(1).permutation(X.shape[0])
    assert np.array_equal(bucket_of_rows(X[perm], 50), buckets[perm])
    # Each row on its own gives the same bucket as inside the full matrix.
    singles = [bucket_of_rows(X[i : i + 1], 50)[0] for i in range(20)]
    assert singles == buckets[:20].tolist()


def test_digest_canonical_dtype_and_signed_zero():
    X64 = np.array([[0.5, -0.0, 3.0], [1.25, 2.0, 0.0]])
    X32 = X64.astype(np.float32)
    Xint = np.array([[1, 2, 3]])
    assert np.array_equal(bucket_of_rows(X64, 97), bucket_of_rows(X32, 97))
    assert np.array_equal(bucket_of_rows(Xint, 97), bucket_of_rows(Xint.astype(float), 97))
    # -0.0 and +0.0 are the same value, so the same bytes.
    flipped = X64.copy()
    flipped[0, 1] = 0.0
    assert np.array_equal(row_digests(X64), row_digests(flipped))
    assert canonical_rows(X32).dtype == np.dtype("<f8")


def test_image_rows_hash_like_their_flat_version():
    X_img, _ = load_digits(shape="image", split="test")
    X_flat, _ = load_digits(split="test")
    assert np.array_equal(bucket_of_rows(X_img, 31), bucket_of_rows(X_flat, 31))


def test_digest_identical_in_fresh_processes():
    X, _ = load_digits(split="test")
    here = bucket_of_rows(X[:100], 37).tolist()
    code = (
        "from sklearn_certify.datasets import load_digits;"
        "from sklearn_certify.partition import bucket_of_rows;"
        "X, _ = load_digits(split='test');"
        "print(bucket_of_rows(X[:100], 37).tolist())"
    )
    for seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        assert out.stdout.strip() == str(here)


def test_pixel_sum_is_official_sum_mod_n():
    X, _ = load_digits(raw=True)
    expected = X.reshape(X.shape[0], -1).astype(np.int64).sum(axis=1) % 7
    assert np.array_equal(bucket_of_rows(X, 7, hash="pixel_sum"), expected)
    # Floats holding integers are accepted as they are.
    assert np.array_equal(bucket_of_rows(X.astype(np.float32), 7, hash="pixel_sum"), expected)


def test_pixel_sum_reproduces_official_float_pipeline():
    """The official code loads uint8/255 floats, multiplies by 255 and truncates."""
    rng = np.random.default_rng(3)
    raw = rng.integers(0, 256, size=(200, 28 * 28), dtype=np.uint8)
    official = ((raw.astype(np.float32) / 255) * 255).astype(np.int64).sum(axis=1) % 1200
    assert np.array_equal(bucket_of_rows(raw, 1200, hash="pixel_sum"), official)


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.array([[0.5, 1.0]]), "non-integer"),
        (np.array([[300, 1]]), "0..255"),
        (np.array([[-1, 1]]), "0..255"),
    ],
)
def test_pixel_sum_rejects_non_pixel_data(X, match):
    with pytest.raises(ValueError, match=match):
        bucket_of_rows(X, 5, hash="pixel_sum")


def test_bad_arguments():
    with pytest.raises(ValueError, match="hash must be one of"):
        bucket_of_rows(np.zeros((2, 2)), 3, hash="python")
    with pytest.raises(ValueError, match="n_buckets"):
        bucket_of_rows(np.zeros((2, 2)), 0)
    with pytest.raises(ValueError, match="one row per sample"):
        bucket_of_rows(np.zeros(4), 3)


def test_content_order_is_row_order_free():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 3, size=(40, 3)).astype(float)
    labels = rng.integers(0, 2, size=40)
    order = content_order(X, labels)
    perm = rng.permutation(40)
    order_perm = content_order(X[perm], labels[perm])
    # Same sequence of (row, label) contents whatever the input order.
    assert np.array_equal(X[order], X[perm][order_perm])
    assert np.array_equal(labels[order], labels[perm][order_perm])
    # The last column is the most significant key, as in the official lexsort.
    assert np.all(np.diff(X[order][:, -1]) >= 0)
