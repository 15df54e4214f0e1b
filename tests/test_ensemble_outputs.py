"""member_outputs: layout over all classes, argmax == predict, vectorized skorch path."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression, Perceptron
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier
from skorch import NeuralNetClassifier

from sklearn_certify.datasets import load_digits
from sklearn_certify.ensemble import fit_members, member_outputs
from tests._ensemble_helpers import TinyMLP


@pytest.fixture(scope="module")
def data():
    X, y = load_digits()
    # member 0 sees classes {0,1,2}, member 1 sees {3,7} (binary), member 2 all ten
    sub0 = np.flatnonzero(np.isin(y, [0, 1, 2]))[:60]
    sub1 = np.flatnonzero(np.isin(y, [3, 7]))[:60]
    sub2 = np.arange(200)
    return X, y, [sub0, sub1, sub2]


@pytest.mark.parametrize(
    "base, method, fill",
    [
        (LogisticRegression(max_iter=300), "predict_proba", 0.0),
        (make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)), "predict_proba", 0.0),
        (DecisionTreeClassifier(), "predict_proba", 0.0),
        (LinearSVC(), "decision_function", -np.inf),
        (Perceptron(), "decision_function", -np.inf),
    ],
    ids=["logreg", "pipeline", "tree", "linear_svc", "perceptron"],
)
def test_columns_for_members_missing_classes(data, base, method, fill):
    X, y, subsets = data
    members = fit_members(base, X, y, subsets, n_classes=10, seed=0)
    out = member_outputs(members, X[:300], n_classes=10)
    assert out.shape == (300, 3, 10) and out.dtype == np.float64
    assert np.all(out[:, 0, 3:] == fill)
    assert np.all(out[:, 1, [0, 1, 2, 4, 5, 6, 8, 9]] == fill)
    assert np.all(np.isfinite(out[:, 2]))
    for j, m in enumerate(members):
        np.testing.assert_array_equal(out[:, j].argmax(1), m.predict(X[:300]))
    if method == "decision_function":
        d = members[1].decision_function(X[:300])
        np.testing.assert_array_equal(out[:, 1, 7], d)
        np.testing.assert_array_equal(out[:, 1, 3], -d)
    else:
        np.testing.assert_allclose(out.sum(2), 1.0, rtol=1e-5)


def test_explicit_method(data):
    X, y, subsets = data
    members = fit_members(
        LogisticRegression(max_iter=300), X, y, subsets, n_classes=10, seed=0
    )
    dec = member_outputs(members, X[:20], n_classes=10, method="decision_function")
    np.testing.assert_array_equal(dec[:, 2], members[2].decision_function(X[:20]))
    assert np.all(dec[:, 0, 3:] == -np.inf)
    with pytest.raises(ValueError, match="method"):
        member_outputs(members, X, n_classes=10, method="logits")
    with pytest.raises(TypeError, match="forward"):
        member_outputs(members, X, n_classes=10, method="forward")
    with pytest.raises(ValueError, match="encoded labels"):
        member_outputs(members, X, n_classes=2)
    with pytest.raises(ValueError, match="empty"):
        member_outputs([], X, n_classes=10)


@pytest.mark.parametrize("engine", ["loop", "vectorized"])
def test_skorch_outputs_are_logits(data, engine):
    X, y, subsets = data
    net = NeuralNetClassifier(
        TinyMLP, criterion=torch.nn.CrossEntropyLoss, max_epochs=3, batch_size=16, lr=0.1
    )
    members = fit_members(net, X, y, subsets, n_classes=10, seed=0, engine=engine)
    out = member_outputs(members, X[:300], n_classes=10)
    assert out.shape == (300, 3, 10)
    for j, m in enumerate(members):
        ref = m.forward(X[:300]).numpy()
        np.testing.assert_allclose(out[:, j], ref, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(out[:, j].argmax(1), m.predict(X[:300]))
    # a net whose output width is not n_classes is reported
    with pytest.raises(ValueError, match="n_classes"):
        member_outputs(members, X[:10], n_classes=12)
    with pytest.raises(ValueError, match="n_classes"):
        member_outputs(members[:1], X[:10], n_classes=12)
    # X in another dtype than the nets were trained on: a clear error, not torch's
    for subset in (members, members[:1]):
        with pytest.raises(TypeError, match="float32"):
            member_outputs(subset, X[:10].astype(np.float64), n_classes=10)


def test_mixed_members(data):
    X, y, subsets = data
    net = NeuralNetClassifier(TinyMLP, criterion=torch.nn.CrossEntropyLoss, max_epochs=2, lr=0.1)
    m_net = fit_members(net, X, y, subsets[2:], n_classes=10, seed=0)
    m_lr = fit_members(
        LogisticRegression(max_iter=300), X, y, subsets[:1], n_classes=10, seed=0
    )
    out = member_outputs(m_lr + m_net, X[:30], n_classes=10)
    np.testing.assert_allclose(out[:, 1], m_net[0].forward(X[:30]).numpy(), rtol=1e-6)
    np.testing.assert_allclose(out[:, 0, :3], m_lr[0].predict_proba(X[:30]))


class FlagMLP(TinyMLP):
    def __init__(self, softmax=False):
        super().__init__()
        self.softmax = softmax

    def forward(self, x):
        out = super().forward(x)
        return torch.softmax(out, -1) if self.softmax else out


def test_nets_with_different_module_arguments_are_not_stacked(data):
    """Same parameter shapes but different module kwargs: each net keeps its own forward."""
    X, y, subsets = data
    kw = dict(criterion=torch.nn.CrossEntropyLoss, max_epochs=1, lr=0.1)
    a = fit_members(
        NeuralNetClassifier(FlagMLP, **kw), X, y, subsets[2:], n_classes=10, seed=0
    )
    b = fit_members(
        NeuralNetClassifier(FlagMLP, module__softmax=True, **kw),
        X,
        y,
        subsets[2:],
        n_classes=10,
        seed=0,
    )
    out = member_outputs(a + b, X[:20], n_classes=10)
    np.testing.assert_allclose(out[:, 1], b[0].forward(X[:20]).numpy(), rtol=1e-6)
    np.testing.assert_allclose(out[:, 1].sum(1), 1.0, rtol=1e-5)


def _scoring_net():
    return NeuralNetClassifier(
        TinyMLP,
        module__hidden=64,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=2,
        batch_size=16,
        lr=0.1,
    )


def _shift_view(X, row_ids, member_ids, seeds):
    """A test-time view: a per-member shift from the member's seed."""
    return X + ((seeds % 5).to(X.dtype) / 50.0).reshape(-1, *([1] * (X.ndim - 1)))


