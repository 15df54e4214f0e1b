"""KeyedAugmentation: crops, flips and noise keyed by (member key, row id, epoch) alone."""

import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sklearn_certify.ensemble._augment import KeyedAugmentation

IMAGE = torch.arange(1.0, 17.0).reshape(1, 4, 4)  # one 1 x 4 x 4 image: entries 1..16


def _ids(*values):
    return torch.tensor(values, dtype=torch.int64)


def _one_member(n_rows, key=3, epoch=0, image=IMAGE):
    """``n_rows`` copies of ``image`` as member ``key``'s rows 0..n_rows-1."""
    x = image.expand(1, n_rows, *image.shape).clone()
    return x, torch.arange(n_rows)[None], _ids(key), _ids(epoch)


def _numpy_crop(image, dy, dx, padding, mode="constant"):
    padded = np.pad(image, ((0, 0), (padding, padding), (padding, padding)), mode=mode)
    height, width = image.shape[-2:]
    return padded[:, dy : dy + height, dx : dx + width]


def test_crop_matches_numpy_pad_and_slice():
    aug = KeyedAugmentation(crop_padding=1)
    x, rows, keys, epochs = _one_member(200)
    out = aug(x, rows, keys, epochs)
    dy, dx, flipped = aug.draws(rows, keys, epochs)
    assert not flipped.any()
    assert {(a, b) for a, b in zip(dy[0].tolist(), dx[0].tolist(), strict=True)} == {
        (a, b) for a in range(3) for b in range(3)
    }
    for w in range(200):
        expected = _numpy_crop(IMAGE.numpy(), int(dy[0, w]), int(dx[0, w]), 1)
        np.testing.assert_array_equal(out[0, w].numpy(), expected)


@pytest.mark.parametrize(
    ("offsets", "expected"),
    [
        ((0, 0), [[0, 0, 0, 0], [0, 1, 2, 3], [0, 5, 6, 7], [0, 9, 10, 11]]),
        ((2, 2), [[6, 7, 8, 0], [10, 11, 12, 0], [14, 15, 16, 0], [0, 0, 0, 0]]),
        ((1, 1), [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]]),
        ((0, 2), [[0, 0, 0, 0], [2, 3, 4, 0], [6, 7, 8, 0], [10, 11, 12, 0]]),
    ],
)
def test_crop_by_hand(offsets, expected):
    """The window at (dy, dx) of the zero-padded image, written out by hand."""
    aug = KeyedAugmentation(crop_padding=1)
    x, rows, keys, epochs = _one_member(200)
    dy, dx, _ = aug.draws(rows, keys, epochs)
    w = int(torch.nonzero((dy[0] == offsets[0]) & (dx[0] == offsets[1]))[0, 0])
    out = aug(x, rows, keys, epochs)
    assert out[0, w, 0].tolist() == expected


def test_flip_is_torch_flip_where_the_bit_is_set():
    aug = KeyedAugmentation(flip=True)
    x = torch.randn(3, 40, 2, 5, 6, generator=torch.Generator().manual_seed(0))
    rows, keys, epochs = torch.arange(120).reshape(3, 40), _ids(0, 1, 2), _ids(0, 0, 4)
    out = aug(x, rows, keys, epochs)
    dy, dx, flipped = aug.draws(rows, keys, epochs)
    assert not dy.any() and not dx.any()
    assert 0 < int(flipped.sum()) < flipped.numel()
    mask = flipped[..., None, None, None]
    torch.testing.assert_close(out, torch.where(mask, torch.flip(x, [-1]), x), rtol=0, atol=0)


def test_flip_comes_after_the_crop():
    aug = KeyedAugmentation(crop_padding=1, flip=True)
    x, rows, keys, epochs = _one_member(100)
    out = aug(x, rows, keys, epochs)
    dy, dx, flipped = aug.draws(rows, keys, epochs)
    for w in range(100):
        expected = _numpy_crop(IMAGE.numpy(), int(dy[0, w]), int(dx[0, w]), 1)
        expected = expected[..., ::-1] if flipped[0, w] else expected
        np.testing.assert_array_equal(out[0, w].numpy(), expected)


