"""BaseCertifiedEnsemble: a subclass supplying only a plan and a certificate is a full estimator."""

import pickle
import warnings
from typing import ClassVar

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_certify import bounds
from sklearn_certify.ensemble import (
    ALL_ROWS,
    AbstainMember,
    BaseCertifiedEnsemble,
    ConstantMember,
    MemberPlan,
    member_seed,
)
from tests._ensemble_helpers import first_digits, keyed_noise


class BlockVote(BaseCertifiedEnsemble):
    """Members on interleaved row blocks (row i -> member i % n_blocks), certified like DPA.

    Not a sound poisoning defence (a row's member depends on its position): a fixture that
    exercises the base class with a row plan.
    """

    _certificate_unit = "samples"

    def __init__(self, estimator, n_blocks=3, engine="auto", random_state=None, n_jobs=None):
        super().__init__(estimator, engine=engine, random_state=random_state, n_jobs=n_jobs)
        self.n_blocks = n_blocks

    def _member_plan(self, X, y_encoded):
        n = X.shape[0]
        return MemberPlan([np.arange(j, n, self.n_blocks) for j in range(self.n_blocks)])

    def _aggregate(self, scores, abstain):
        votes = bounds.fa_vote_counts(self._learner_votes(scores, abstain), scores.shape[2])
        if votes.shape[1] == 1:
            votes = np.concatenate([votes, np.zeros_like(votes)], axis=1)
        prediction, radius = bounds.dpa_radius(votes)
        return dict(prediction=prediction, radius=radius, abstain=votes.sum(1) == 0)


def small_offset(X, row_ids, member_ids, seeds):
    """Test view: a fixed per-member offset in [0, 0.06] of every feature."""
    assert row_ids is None
    return X + ((seeds % 7).to(X.dtype) / 100.0).reshape(-1, *([1] * (X.ndim - 1)))


class NoisyVote(BaseCertifiedEnsemble):
    """Every member on all rows through its own keyed noise, scored through a test view."""

    _certificate_unit = "samples"
    _parameter_constraints: ClassVar[dict] = {
        **BaseCertifiedEnsemble._parameter_constraints,
        "n_members": [int],
    }

    def __init__(self, estimator, n_members=4, random_state=None):
        super().__init__(estimator, random_state=random_state)
        self.n_members = n_members

    def _member_plan(self, X, y_encoded):
        return MemberPlan(ALL_ROWS, member_ids=range(self.n_members), view=keyed_noise)

    def _test_view(self):
        return small_offset

    _aggregate = BlockVote._aggregate


@pytest.fixture(scope="module")
def digits():
    return first_digits(400)


@parametrize_with_checks(
    [BlockVote(DecisionTreeClassifier()), NoisyVote(LogisticRegression(max_iter=200))]
)
def test_subclasses_are_sklearn_estimators(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)


def test_base_class_is_abstract():
    with pytest.raises(TypeError, match="abstract"):
        BaseCertifiedEnsemble(DecisionTreeClassifier())


def test_row_plan_members_scores_votes_and_certificate(digits):
    X, y = digits
    clf = BlockVote(LogisticRegression(max_iter=300), n_blocks=5, random_state=0).fit(X, y)
    assert clf.member_status_.tolist() == ["trained"] * 5
    member = clf.estimators_[2]
    np.testing.assert_allclose(
        member.coef_, LogisticRegression(max_iter=300).fit(X[2::5], y[2::5]).coef_
    )
    scores = clf.member_scores(X[:20])
    assert scores.shape == (20, 5, 10)
    votes = clf.predict_members(X[:20])
    assert np.array_equal(votes.data, clf.classes_[scores.argmax(2)])
    counts = np.stack([(votes.data == c).sum(1) for c in clf.classes_], axis=1)
    np.testing.assert_allclose(clf.predict_proba(X[:20]), counts / 5)
    cert = clf.certify(X[:20])
    prediction, radius = bounds.dpa_radius(counts)
    assert np.array_equal(cert.prediction, clf.classes_[prediction])
    assert np.array_equal(cert.radius, radius) and cert.unit == "samples"
    assert np.array_equal(clf.predict(X[:20]), cert.prediction)
    assert clf.score(X[:20], y[:20]) == np.mean(cert.prediction == y[:20])


