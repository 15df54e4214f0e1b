"""Which rows each member trains on: DPA partitions, FA buckets and shifts, degenerate cases."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

from sklearn_certify import DPAClassifier
from sklearn_certify.bounds import dpa_radius, fa_radius, fa_shifts
from sklearn_certify.datasets import load_digits
from sklearn_certify.partition import bucket_of_rows, plan_partitions, row_digests


@pytest.fixture(autouse=True)
def _one_thread():
    """OpenMP/BLAS threads oversubscribe the cores under ``pytest -n 2``; one per worker."""
    with threadpool_limits(1):
        yield


class Recorder(ClassifierMixin, BaseEstimator):
    """Remembers exactly what it was trained on; predicts its first training label."""

    def fit(self, X, y):
        self.X_ = np.array(X, copy=True)
        self.y_ = np.array(y, copy=True)
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        proba = np.zeros((len(X), len(self.classes_)))
        proba[:, np.searchsorted(self.classes_, self.y_[0])] = 1.0
        return proba

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


@pytest.fixture(scope="module")
def digits():
    return load_digits(split="train")


def _key(rows, labels):
    return sorted(zip((r.tobytes() for r in rows), labels.tolist(), strict=True))


def test_dpa_members_train_on_their_hash_partition_in_content_order(digits):
    X, y = digits
    k = 7
    clf = DPAClassifier(Recorder(), n_partitions=k, random_state=0).fit(X, y)
    buckets = bucket_of_rows(X, k)
    assert np.array_equal(clf.assign_partitions(X), buckets)
    assert np.array_equal(clf.learner_buckets_[:, 0], np.arange(k))
    for j, member in enumerate(clf.estimators_):
        rows = buckets == j
        assert clf.member_sizes_[j] == rows.sum()
        assert _key(member.X_, member.y_) == _key(X[rows], y[rows])
        # Content order: sorted by (SHA-256 digest, label), independent of where rows sat in X.
        digests = [d.hex() for d in row_digests(member.X_)]
        assert list(zip(digests, member.y_.tolist(), strict=True)) == sorted(
            zip(digests, member.y_.tolist(), strict=True)
        )


@pytest.mark.parametrize(("k", "d"), [(3, 2), (5, 3)])
def test_fa_learners_train_on_buckets_given_by_shifts(digits, k, d):
    X, y = digits
    X, y = X[:400], y[:400]
    clf = DPAClassifier(Recorder(), n_partitions=k, spread=d, random_state=0).fit(X, y)
    n = k * d
    shifts = fa_shifts(k, d)
    assert np.array_equal(clf.shifts_, shifts)
    buckets = bucket_of_rows(X, n)
    assert np.array_equal(clf.assign_partitions(X), buckets)
    assert len(clf.estimators_) == n
    for j, member in enumerate(clf.estimators_):
        own = np.isin(buckets, (j - shifts) % n)
        assert _key(member.X_, member.y_) == _key(X[own], y[own])
    # Every row trains exactly the d learners (bucket + s) mod n.
    seen = np.zeros((X.shape[0], n), dtype=bool)
    index = {r.tobytes(): i for i, r in enumerate(X)}
    for j, member in enumerate(clf.estimators_):
        for r in member.X_:
            seen[index[r.tobytes()], j] = True
    expected = np.zeros_like(seen)
    for i, b in enumerate(buckets):
        expected[i, (b + shifts) % n] = True
    assert np.array_equal(seen, expected)


def test_explicit_shifts_are_used_and_validated(digits):
    X, y = digits
    clf = DPAClassifier(Recorder(), n_partitions=3, spread=2, shifts=[0, 2]).fit(X[:200], y[:200])
    assert clf.shifts_.tolist() == [0, 2]
    assert np.array_equal(clf.learner_buckets_, (np.arange(6)[:, None] - [0, 2]) % 6)
    for bad, err in [
        ([0, 0], ValueError),
        ([0, 6], ValueError),
        ([1], ValueError),
        ([0.5, 1], TypeError),
    ]:
        with pytest.raises(err, match="shifts"):
            DPAClassifier(Recorder(), n_partitions=3, spread=2, shifts=bad).fit(X[:200], y[:200])


@pytest.mark.parametrize("spread", [1, 2])
def test_other_members_bit_identical_after_insert_and_delete(digits, spread):
    """Partition independence (user guide, rule-independence) at estimator level.

    Poisoning one partition leaves every other member alone."""
    X, y = digits
    X, y = X[:600], y[:600]
    base = DecisionTreeClassifier(max_features=0.5)  # randomized, so seeds matter
    kw = dict(n_partitions=6, spread=spread, random_state=3)
    clean = DPAClassifier(base, **kw).fit(X, y)
    new_row = X[:1] * 0.5 + 0.01
    n = 6 * spread
    bucket = bucket_of_rows(new_row, n)[0]
    touched = set(((bucket + clean.shifts_) % n).tolist())
    inserted = DPAClassifier(base, **kw).fit(np.vstack([X, new_row]), np.append(y, 3))
    perm = np.random.default_rng(0).permutation(X.shape[0] - 1) + 1
    deleted_bucket = bucket_of_rows(X[:1], n)[0]
    touched_del = set(((deleted_bucket + clean.shifts_) % n).tolist())
    deleted = DPAClassifier(base, **kw).fit(X[perm], y[perm])  # row 0 deleted, others shuffled
    for poisoned, hit in [(inserted, touched), (deleted, touched_del)]:
        for j in range(n):
            a, b = clean.estimators_[j].tree_, poisoned.estimators_[j].tree_
            same = (
                a.node_count == b.node_count
                and np.array_equal(a.threshold, b.threshold)
                and np.array_equal(a.feature, b.feature)
                and np.array_equal(a.value, b.value)
            )
            if j not in hit:
                assert same, f"member {j} changed although the poison did not touch it"
        assert any(clean.member_sizes_[j] != poisoned.member_sizes_[j] for j in hit)


def _degenerate_data(spec, k):
    """Integer rows whose pixel sums put them in chosen partitions of k buckets."""
    rng = np.random.default_rng(0)
    rows, labels = [], []
    for partition, label_pool in spec:
        for _ in range(30):
            row = rng.integers(0, 20, size=5)
            row[0] += (partition - row.sum()) % k  # make sum % k == partition
            rows.append(row)
            labels.append(rng.choice(label_pool))
    return np.array(rows, dtype=float), np.array(labels)


def test_empty_partition_abstains_and_single_class_partition_is_constant():
    X, y = _degenerate_data([(0, [0, 1]), (1, [2]), (3, [0, 1, 2])], 4)
    with pytest.warns(UserWarning, match="1 of 4 partitions are empty"):
        clf = DPAClassifier(
            DecisionTreeClassifier(), n_partitions=4, hash="pixel_sum", random_state=0
        ).fit(X, y)
    assert clf.member_status_.tolist() == ["trained", "constant", "abstain", "trained"]
    assert clf.member_sizes_.tolist() == [30, 30, 0, 30]
    X_test = np.random.default_rng(1).integers(0, 20, size=(25, 5)).astype(float)
    members = clf.predict_members(X_test)
    assert members.mask[:, 2].all() and not members.mask[:, [0, 1, 3]].any()
    assert np.all(members[:, 1] == 2)  # the constant member predicts its only class
    cert = clf.certify(X_test)
    assert np.all(cert.votes.sum(axis=1) == 3)  # the abstaining member votes for no class
    pred, radius = dpa_radius(cert.votes)
    assert np.array_equal(cert.prediction, clf.classes_[pred])
    assert np.array_equal(cert.radius, radius)
    assert not cert.abstain.any()
    proba = clf.predict_proba(X_test)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert np.allclose(proba * 3, cert.votes)


def test_fa_abstaining_learner_counts_as_abstain_code():
    # k=2, d=2, shifts [0, 1]: learner j trains on buckets j and j-1 (mod 4). Only buckets 0 and
    # 1 hold data, so learner 3 (buckets 3 and 2) is empty and abstains.
    X, y = _degenerate_data([(0, [0, 1]), (1, [0, 1])], 4)
    with pytest.warns(UserWarning, match="1 of 4 partitions are empty"):
        clf = DPAClassifier(
            DecisionTreeClassifier(),
            n_partitions=2,
            spread=2,
            shifts=[0, 1],
            hash="pixel_sum",
            random_state=0,
        ).fit(X, y)
    assert clf.member_status_.tolist() == ["trained", "trained", "trained", "abstain"]
    assert clf.member_sizes_.tolist() == [30, 60, 30, 0]
    X_test = np.random.default_rng(2).integers(0, 20, size=(30, 5)).astype(float)
    members = clf.predict_members(X_test)
    learner_preds = np.where(members.mask, -1, np.searchsorted(clf.classes_, members.data))
    assert np.all(learner_preds[:, 3] == -1)
    pred, radius = fa_radius(learner_preds, 2, 2, 2, shifts=[0, 1])
    cert = clf.certify(X_test)
    assert np.array_equal(cert.radius, radius)
    assert np.array_equal(cert.prediction, clf.classes_[pred])
    assert np.all(cert.votes.sum(axis=1) == 3)


def test_label_flip_partitions_match_official_round_robin():
    """SS-DPA dealing = the official ``idxs = np.lexsort(X.T); partition i = idxs[i::k]``."""
    X, y = load_digits(raw=True)
    X, first = np.unique(X, axis=0, return_index=True)  # SS-DPA needs distinct rows
    y = y[first]
    perm = np.random.default_rng(0).permutation(X.shape[0])
    X, y = X[perm], y[perm]
    k = 7
    clf = DPAClassifier(Recorder(), n_partitions=k, threat_model="label_flip").fit(X, y)
    parts = clf.assign_partitions(X)
    official = np.lexsort(X.T)
    for i in range(k):
        assert set(official[i::k].tolist()) == set(np.flatnonzero(parts == i).tolist())
    assert np.array_equal(clf.member_sizes_, np.bincount(parts))


@pytest.mark.parametrize(
    "params",
    [
        dict(n_partitions=9),
        dict(n_partitions=5, spread=3),
        dict(n_partitions=6, threat_model="label_flip"),
    ],
    ids=["dpa", "fa", "ss-dpa"],
)
def test_plan_partitions_is_pure_and_is_what_the_estimator_uses(digits, params):
    X, y = digits
    X_before, y_before = X.copy(), y.copy()
    first = plan_partitions(X, y, **params)
    again = plan_partitions(X, y, **params)
    assert np.array_equal(X, X_before) and np.array_equal(y, y_before)  # inputs untouched
    assert np.array_equal(first.rows, again.rows) and np.array_equal(first.offsets, again.offsets)
    with pytest.raises(ValueError, match="read-only"):
        first.rows[0] = 1
    with pytest.raises(AttributeError):
        first.spread = 4  # frozen
    clf = DPAClassifier(Recorder(), random_state=0, **params).fit(X, y)
    assert len(clf.member_rows_) == first.n_members
    for rows, planned in zip(clf.member_rows_, first.member_rows, strict=True):
        assert np.array_equal(rows, planned)
    assert np.array_equal(clf.shifts_, first.shifts)
    assert np.array_equal(clf.learner_buckets_, first.learner_buckets)
    assert np.array_equal(clf.member_sizes_, first.sizes)
    # every row trains spread members: the plan covers each row exactly d times
    counts = np.bincount(first.rows, minlength=len(X))
    assert np.all(counts == params.get("spread", 1))


def test_member_rows_are_exactly_what_each_member_saw(digits):
    X, y = digits
    clf = DPAClassifier(Recorder(), n_partitions=5, spread=2, random_state=0).fit(X, y)
    for rows, member in zip(clf.member_rows_, clf.estimators_, strict=True):
        assert np.array_equal(member.X_, X[rows]) and np.array_equal(member.y_, y[rows])


@pytest.mark.parametrize("engine", ["loop", "vectorized"])
def test_refit_one_member_on_its_recorded_rows_is_bit_identical(engine):
    """member_rows_ + seed_ + the member id regenerate a member exactly (both engines)."""
    import torch
    from skorch import NeuralNetClassifier

    from sklearn_certify.ensemble import MemberPlan, fit_members
    from tests._ensemble_helpers import TinyMLP

    X, y = load_digits(split="train")
    X, y = X[:600], y[:600]
    net = NeuralNetClassifier(
        TinyMLP,
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=3,
        batch_size=16,
        lr=0.1,
        optimizer__momentum=0.9,
        iterator_train__shuffle=True,
    )
    clf = DPAClassifier(net, n_partitions=6, spread=2, engine=engine, random_state=3).fit(X, y)
    y_enc = np.searchsorted(clf.classes_, y)
    n_members = len(clf.member_rows_)
    for j in (0, 7, n_members - 1):
        plan = MemberPlan([clf.member_rows_[j]], member_ids=[j], n_members_total=n_members)
        (again,) = fit_members(
            net, X, y_enc, plan, n_classes=10, seed=clf.seed_, engine=engine
        )
        for p, q in zip(
            clf.estimators_[j].module_.parameters(), again.module_.parameters(), strict=True
        ):
            assert torch.equal(p, q), j