@pytest.mark.parametrize("view", [None, _shift_view], ids=["plain", "view"])
def test_a_loop_member_scores_the_same_bits_alone_and_among_others(view):
    """Scored alone, member j gives bit for bit its column among 8 (a plain forward of one net
    and a vmapped forward of several differed in the last bits, 1.2e-7)."""
    X, y = load_digits()
    rows = [np.arange(100 * j, 100 * (j + 1)) for j in range(8)]
    members = fit_members(_scoring_net(), X, y, rows, n_classes=10, seed=0, engine="loop")
    kw = dict(n_classes=10, view=view, seed=0)
    together = member_outputs(members, X, member_ids=range(8), **kw)
    for j in range(8):
        alone = member_outputs([members[j]], X, member_ids=[j], **kw)
        assert np.array_equal(alone[:, 0], together[:, j])


def test_a_stacked_member_scores_the_same_bits_alone_and_among_others():
    """A StackedMembers holding member j alone scores it as the one holding all 8 does."""
    from sklearn_certify.ensemble import MemberPlan

    X, y = load_digits()
    plan = MemberPlan([np.arange(100 * j, 100 * (j + 1)) for j in range(8)])
    kw = dict(n_classes=10, seed=0, engine="vectorized")
    together = member_outputs(fit_members(_scoring_net(), X, y, plan, **kw), X, n_classes=10)
    for j in (0, 5):
        alone = fit_members(_scoring_net(), X, y, plan.select([j]), **kw)
        assert np.array_equal(member_outputs(alone, X, n_classes=10)[:, 0], together[:, j])