@pytest.mark.parametrize("mode", ["reflect", "replicate"])
def test_padding_modes_match_torch_pad(mode):
    aug = KeyedAugmentation(crop_padding=2, flip=True, padding_mode=mode)
    x = torch.randn(2, 30, 3, 5, 6, generator=torch.Generator().manual_seed(1))
    rows, keys, epochs = torch.arange(60).reshape(2, 30), _ids(7, 8), _ids(1, 2)
    out = aug(x, rows, keys, epochs)
    dy, dx, flipped = aug.draws(rows, keys, epochs)
    for m in range(2):
        for w in range(30):
            padded = torch.nn.functional.pad(x[m, w], (2, 2, 2, 2), mode=mode)
            window = padded[:, dy[m, w] : dy[m, w] + 5, dx[m, w] : dx[m, w] + 6]
            window = torch.flip(window, [-1]) if flipped[m, w] else window
            assert torch.equal(out[m, w], window)


def test_height_width_rows_are_single_channel_images():
    aug = KeyedAugmentation(crop_padding=2, flip=True, padding_mode="reflect")
    x = torch.randn(2, 8, 1, 6, 5, generator=torch.Generator().manual_seed(2))
    rows, keys, epochs = torch.arange(16).reshape(2, 8), _ids(1, 2), _ids(0, 3)
    assert torch.equal(aug(x[:, :, 0], rows, keys, epochs), aug(x, rows, keys, epochs)[:, :, 0])


def _full(noise_std=0.3):
    return KeyedAugmentation(crop_padding=2, flip=True, noise_std=noise_std)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**63 - 1),  # key
            st.integers(0, 2**40),  # epoch
            st.lists(st.integers(0, 2**32 - 1), min_size=3, max_size=3),  # row ids
        ),
        min_size=1,
        max_size=3,
    ),
    st.integers(0, 8),
)
def test_a_row_depends_only_on_its_key_id_and_epoch(members, position):
    """Alone, elsewhere in the batch or beside other members: the same augmented row."""
    aug = _full()
    keys = torch.tensor([key for key, _, _ in members])
    epochs = torch.tensor([epoch for _, epoch, _ in members])
    rows = torch.tensor([ids for _, _, ids in members])
    x = torch.randn(len(members), 3, 2, 5, 6, generator=torch.Generator().manual_seed(position))
    m, w = position % len(members), position % 3
    out = aug(x, rows, keys, epochs)
    alone = aug(
        x[m : m + 1, w : w + 1], rows[m : m + 1, w : w + 1], keys[m : m + 1], epochs[m : m + 1]
    )
    reverse = aug(x.flip(0, 1), rows.flip(0, 1), keys.flip(0), epochs.flip(0))
    assert torch.equal(alone[0, 0], out[m, w])
    assert torch.equal(reverse[len(members) - 1 - m, 2 - w], out[m, w])


def test_members_in_different_epochs_share_a_call():
    aug = _full()
    x = torch.randn(3, 10, 1, 6, 6, generator=torch.Generator().manual_seed(3))
    rows, keys, epochs = torch.arange(10).repeat(3, 1), _ids(5, 5, 5), _ids(0, 1, 2)
    out = aug(x, rows, keys, epochs)
    for m in range(3):
        solo = aug(x[m : m + 1], rows[m : m + 1], keys[m : m + 1], epochs[m : m + 1])
        assert torch.equal(out[m], solo[0])
    assert not torch.equal(out[0], aug(x[1:2], rows[:1], keys[:1], epochs[:1])[0])


N_ROWS = 20_000


def _draws(key=11, epoch=0, padding=2, first_row=0):
    aug = KeyedAugmentation(crop_padding=padding, flip=True)
    rows = torch.arange(first_row, first_row + N_ROWS)[None]
    return [t[0].numpy().astype(np.int64) for t in aug.draws(rows, _ids(key), _ids(epoch))]


def test_offsets_are_uniform_and_flips_fair():
    dy, dx, flipped = _draws()
    assert set(np.unique(dy)) == set(range(5)) and set(np.unique(dx)) == set(range(5))
    for cells, n_cells in [(dy, 5), (dx, 5), (5 * dy + dx, 25), (10 * dy + 2 * dx + flipped, 50)]:
        counts = np.bincount(cells, minlength=n_cells)
        assert stats.chisquare(counts).pvalue > 1e-4
    assert abs(flipped.mean() - 0.5) < 4 * np.sqrt(0.25 / N_ROWS)


def _agreement(a, b):
    """Fraction of rows with the same (dy, dx, flip) in two draws; 1/50 if independent."""
    same = (a[0] == b[0]) & (a[1] == b[1]) & (a[2] == b[2])
    return same.mean()


