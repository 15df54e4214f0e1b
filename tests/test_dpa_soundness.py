"""End-to-end soundness on real data: poison within the radius, refit, the prediction holds.

The base learner is 1-nearest-neighbour, which makes the attack as strong as it can be per
member: one inserted copy of the test point (slightly perturbed so that its hash lands in the
chosen partition) with a flipped label turns that member's vote, and flipping the label of a
partition's nearest row does the same under the label-flip threat model. Attacks one poison
beyond the radius do flip the DPA prediction, so the attacks are not vacuous.
"""

import warnings

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import threadpool_limits

from sklearn_certify import DPAClassifier
from sklearn_certify.datasets import load_digits
from sklearn_certify.partition import bucket_of_rows


@pytest.fixture(autouse=True)
def _one_thread():
    """OpenMP/BLAS threads oversubscribe the cores under ``pytest -n 2``; one per worker."""
    with threadpool_limits(1):
        yield


N_POINTS = 6


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(split="train")
    X_test, _ = load_digits(split="test")
    # Keep test points with no near-duplicate in the training set, so a perturbed copy
    # (distance < 0.05) is always a member's nearest neighbour.
    dist = np.sqrt(((X_test[:, None, :] - X[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
    return X, y, X_test[dist > 0.2]


def _copy_into_bucket(x, bucket, n_buckets):
    """A copy of row x, moved by < 0.05 in one coordinate, whose digest bucket is ``bucket``."""
    steps = np.arange(1, 4001)
    candidates = np.repeat(x[None, :], steps.size, axis=0)
    candidates[np.arange(steps.size), steps % x.size] += (1e-5 * steps).astype(x.dtype)
    hits = np.flatnonzero(bucket_of_rows(candidates, n_buckets) == bucket)
    assert hits.size, "no perturbation found"
    return candidates[hits[0]]


def _target_class(votes, pred):
    """The challenger that needs the fewest poisons (the class behind the DPA radius)."""
    idx = np.arange(votes.size)
    gaps = votes[pred] - votes - (idx < pred)
    gaps[pred] = np.iinfo(np.int64).max
    return int(np.argmin(gaps))


def _certified_points(clf, X_test, min_radius=1):
    cert = clf.certify(X_test)
    chosen = np.flatnonzero(cert.radius >= min_radius)[:N_POINTS]
    assert chosen.size == N_POINTS, "not enough certified points to attack"
    return cert, chosen


def _insertion_attack(clf, X, y, x, budget, params):
    """Insert ``budget`` label-flipped copies of x into the buckets hurting the prediction most."""
    cert = clf.certify(x[None, :])
    pred = int(np.searchsorted(clf.classes_, cert.prediction[0]))
    target = _target_class(cert.votes[0], pred)
    n = clf.n_partitions * clf.spread
    members = clf.predict_members(x[None, :])[0]
    vote_idx = np.where(members.mask, -1, np.searchsorted(clf.classes_, members.data))
    # Power of a bucket = how much turning its learners to `target` closes the gap.
    learners = (np.arange(n)[:, None] + clf.shifts_[None, :]) % n
    power = np.where(vote_idx == pred, 2, np.where(vote_idx == target, 0, 1))[learners].sum(axis=1)
    buckets = np.argsort(-power, kind="stable")[:budget]
    poison = np.array([_copy_into_bucket(x, b, n) for b in buckets]).reshape(len(buckets), -1)
    X_p = np.vstack([X, poison])
    y_p = np.concatenate([y, np.full(len(buckets), clf.classes_[target])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return DPAClassifier(KNeighborsClassifier(1), **params).fit(X_p, y_p), pred


@pytest.mark.parametrize(
    "params",
    [
        dict(n_partitions=25),
        dict(n_partitions=10, spread=2),
        dict(n_partitions=15, election="runoff"),
    ],
    ids=["dpa", "fa", "runoff"],
)
def test_insertions_within_radius_never_change_prediction(data, params):
    X, y, X_test = data
    params = dict(params, random_state=0)
    clf = DPAClassifier(KNeighborsClassifier(1), **params).fit(X, y)
    cert, chosen = _certified_points(clf, X_test)
    for i in chosen:
        r = int(cert.radius[i])
        poisoned, _ = _insertion_attack(clf, X, y, X_test[i], r, params)
        assert poisoned.predict(X_test[i : i + 1])[0] == cert.prediction[i]
        if "spread" not in params and "election" not in params:
            # One more poison than certified flips DPA: the attack is real and the radius tight.
            beyond, _ = _insertion_attack(clf, X, y, X_test[i], r + 1, params)
            assert beyond.predict(X_test[i : i + 1])[0] != cert.prediction[i]


def test_deletions_and_insertions_with_degenerate_partitions(data):
    """Empty and single-class partitions: poison them and the voting ones within the radius."""
    X, y, X_test = data
    k = 25
    buckets = bucket_of_rows(X, k)
    keep = ~np.isin(buckets, [3, 4])  # partitions 3 and 4 become empty
    majority = np.bincount(y[buckets == 5]).argmax()
    keep &= ~((buckets == 5) & (y != majority))  # partition 5 becomes single-class
    Xd, yd = X[keep], y[keep]
    params = dict(n_partitions=k, random_state=0)
    with pytest.warns(UserWarning, match="2 of 25 partitions are empty"):
        clf = DPAClassifier(KNeighborsClassifier(1), **params).fit(Xd, yd)
    assert clf.member_status_[[3, 4, 5]].tolist() == ["abstain", "abstain", "constant"]
    cert, chosen = _certified_points(clf, X_test)
    bd = bucket_of_rows(Xd, k)
    for i in chosen:
        x, r = X_test[i], int(cert.radius[i])
        pred = int(np.searchsorted(clf.classes_, cert.prediction[i]))
        target = _target_class(cert.votes[i], pred)
        # Fill the empty partitions first (each then votes `target`), then delete the nearest
        # row of partitions voting `pred` and insert copies into others voting `pred`.
        members = clf.predict_members(x[None, :])[0]
        voting_pred = [
            j for j in range(k) if not members.mask[j] and members[j] == clf.classes_[pred]
        ]
        plan = [("insert", 3), ("insert", 4)][:r]
        for j in voting_pred[: r - len(plan)]:
            plan.append(("delete", j) if len(plan) % 2 else ("insert", j))
        X_p, y_p, drop = Xd, yd, []
        for op, j in plan:
            if op == "insert":
                X_p = np.vstack([X_p, _copy_into_bucket(x, j, k)[None, :]])
                y_p = np.append(y_p, clf.classes_[target])
            else:
                rows = np.flatnonzero(bd == j)
                drop.append(rows[np.argmin(((Xd[rows] - x) ** 2).sum(axis=1))])
        mask = np.ones(X_p.shape[0], dtype=bool)
        mask[drop] = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            poisoned = DPAClassifier(KNeighborsClassifier(1), **params).fit(X_p[mask], y_p[mask])
        assert len(plan) == r
        assert poisoned.predict(x[None, :])[0] == cert.prediction[i]


def test_label_flips_within_radius_never_change_prediction(data):
    X, y, X_test = data
    params = dict(n_partitions=25, threat_model="label_flip", random_state=0)
    clf = DPAClassifier(KNeighborsClassifier(1), **params).fit(X, y)
    parts = clf.assign_partitions(X)
    assert parts.min() == 0 and np.all(np.bincount(parts) >= X.shape[0] // 25)
    cert, chosen = _certified_points(clf, X_test)
    assert cert.unit == "label_flips"
    for i in chosen:
        x, r = X_test[i], int(cert.radius[i])
        pred = int(np.searchsorted(clf.classes_, cert.prediction[i]))
        target = clf.classes_[_target_class(cert.votes[i], pred)]
        members = clf.predict_members(x[None, :])[0]
        voting_pred = [j for j in range(25) if members[j] == cert.prediction[i]]
        for budget, should_hold in [(r, True), (r + 1, False)]:
            y_p = y.copy()
            for j in voting_pred[:budget]:
                rows = np.flatnonzero(parts == j)
                y_p[rows[np.argmin(((X[rows] - x) ** 2).sum(axis=1))]] = target
            assert np.sum(y_p != y) == budget
            poisoned = DPAClassifier(KNeighborsClassifier(1), **params).fit(X, y_p)
            holds = poisoned.predict(x[None, :])[0] == cert.prediction[i]
            assert holds == should_hold


@pytest.mark.parametrize(
    ("params", "status"),
    [
        (dict(n_partitions=20, election="runoff"), ["abstain", "abstain", "constant"]),
        (dict(n_partitions=10, spread=2, shifts=[0, 1]), ["trained", "abstain", "constant"]),
    ],
    ids=["runoff", "fa"],
)
def test_degenerate_partitions_under_runoff_and_fa(data, params, status):
    """Empty buckets (members abstaining in both run-off rounds, abstain code under FA) stay
    sound when an attacker poisons within the radius."""
    X, y, X_test = data
    n = params["n_partitions"] * params.get("spread", 1)
    buckets = bucket_of_rows(X, n)
    keep = ~np.isin(buckets, [3, 4])  # with shifts [0, 1], FA learner 4 trains buckets 4 and 3
    majority = np.bincount(y[buckets == 5]).argmax()
    keep &= ~((buckets == 5) & (y != majority))
    Xd, yd = X[keep], y[keep]
    params = dict(params, random_state=0)
    with pytest.warns(UserWarning, match="partitions are empty"):
        clf = DPAClassifier(KNeighborsClassifier(1), **params).fit(Xd, yd)
    assert clf.member_status_[[3, 4, 5]].tolist() == status
    cert, chosen = _certified_points(clf, X_test)
    if params.get("election") == "runoff":
        # The reported round-one votes leave out the empty members, as the election does.
        n_abstain = int(np.sum(clf.member_status_ == "abstain"))
        assert n_abstain == 2 and np.all(cert.votes.sum(axis=1) == n - n_abstain)
    for i in chosen:
        poisoned, _ = _insertion_attack(clf, Xd, yd, X_test[i], int(cert.radius[i]), params)
        assert poisoned.predict(X_test[i : i + 1])[0] == cert.prediction[i]


def test_exhaustive_insertions_on_small_ensemble():
    """Every placement of up to ``radius`` label-flipped copies, with every label choice."""
    from itertools import combinations, product

    X, y = load_digits(digits=(1, 4, 7), split="train")
    X_test, _ = load_digits(digits=(1, 4, 7), split="test")
    k = 5
    params = dict(n_partitions=k, random_state=0)
    clf = DPAClassifier(KNeighborsClassifier(1), **params).fit(X, y)
    cert = clf.certify(X_test)
    points = (
        np.flatnonzero(cert.radius == 2)[:2].tolist()
        + np.flatnonzero(cert.radius == 1)[:1].tolist()
    )
    assert len(points) == 3
    n_attacks = 0
    for i in points:
        x, r = X_test[i], int(cert.radius[i])
        copies = {j: _copy_into_bucket(x, j, k) for j in range(k)}
        for size in range(1, r + 1):
            for parts in combinations(range(k), size):
                for labels in product(clf.classes_, repeat=size):
                    X_p = np.vstack([X, *(copies[j][None, :] for j in parts)])
                    y_p = np.concatenate([y, labels])
                    poisoned = DPAClassifier(KNeighborsClassifier(1), **params).fit(X_p, y_p)
                    assert poisoned.predict(x[None, :])[0] == cert.prediction[i]
                    n_attacks += 1
    assert n_attacks == 2 * (5 * 3 + 10 * 9) + 5 * 3
