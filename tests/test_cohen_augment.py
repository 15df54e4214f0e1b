"""GaussianAugmentation: fresh seeded noise on training batches only, usable on any skorch net."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from skorch.dataset import ValidSplit

from sklearn_certify.smoothing import GaussianAugmentation


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


class Recorder(Callback):
    """Keeps a copy of every batch's inputs as the module will see them."""

    def initialize(self):
        self.seen_ = []
        return self

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        self.seen_.append((bool(training), batch[0].clone()))


def data(n=40, d=3):
    X = np.arange(n * d, dtype=np.float32).reshape(n, d) / (n * d)
    return X, (np.arange(n) % 2).astype(np.int64)


def make_net(*callbacks, **params):
    defaults = dict(
        module=torch.nn.Linear,
        module__in_features=3,
        module__out_features=2,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=2,
        batch_size=10,
        train_split=None,
        verbose=0,
    )
    defaults.update(params)
    return NeuralNetClassifier(callbacks=list(callbacks), **defaults)


def training_inputs(net):
    recorder = dict(net.callbacks_)["Recorder"]
    return [x for training, x in recorder.seen_ if training], [
        x for training, x in recorder.seen_ if not training
    ]


def test_training_batches_get_fresh_noise_of_the_right_scale():
    X, y = data(n=400, d=3)
    net = make_net(GaussianAugmentation(0.5, random_state=0), Recorder(), batch_size=400)
    net.fit(X, y)  # unshuffled, one batch per epoch: both epochs see the rows in order
    (first, second), _ = training_inputs(net)
    noise_1, noise_2 = first.numpy() - X, second.numpy() - X
    assert not np.allclose(noise_1, noise_2)  # a new draw every time a row is seen
    for noise in (noise_1, noise_2):
        assert abs(noise.mean()) < 0.05 and abs(noise.std() - 0.5) < 0.03
    assert abs(np.corrcoef(noise_1.ravel(), noise_2.ravel())[0, 1]) < 0.1


def test_validation_and_prediction_inputs_are_untouched():
    X, y = data(n=40)
    net = make_net(
        GaussianAugmentation(0.5, random_state=0),
        Recorder(),
        train_split=ValidSplit(4, stratified=False),
        batch_size=100,
    )
    net.fit(X, y)
    train, valid = training_inputs(net)
    assert len(train) == 2 and len(valid) == 2
    rows = {row.tobytes() for row in X}
    for batch in valid:  # the held-out fold, exactly as in X
        assert len(batch) == 10 and all(row.tobytes() in rows for row in batch.numpy())
    for batch in train:
        assert len(batch) == 30 and not any(row.tobytes() in rows for row in batch.numpy())
    # prediction does not go through the callbacks: the same outputs twice, equal to the
    # module applied to the clean inputs
    with torch.no_grad():
        clean = net.module_(torch.as_tensor(X)).softmax(dim=1).numpy()
    assert np.allclose(net.predict_proba(X), clean, atol=1e-6)
    assert np.array_equal(net.predict_proba(X), net.predict_proba(X))


def test_the_callers_arrays_are_never_modified():
    X, y = data()
    before = X.copy()
    make_net(GaussianAugmentation(1.0, random_state=0)).fit(X, y)
    assert np.array_equal(X, before)


def test_seeded_noise_is_reproducible_and_refit_restarts_it():
    X, y = data()
    first = make_net(GaussianAugmentation(0.3, random_state=7), Recorder()).fit(X, y)
    second = make_net(GaussianAugmentation(0.3, random_state=7), Recorder()).fit(X, y)
    other = make_net(GaussianAugmentation(0.3, random_state=8), Recorder()).fit(X, y)
    a, b, c = (torch.cat(training_inputs(net)[0]) for net in (first, second, other))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # fit() re-initializes the callback: refitting the same net replays the same noise
    assert torch.equal(torch.cat(training_inputs(first.fit(X, y))[0]), a)


def test_noise_never_comes_from_the_global_generator():
    callback = GaussianAugmentation(0.3, random_state=0).initialize()
    state = torch.get_rng_state()
    batch = [torch.zeros(5, 3), torch.zeros(5)]
    callback.on_batch_begin(None, batch=batch, training=True)
    assert torch.equal(torch.get_rng_state(), state)
    assert batch[0].abs().sum() > 0
    untouched = [torch.zeros(5, 3), torch.zeros(5)]
    callback.on_batch_begin(None, batch=untouched, training=False)
    assert untouched[0].abs().sum() == 0


def test_usable_by_name_params_clone_and_pickle():
    X, y = data()
    net = make_net(("noise", GaussianAugmentation(0.3, random_state=1)))
    assert net.get_params()["callbacks"][0][1].get_params() == {"sigma": 0.3, "random_state": 1}
    net.set_params(callbacks__noise__sigma=0.6)
    net.fit(X, y)
    assert dict(net.callbacks_)["noise"].sigma == 0.6
    copy = clone(net)
    assert not hasattr(copy.callbacks[0][1], "generator_")
    restored = pickle.loads(pickle.dumps(net))
    assert np.array_equal(restored.predict_proba(X), net.predict_proba(X))
    assert repr(GaussianAugmentation(0.3, random_state=1)) == (
        "GaussianAugmentation(random_state=1, sigma=0.3)"
    )


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        (dict(sigma=0.0), ValueError, "sigma"),
        (dict(sigma=-1.0), ValueError, "sigma"),
        (dict(sigma=float("inf")), ValueError, "sigma"),
        (dict(sigma="0.5"), TypeError, "sigma"),
        (dict(sigma=True), TypeError, "sigma"),
        (dict(sigma=0.5, random_state=-1), ValueError, "random_state"),
        (dict(sigma=0.5, random_state=1.5), ValueError, "random_state"),
    ],
)
def test_bad_parameters_fail_when_the_net_initializes(params, error, match):
    net = make_net(GaussianAugmentation(**params))
    with pytest.raises(error, match=match):
        net.initialize()


def test_integer_inputs_are_refused():
    X, y = data()
    net = make_net(GaussianAugmentation(0.5, random_state=0), module=IntModule)
    with pytest.raises(TypeError, match="floating-point"):
        net.fit(X.astype(np.int64), y)


class IntModule(torch.nn.Module):
    """Accepts integer inputs (converted inside), so skorch would train on them."""

    def __init__(self, in_features=3, out_features=2):
        super().__init__()
        self.linear = torch.nn.Linear(in_features, out_features)

    def forward(self, X):
        return self.linear(X.float())
