"""StackedMembers: the vectorized engine's members, scored stacked and built as nets on access."""

import pickle

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier

from sklearn_certify import DPAClassifier
from sklearn_certify.ensemble import MemberPlan, StackedMembers, fit_members, member_outputs
from tests._ensemble_helpers import TinyMLP, disjoint_subsets, first_digits


@pytest.fixture(scope="module")
def fitted():
    X, y = first_digits()
    subsets, _ = disjoint_subsets(len(X), [30, 12, 25, 41, 19])
    net = NeuralNetClassifier(
        TinyMLP,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer__momentum=0.9,
        max_epochs=2,
        batch_size=8,
        lr=0.1,
        iterator_train__shuffle=True,
    )
    members = fit_members(
        net,
        X,
        y,
        MemberPlan(subsets, member_ids=[0, 1, 2, 4, 6]),
        n_classes=10,
        seed=3,
        engine="vectorized",
        chunk_size=3,
    )
    return X, members


def test_sequence_protocol(fitted):
    _, members = fitted
    assert isinstance(members, StackedMembers)
    assert len(members) == 5 and len(members.chunks) == 3  # ids 0-2, 4, 6 -> chunks 0, 1, 2
    assert members[-1] is members[4] and members[1:3] == [members[1], members[2]]
    assert all(type(m) is NeuralNetClassifier for m in members)
    assert "5 x NeuralNetClassifier" in repr(members)
    combined = [None] + members  # noqa: RUF005 (the + operator is what is tested)
    assert len(combined) == 6 and combined[1] is members[0]
    assert (members + [None])[-1] is None  # noqa: RUF005
    with pytest.raises(IndexError, match="out of range"):
        members[5]
    with pytest.raises(TypeError, match="ints or slices"):
        members["0"]


def test_outputs_equal_each_nets_forward_and_leave_torch_rng_alone(fitted):
    X, members = fitted
    state = torch.get_rng_state()
    out = member_outputs(members, X[:40], n_classes=10)
    assert torch.equal(state, torch.get_rng_state())
    assert out.shape == (40, 5, 10) and out.dtype == np.float64
    for j, net in enumerate(members):
        np.testing.assert_allclose(out[:, j], net.forward(X[:40]).numpy(), rtol=1e-5, atol=1e-6)
    assert member_outputs(members, X[:0], n_classes=10).shape == (0, 5, 10)
    with pytest.raises(ValueError, match="n_classes=10"):
        member_outputs(members, X[:5], n_classes=12)
    with pytest.raises(TypeError, match="float32"):
        member_outputs(members, X[:5].astype(np.float64), n_classes=10)


def test_pickle_round_trip_is_exact(fitted):
    X, members = fitted
    members[0]  # a cached net is not pickled; it is rebuilt identically
    restored = pickle.loads(pickle.dumps(members))
    assert restored._nets == {}
    np.testing.assert_array_equal(restored.outputs(X[:30]), members.outputs(X[:30]))
    for a, b in zip(restored, members, strict=True):
        for pa, pb in zip(a.module_.parameters(), b.module_.parameters(), strict=True):
            assert torch.equal(pa, pb)


def test_cuda_members_load_on_cpu_with_a_warning(fitted, monkeypatch):
    X, members = fitted
    state = members.__getstate__()
    state["_device"] = "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    restored = StackedMembers.__new__(StackedMembers)
    with pytest.warns(UserWarning, match="no CUDA device"):
        restored.__setstate__(state)
    assert restored.device == torch.device("cpu")
    np.testing.assert_array_equal(restored.outputs(X[:5]), members.outputs(X[:5]))


def test_dpa_estimators_are_built_on_first_access(fitted):
    X, _ = fitted
    y = first_digits()[1]
    net = NeuralNetClassifier(
        TinyMLP, criterion=torch.nn.CrossEntropyLoss, max_epochs=2, batch_size=16, lr=0.1
    )
    clf = DPAClassifier(net, n_partitions=6, engine="vectorized", random_state=0)
    assert not hasattr(clf, "estimators_")
    clf.fit(X, y)
    assert isinstance(clf.trained_members_, StackedMembers)
    assert clf._estimators is None and clf.trained_members_._nets == {}
    cert = clf.certify(X[:20])
    assert clf.trained_members_._nets == {}  # scoring built no net
    members = clf.estimators_
    assert members is clf.estimators_ and len(members) == 6
    assert all(type(m) is NeuralNetClassifier for m in members)
    votes = np.stack([m.predict(X[:20]) for m in members], axis=1)
    np.testing.assert_array_equal(clf.predict_members(X[:20]), clf.classes_[votes])
    restored = pickle.loads(pickle.dumps(clf))
    assert restored._estimators is None
    np.testing.assert_array_equal(restored.certify(X[:20]).radius, cert.radius)