@pytest.mark.parametrize(
    "other",
    [
        {"epoch": 1},
        {"epoch": 2**32},  # the epoch's high word counts
        {"key": 12},
        {"key": 11 + 2**32},  # the key's high word counts
        {"first_row": 1},  # neighbouring rows
        {"first_row": 2**32 - N_ROWS},
    ],
)
def test_other_epochs_keys_and_rows_draw_independently(other):
    bound = 4 * np.sqrt(0.02 * 0.98 / N_ROWS)
    assert abs(_agreement(_draws(), _draws(**other)) - 0.02) < bound


def test_noise_moments_and_determinism():
    aug = KeyedAugmentation(noise_std=0.5)
    zeros = torch.zeros(4, 500, 3, 4, 4, dtype=torch.float64)
    rows, keys, epochs = torch.arange(2000).reshape(4, 500), _ids(0, 1, 2, 3), _ids(0, 0, 0, 0)
    noise = aug(zeros, rows, keys, epochs)
    assert abs(noise.mean().item()) < 0.01 and abs(noise.std().item() - 0.5) < 0.01
    assert torch.equal(noise, aug(zeros, rows, keys, epochs))
    assert stats.kstest(noise.numpy().ravel() / 0.5, "norm").pvalue > 1e-4
    for other_keys, other_epochs in [(keys + 4, epochs), (keys, epochs + 1)]:
        other = aug(zeros, rows, other_keys, other_epochs)
        corr = np.corrcoef(noise.numpy().ravel(), other.numpy().ravel())[0, 1]
        assert abs(corr) < 4 / np.sqrt(noise.numel())


def test_noise_does_not_depend_on_the_crop_and_is_independent_of_it():
    """Noise is added after the crop, from its own salt: the same whatever crop is drawn."""
    zeros = torch.zeros(1, N_ROWS, 1, 4, 4, dtype=torch.float64)
    rows, keys, epochs = torch.arange(N_ROWS)[None], _ids(9), _ids(3)
    noise_only = KeyedAugmentation(noise_std=1.0)(zeros, rows, keys, epochs)
    both = KeyedAugmentation(crop_padding=1, noise_std=1.0)
    assert torch.equal(both(zeros, rows, keys, epochs), noise_only)
    dy, dx, _ = both.draws(rows, keys, epochs)
    first = noise_only[0, :, 0, 0, 0].numpy()
    for offsets in (dy[0].numpy(), dx[0].numpy()):
        assert abs(np.corrcoef(first, offsets)[0, 1]) < 4 / np.sqrt(N_ROWS)


def test_noise_works_on_flat_rows():
    aug = KeyedAugmentation(noise_std=0.1)
    x = torch.ones(2, 3, 7)
    out = aug(x, torch.arange(6).reshape(2, 3), _ids(1, 2), _ids(0, 0))
    assert out.shape == x.shape and not torch.equal(out, x)
    assert (out - x).abs().max() < 0.1 * 6


def test_identity_when_everything_is_off():
    x = torch.randn(2, 3, 5)
    assert KeyedAugmentation()(x, torch.zeros(2, 3, dtype=torch.int64), _ids(0, 1), _ids(0, 0)) is x


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("row_shape", [(3, 6, 5), (6, 5)])
def test_shape_and_dtype_are_preserved(dtype, row_shape):
    x = torch.randn(2, 4, *row_shape, generator=torch.Generator().manual_seed(4)).to(dtype)
    rows, keys, epochs = torch.arange(8).reshape(2, 4), _ids(3, 4), _ids(1, 0)
    out = _full()(x, rows, keys, epochs)
    assert out.shape == x.shape and out.dtype == dtype
    reference = _full()(x.double(), rows, keys, epochs)
    torch.testing.assert_close(out, reference.to(dtype))


def test_integer_ids_of_other_widths_give_the_same_rows():
    x = torch.randn(1, 5, 1, 4, 4, generator=torch.Generator().manual_seed(5))
    rows = torch.arange(5)[None]
    out = _full()(x, rows, _ids(2), _ids(1))
    assert torch.equal(out, _full()(x, rows.int(), _ids(2).int(), _ids(1).short()))