def test_degenerate_members_get_stand_ins(digits):
    X, y = digits
    X, y = X[:4], np.array([3, 3, 5, 3])
    clf = BlockVote(DecisionTreeClassifier(), n_blocks=6, random_state=0).fit(X, y)
    # blocks 0, 1, 3 hold one row of label 3, block 2 a row of 5, blocks 4 and 5 nothing
    assert clf.member_status_.tolist() == ["constant"] * 4 + ["abstain"] * 2
    assert isinstance(clf.estimators_[2], ConstantMember)
    assert isinstance(clf.estimators_[5], AbstainMember)
    assert clf.predict_members(X).mask[:, 4:].all()
    assert clf.certify(X).votes is None  # extras are the subclass's choice


def test_all_rows_view_and_test_view(digits):
    X, y = digits
    clf = NoisyVote(LogisticRegression(max_iter=300), n_members=3, random_state=1).fit(X, y)
    # the members differ only through their training noise
    assert not np.allclose(clf.estimators_[0].coef_, clf.estimators_[1].coef_)
    # scoring goes through the test view: member j sees X + its own offset
    scores = clf.member_scores(X[:10])
    for j, member in enumerate(clf.estimators_):
        offset = (member_seed(clf.seed_, j, "test_view") % 7) / 100.0
        np.testing.assert_allclose(scores[:, j], member.predict_proba(X[:10] + offset))


def test_pickle_keeps_members_and_drops_the_lazy_list(digits):
    X, y = digits
    clf = BlockVote(DecisionTreeClassifier(), random_state=0).fit(X, y)
    _ = clf.estimators_
    state = clf.__getstate__()
    assert state["_estimators"] is None
    again = pickle.loads(pickle.dumps(clf))
    assert np.array_equal(again.certify(X).radius, clf.certify(X).radius)
    assert len(again.estimators_) == 3


def test_unfitted_estimators_attribute_error():
    with pytest.raises(AttributeError, match="not fitted"):
        _ = BlockVote(DecisionTreeClassifier()).estimators_


# ------------------------------------------------------------------ one fit pipeline
def test_ensemble_modules_never_import_the_package_face():
    """``ensemble/_*.py`` import their siblings, never ``sklearn_certify.ensemble`` itself."""
    import ast
    from pathlib import Path

    import sklearn_certify.ensemble as ensemble

    for path in Path(ensemble.__file__).parent.glob("_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "sklearn_certify.ensemble", path.name
            elif isinstance(node, ast.Import):
                assert "sklearn_certify.ensemble" not in [a.name for a in node.names], path.name


def test_fit_validates_once_and_trains_without_rechecking(monkeypatch):
    """The base validates X, y and the estimator; training does not run fit_members' checks."""
    import sklearn_certify.ensemble._fit as fit_module

    def refuse(*args, **kwargs):
        raise AssertionError("fit_members' input checks ran inside an estimator's fit")

    monkeypatch.setattr(fit_module, "_check_inputs", refuse)
    X, y = first_digits(120)
    clf = BlockVote(DecisionTreeClassifier(), n_blocks=3, random_state=0).fit(X, y)
    assert len(clf.estimators_) == 3


def test_nested_net_sharing_weights_is_refused_by_the_estimator_check(monkeypatch):
    """A Pipeline's skorch net holding a module instance is refused before planning."""
    import torch
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from skorch import NeuralNetClassifier

    from tests._ensemble_helpers import TinyMLP

    def refuse(*args, **kwargs):
        raise AssertionError("the plan was made before the estimator was refused")

    monkeypatch.setattr(BlockVote, "_member_plan", refuse)
    net = NeuralNetClassifier(TinyMLP(), criterion=torch.nn.CrossEntropyLoss)
    X, y = first_digits(60)
    with pytest.raises(TypeError, match=r"estimator \(skorch net #\d\).*nn\.Module instance"):
        BlockVote(make_pipeline(FunctionTransformer(), net)).fit(X.astype(np.float32), y)
