"""Identity and callable denoisers, and the rule that a denoiser never sees the certified data."""

import numpy as np
import pytest
import torch

from sklearn_certify.datasets import load_digits_for_denoising
from sklearn_certify.denoisers import (
    DDPMDenoiser,
    Denoiser,
    IdentityDenoiser,
    as_denoiser,
    check_trusted_denoiser,
    overlapping_rows,
    train_ddpm_denoiser,
)
from sklearn_certify.partition import row_digests
from tests._denoiser_helpers import noisy_images, one_thread  # noqa: F401

TINY = dict(image_shape=(1, 8, 8), block_out_channels=(8, 16), n_steps=3, batch_size=8)


# --- identity and callables --------------------------------------------------------------------


def test_identity_returns_its_input():
    X = noisy_images((3, 64))
    assert IdentityDenoiser().denoise(X, 0.5) is X
    T = torch.from_numpy(X)
    assert IdentityDenoiser().denoise(T, 0.5) is T
    with pytest.raises(ValueError, match="sigma"):
        IdentityDenoiser().denoise(X, 0.0)


def test_as_denoiser_accepts_none_objects_and_callables():
    assert isinstance(as_denoiser(None), IdentityDenoiser)
    identity = IdentityDenoiser()
    assert as_denoiser(identity) is identity
    seen = []

    def shrink(X, sigma):
        seen.append(sigma)
        return X * 0.5

    wrapped = as_denoiser(shrink)
    assert isinstance(wrapped, Denoiser) and "shrink" in repr(wrapped)
    np.testing.assert_array_equal(wrapped.denoise(np.ones((2, 3)), 0.25), np.full((2, 3), 0.5))
    assert seen == [0.25]
    # an object with a denoise method wins over being callable
    class Both:
        def __call__(self, X, sigma):
            raise AssertionError("denoise should be used")

        def denoise(self, X, sigma):
            return X

    both = Both()
    assert as_denoiser(both) is both


def test_as_denoiser_refuses_the_rest():
    for bad in (0.5, "ddpm", np.zeros(3)):
        with pytest.raises(TypeError, match="denoiser must be None, an object with a denoise"):
            as_denoiser(bad)

    class NotAMethod:
        denoise = 3

    with pytest.raises(TypeError, match=r"denoiser\.denoise must be a method"):
        as_denoiser(NotAMethod())


def test_callable_must_keep_the_shape():
    flatten = as_denoiser(lambda X, sigma: X.reshape(len(X), -1))
    with pytest.raises(ValueError, match=r"returned shape \(2, 4\) for input of shape"):
        flatten.denoise(np.zeros((2, 2, 2)), 0.5)
    listing = as_denoiser(lambda X, sigma: X.tolist())
    with pytest.raises(TypeError, match=r"returned list; it must return an array"):
        listing.denoise(np.zeros((2, 2)), 0.5)


# --- the trusted-denoiser rule -----------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_parts():
    return {s: load_digits_for_denoising(split=s)[0] for s in ("denoiser", "train", "test")}


def test_training_refuses_the_data_being_certified(digits_parts):
    trusted, train = digits_parts["denoiser"], digits_parts["train"]
    with pytest.raises(ValueError, match=r"809 rows of refuse .* also rows of X_trusted"):
        train_ddpm_denoiser(train, refuse=train, **TINY)
    # a single shared row; the same rows in another dtype and layout
    for refuse in (np.concatenate([train, trusted[17:18]]),
                   trusted[:5].reshape(5, 1, 8, 8).astype(np.float64)):
        with pytest.raises(ValueError, match=r"rows of refuse .* also rows of X_trusted"):
            train_ddpm_denoiser(trusted, refuse=refuse, **TINY)


def test_training_records_its_rows_and_the_check_uses_them(digits_parts):
    trusted, train = digits_parts["denoiser"], digits_parts["train"]
    denoiser = train_ddpm_denoiser(trusted, refuse=train, **TINY)
    assert isinstance(denoiser, DDPMDenoiser)
    np.testing.assert_array_equal(denoiser.training_digests, row_digests(trusted))
    check_trusted_denoiser(denoiser, train)
    check_trusted_denoiser(denoiser, torch.from_numpy(digits_parts["test"]))
    poisoned = np.concatenate([train, trusted[3:4]])
    with pytest.raises(ValueError, match=r"1 of the 810 rows of X are rows the denoiser was"):
        check_trusted_denoiser(denoiser, poisoned)
    np.testing.assert_array_equal(overlapping_rows(denoiser.training_digests, poisoned), [809])


def test_denoisers_without_a_record_are_not_checked(digits_parts):
    check_trusted_denoiser(IdentityDenoiser(), digits_parts["denoiser"])
    check_trusted_denoiser(as_denoiser(lambda X, s: X), digits_parts["denoiser"])


def test_training_is_reproducible_and_leaves_the_global_rng_alone(digits_parts):
    trusted = digits_parts["denoiser"][:40]
    state = torch.random.get_rng_state()
    first = train_ddpm_denoiser(trusted, random_state=3, **TINY)
    assert torch.equal(torch.random.get_rng_state(), state)
    second = train_ddpm_denoiser(trusted, random_state=3, **TINY)
    other = train_ddpm_denoiser(trusted, random_state=4, **TINY)
    a, b, c = (d.unet.state_dict() for d in (first, second, other))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_training_accepts_images_and_other_shapes():
    X = np.random.default_rng(0).uniform(size=(16, 3, 8, 16)).astype(np.float32)
    denoiser = train_ddpm_denoiser(X, block_out_channels=(8, 16), n_steps=2, batch_size=4)
    assert denoiser.image_shape == (3, 8, 16)
    assert denoiser.denoise(X.reshape(16, -1), 0.5).shape == (16, 384)


@pytest.mark.parametrize(
    ("X", "kwargs", "error", "match"),
    [
        (np.full((4, 64), 0.5), {}, ValueError, "give image_shape"),
        (np.full((4, 64), 0.5), {"image_shape": (1, 8, 9)}, ValueError, "does not fit"),
        (np.full((4, 8, 8), 0.5), {}, ValueError, r"rows \(n, d\) or images"),
        (np.full((1, 1, 8, 8), 0.5), {}, ValueError, "at least 2 rows"),
        (np.full((4, 1, 8, 8), 1.5), {}, ValueError, r"every value in \[0, 1\]"),
        (np.full((4, 1, 8, 8), "a"), {}, TypeError, "X_trusted must be numeric"),
        (np.full((4, 1, 8, 8), 0.5), {"block_out_channels": (8, 12)}, ValueError,
         "multiples of 8"),
        (np.full((4, 1, 6, 6), 0.5), {"block_out_channels": (8, 16, 16)}, ValueError,
         "cannot be downsampled 2 times"),
        (np.full((4, 1, 8, 8), 0.5), {"n_steps": 0}, ValueError, "n_steps"),
        (np.full((4, 1, 8, 8), 0.5), {"ema_decay": 1.0}, ValueError, "ema_decay"),
        (np.full((4, 1, 8, 8), 0.5), {"learning_rate": -1.0}, ValueError, "learning_rate"),
        (np.full((4, 1, 8, 8), 0.5), {"device": "gpu"}, ValueError, "device='gpu' cannot"),
    ],
)
def test_training_bad_input(X, kwargs, error, match):
    with pytest.raises(error, match=match):
        train_ddpm_denoiser(X, **kwargs)