def test_pickle_and_repr():
    aug = KeyedAugmentation(crop_padding=4, flip=True, noise_std=0.25, padding_mode="reflect")
    assert repr(aug) == (
        "KeyedAugmentation(crop_padding=4, flip=True, noise_std=0.25, padding_mode='reflect')"
    )
    clone = pickle.loads(pickle.dumps(aug))
    x, rows, keys, epochs = _one_member(6, image=torch.randn(2, 8, 8))
    assert repr(clone) == repr(aug) and torch.equal(
        clone(x, rows, keys, epochs), aug(x, rows, keys, epochs)
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"crop_padding": -1}, ValueError, "crop_padding must be a non-negative int"),
        ({"crop_padding": 1.5}, TypeError, "crop_padding must be a non-negative int"),
        ({"crop_padding": True}, TypeError, "crop_padding"),
        ({"flip": 1}, TypeError, "flip must be True or False"),
        ({"noise_std": -0.1}, ValueError, "noise_std must be finite and >= 0"),
        ({"noise_std": float("inf")}, ValueError, "noise_std must be finite"),
        ({"noise_std": float("nan")}, ValueError, "noise_std must be finite"),
        ({"noise_std": "0.1"}, TypeError, "noise_std must be a real number"),
        ({"padding_mode": "edge"}, ValueError, "padding_mode must be one of"),
    ],
)
def test_bad_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        KeyedAugmentation(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "setting"), [({"crop_padding": 2}, "crop_padding=2"), ({"flip": True}, "flip=True")]
)
def test_flat_rows_are_refused_for_crops_and_flips(kwargs, setting):
    with pytest.raises(
        ValueError, match=rf"{setting} needs image rows.*reshape the rows to \(C, H, W\)"
    ):
        KeyedAugmentation(**kwargs)(
            torch.zeros(1, 2, 784), torch.zeros(1, 2, dtype=torch.int64), _ids(0), _ids(0)
        )


def test_reflect_padding_must_be_smaller_than_the_image():
    aug = KeyedAugmentation(crop_padding=4, padding_mode="reflect")
    x, rows, keys, epochs = _one_member(2)
    with pytest.raises(ValueError, match="crop_padding < the image's height and width"):
        aug(x, rows, keys, epochs)


@pytest.mark.parametrize(
    ("override", "error", "match"),
    [
        ({"x": torch.zeros(2, 3, 2, 2, dtype=torch.int64)}, TypeError, "x must be a floating"),
        ({"row_ids": torch.zeros(2, 3)}, TypeError, "row_ids must be an integer tensor"),
        ({"row_ids": torch.zeros(3, 2, dtype=torch.int64)}, ValueError, r"row_ids must .*\(2, 3\)"),
        ({"keys": _ids(0)}, ValueError, r"keys must have shape \(2,\)"),
        ({"epochs": _ids(0, 0, 0)}, ValueError, r"epochs must have shape \(2,\)"),
        ({"epochs": torch.tensor([True, False])}, TypeError, "epochs must be an integer tensor"),
    ],
)
def test_bad_call_arguments(override, error, match):
    args = {
        "x": torch.zeros(2, 3, 2, 2),
        "row_ids": torch.zeros(2, 3, dtype=torch.int64),
        "keys": _ids(0, 1),
        "epochs": _ids(0, 0),
    }
    args.update(override)
    with pytest.raises(error, match=match):
        _full()(**args)


def test_draws_checks_its_arguments():
    with pytest.raises(ValueError, match=r"row_ids must have shape \(M, W\)"):
        _full().draws(torch.arange(3), _ids(0), _ids(0))
    with pytest.raises(TypeError, match="keys must be an integer tensor"):
        _full().draws(torch.arange(3)[None], torch.tensor([0.5]), _ids(0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    x = torch.randn(3, 64, 3, 8, 8, generator=torch.Generator().manual_seed(6))
    rows = torch.randint(0, 2**32, (3, 64), generator=torch.Generator().manual_seed(7))
    keys, epochs = _ids(1, 2**62, 5), _ids(0, 3, 2**33)
    for aug in (KeyedAugmentation(crop_padding=2, flip=True, padding_mode="reflect"), _full()):
        cpu = aug(x, rows, keys, epochs)
        gpu = aug(x.cuda(), rows.cuda(), keys.cuda(), epochs.cuda())
        assert gpu.device.type == "cuda"
        for a, b in zip(
            aug.draws(rows, keys, epochs),
            aug.draws(rows.cuda(), keys.cuda(), epochs.cuda()),
            strict=True,
        ):
            assert torch.equal(a, b.cpu())
        torch.testing.assert_close(gpu.cpu(), cpu)
