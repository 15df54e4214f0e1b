"""Content hashing: the partition of a training row depends only on its bytes.

Two hashes are offered.

``"digest"`` (the default)
    Each row is flattened in C order and converted to little-endian IEEE-754
    float64 (``dtype "<f8"``); negative zero is replaced by positive zero so
    numerically equal rows give the same bytes. The SHA-256 digest of those
    ``8 * n_features`` bytes is computed, its first 8 bytes are read as an
    unsigned little-endian integer, and that integer modulo ``n_buckets`` is
    the bucket. The result is identical across processes, platforms and runs
    (``PYTHONHASHSEED`` plays no role) and never depends on the row's position
    in the data set.

``"pixel_sum"``
    The hash of the official DPA and Finite Aggregation code: the integer sum
    of the row's pixel values modulo ``n_buckets``. It needs raw 8-bit image
    data, i.e. every value an integer in 0..255 (float arrays holding integral
    values are accepted as they are). Images stored as ``uint8 / 255`` floats
    in [0, 1] must be multiplied by 255 and rounded first; the official code
    does exactly this before summing. Nothing is rescaled here.

Labels are never hashed: flipping a label keeps a row in its partition.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["HASHES", "bucket_of_rows", "canonical_rows", "content_order", "row_digests"]

#: Names accepted by the ``hash`` parameter of :class:`~sklearn_certify.DPAClassifier`.
HASHES = ("digest", "pixel_sum")

_MAX_PIXEL = 255


def _as_rows(X) -> np.ndarray:
    array = np.asarray(X)
    if array.ndim < 2:
        raise ValueError(
            f"X must have one row per sample (at least 2 dimensions), got shape {array.shape}."
        )
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(f"X must be numeric to be hashed, got dtype {array.dtype}.")
    return array.reshape(array.shape[0], -1)


def _canonical_copy(rows: np.ndarray) -> np.ndarray:
    # a fresh C-ordered "<f8" copy (never a view of the caller's data), then x + 0.0, which
    # maps -0.0 to +0.0 and leaves every other value unchanged
    out = np.array(rows, dtype="<f8", order="C", copy=True)
    out += 0.0
    return out


def canonical_rows(X) -> np.ndarray:
    """Return the rows of ``X`` as a C-ordered little-endian float64 matrix.

    This is the byte form the ``"digest"`` hash reads. Each row is flattened
    in C order (so image arrays of shape ``(n, C, H, W)`` are accepted) and
    negative zeros become positive zeros.

    Parameters
    ----------
    X : array-like of shape (n_samples, ...)
        Numeric rows.

    Returns
    -------
    rows : ndarray of shape (n_samples, n_values), dtype ``<f8``

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify.partition import canonical_rows
    >>> canonical_rows(np.array([[-0.0, 1.5]], dtype=np.float32)).tobytes().hex()
    '0000000000000000000000000000f83f'
    """
    return _canonical_copy(_as_rows(X))


#: Rows converted to canonical bytes at a time by :func:`row_digests` (keeps the copy in cache).
_DIGEST_BLOCK = 256


def row_digests(X) -> np.ndarray:
    """SHA-256 digest of every row's canonical bytes (see :func:`canonical_rows`).

    Parameters
    ----------
    X : array-like of shape (n_samples, ...)

    Returns
    -------
    digests : ndarray of dtype ``S32`` and shape (n_samples,)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify.partition import row_digests
    >>> row_digests(np.zeros((1, 2)))[0].hex()[:16]
    '374708fff7719dd5'
    """
    rows = _as_rows(X)
    out = np.empty(rows.shape[0], dtype="S32")
    sha256 = hashlib.sha256
    for lo in range(0, rows.shape[0], _DIGEST_BLOCK):
        block = _canonical_copy(rows[lo : lo + _DIGEST_BLOCK])
        out[lo : lo + block.shape[0]] = [sha256(row.data).digest() for row in block]
    return out


def _check_pixels(X) -> np.ndarray:
    array = np.asarray(X)
    if array.ndim < 2:
        raise ValueError(
            f"X must have one row per sample (at least 2 dimensions), got shape {array.shape}."
        )
    rows = array.reshape(array.shape[0], -1)
    if np.issubdtype(rows.dtype, np.integer) or rows.dtype == bool:
        values = rows.astype(np.int64)
    elif np.issubdtype(rows.dtype, np.floating):
        if not np.all(np.isfinite(rows)) or np.any(rows != np.round(rows)):
            raise ValueError(
                "hash='pixel_sum' needs integer pixel values in 0..255 (raw 8-bit images), but "
                "X holds non-integer values. Pass the raw images (e.g. "
                "load_digits(raw=True)), convert [0, 1] images with np.round(X * 255), or use "
                "hash='digest', which accepts any numeric data."
            )
        values = rows.astype(np.int64)
    else:
        raise TypeError(f"hash='pixel_sum' needs numeric pixel data, got dtype {rows.dtype}.")
    if values.size and (values.min() < 0 or values.max() > _MAX_PIXEL):
        raise ValueError(
            "hash='pixel_sum' needs integer pixel values in 0..255 (raw 8-bit images); got "
            f"values in [{values.min()}, {values.max()}]. Pass raw uint8 images or use "
            "hash='digest'."
        )
    return values


def bucket_of_rows(X, n_buckets: int, *, hash: str = "digest") -> np.ndarray:
    """Bucket index of every row of ``X``, a function of the row's content alone.

    Parameters
    ----------
    X : array-like of shape (n_samples, ...)
        Rows to hash. Labels are not part of the hash.
    n_buckets : int
        Number of buckets (``n_partitions * spread`` in DPA and Finite
        Aggregation).
    hash : {"digest", "pixel_sum"}, default="digest"
        ``"digest"``: SHA-256 over the canonical float64 bytes of the row (see
        the module documentation); ``"pixel_sum"``: sum of the integer pixel
        values in 0..255, as in the official DPA/FA code.

    Returns
    -------
    buckets : ndarray of int64 and shape (n_samples,)
        Values in ``0 .. n_buckets - 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify.partition import bucket_of_rows
    >>> bucket_of_rows(np.array([[3, 4], [250, 10]]), 7, hash="pixel_sum")
    array([0, 1])
    """
    if isinstance(n_buckets, bool) or not isinstance(n_buckets, (int, np.integer)) or n_buckets < 1:
        raise ValueError(f"n_buckets must be a positive integer, got {n_buckets!r}.")
    if hash == "digest":
        return buckets_from_digests(row_digests(X), n_buckets)
    if hash == "pixel_sum":
        values = _check_pixels(X)
        return (values.sum(axis=1) % int(n_buckets)).astype(np.int64)
    raise ValueError(f"hash must be one of {HASHES}, got {hash!r}.")


def buckets_from_digests(digests: np.ndarray, n_buckets: int) -> np.ndarray:
    """Digest-hash buckets from precomputed :func:`row_digests` (first 8 bytes, little-endian)."""
    if digests.size == 0:
        return np.zeros(0, dtype=np.int64)
    head = np.frombuffer(digests.tobytes(), dtype="<u8").reshape(-1, 4)[:, 0]
    return (head % np.uint64(n_buckets)).astype(np.int64)


def content_order(X, labels=None) -> np.ndarray:
    """Permutation that sorts rows by content (and then by label), independent of row order.

    Rows are compared by the bit patterns of their canonical float64 values
    (see :func:`canonical_rows`), the **last** value being the most
    significant key, as in the official code's ``np.lexsort``; the label (if
    given) is the least significant key. Sorting a partition this way makes
    the order in which a member sees its rows a function of the partition's
    contents only.

    Parameters
    ----------
    X : array-like of shape (n_samples, ...)
    labels : array-like of int of shape (n_samples,), default=None

    Returns
    -------
    order : ndarray of int64 and shape (n_samples,)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify.partition import content_order
    >>> content_order(np.array([[1.0, 2.0], [0.0, 1.0], [5.0, 1.0]]))
    array([1, 2, 0])
    """
    rows = canonical_rows(X)
    keys = rows.view("<u8")
    # Unsigned bit patterns give a total order on contents (it agrees with the numeric
    # order for non-negative values, which is all that matters for reproducibility).
    key_list = [keys[:, j] for j in range(keys.shape[1])]
    if labels is not None:
        key_list.insert(0, np.asarray(labels))
    if not key_list:
        return np.arange(rows.shape[0], dtype=np.int64)
    return np.lexsort(key_list).astype(np.int64)
