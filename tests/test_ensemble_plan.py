"""Member plans: validation, all-rows members, per-member views in both engines, member_seed."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier
from skorch import NeuralNetClassifier

import sklearn_certify.ensemble._vectorized as vectorized
from sklearn_certify.ensemble import (
    ALL_ROWS,
    MemberPlan,
    StackedMembers,
    fit_members,
    member_outputs,
    member_seed,
)
from sklearn_certify.ensemble._loop import member_batches
from sklearn_certify.ensemble._seeding import PURPOSES, sklearn_seed
from tests._ensemble_helpers import TinyMLP, first_digits, keyed_noise


@pytest.fixture(scope="module")
def digits():
    return first_digits(300)


def _net(**kw):
    params = dict(
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=3,
        batch_size=16,
        lr=0.1,
        optimizer__momentum=0.9,
        iterator_train__shuffle=True,
    )
    params.update(kw)
    return NeuralNetClassifier(TinyMLP, **params)


def _params(net):
    return [p.detach().numpy().copy() for p in net.module_.parameters()]


class Recorder:
    """A view that records what it is called with and adds keyed noise."""

    def __init__(self):
        self.calls = []

    def __call__(self, X, row_ids, member_ids, seeds):
        self.calls.append((X.shape, row_ids, member_ids.clone(), seeds.clone()))
        return keyed_noise(X, row_ids, member_ids, seeds)


# ---------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(rows="some"), ValueError, "'all'"),
        (dict(rows=ALL_ROWS), ValueError, "member_ids"),
        (dict(rows=[np.arange(3)], member_ids=[0, 1]), ValueError, "one id per member"),
        (dict(rows=[np.arange(3)] * 2, member_ids=[1, 1]), ValueError, "unique"),
        (dict(rows=[np.arange(3)], member_ids=[-1]), ValueError, "non-negative"),
        (dict(rows=[np.arange(3)], member_ids=[0.5]), TypeError, "member_ids"),
        (dict(rows=[np.arange(3)], member_ids=[4], n_members_total=3), ValueError, "exceed"),
        (dict(rows=[np.arange(3)], n_members_total=0), ValueError, "n_members_total"),
        (dict(rows=[np.arange(3)], view="noise"), TypeError, "view"),
        (dict(rows=np.arange(3)), TypeError, "one flat array"),
        (dict(rows=[np.array([0.5])]), TypeError, "integer row indices"),
    ],
)
def test_plan_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        MemberPlan(**kwargs)


def test_plan_select_keeps_ids_total_and_view():
    view = Recorder()
    plan = MemberPlan([np.arange(2), np.arange(2, 5), np.arange(5, 6)], [3, 7, 9], 20, view)
    sub = plan.select([2, 0])
    assert sub.member_ids.tolist() == [9, 3] and sub.n_members_total == 20 and sub.view is view
    assert [r.tolist() for r in sub.rows] == [[5], [0, 1]]
    assert plan.sizes(10).tolist() == [2, 3, 1]
    everyone = MemberPlan(ALL_ROWS, member_ids=[0, 5])
    assert everyone.n_members_total == 6 and everyone.sizes(10).tolist() == [10, 10]
    assert everyone.member_rows(1) is None


def test_member_batches_group_members_per_task():
    assert [b.tolist() for b in member_batches(5, 1)] == [[0, 1, 2, 3, 4]]
    batches = member_batches(1000, 2)
    assert len(batches) == 8  # a few tasks per worker, never one per member
    assert np.array_equal(np.concatenate(batches), np.arange(1000))
    assert len(member_batches(3, 2)) == 3


# ---------------------------------------------------------------------------- member_seed
def test_member_seed_is_the_documented_seed_sequence_draw():
    """Every engine seed is SeedSequence([seed, member_id, word]) as documented (certificates
    of a given random_state stay what they were)."""
    for seed, mid in ((0, 0), (5, 17), (2**31, 10**6)):
        for purpose, word in PURPOSES.items():
            state = np.random.SeedSequence([seed, mid, word]).generate_state(2, dtype=np.uint32)
            expected = (int(state[0]) << 31) | (int(state[1]) >> 1)
            if purpose != "sklearn":
                assert member_seed(seed, mid, purpose) == expected < 2**63
        word = np.random.SeedSequence([seed, mid, PURPOSES["sklearn"]]).generate_state(1)[0]
        assert sklearn_seed(seed, mid) == int(word >> 1) < 2**31


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2**40),
    st.integers(0, 10**6),
    st.sampled_from([*PURPOSES, "my noise", "u"]),
)
def test_member_seed_is_a_function_of_its_arguments(seed, member_id, purpose):
    derived = member_seed(seed, member_id, purpose)
    assert derived == member_seed(seed, member_id, purpose)
    assert derived != member_seed(seed, member_id + 1, purpose)
    assert derived != member_seed(seed + 1, member_id, purpose)
    other = "test_view" if purpose != "test_view" else "view"
    assert derived != member_seed(seed, member_id, other)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((0, 0, ""), TypeError),
        ((0, 0, 3), TypeError),
        ((-1, 0, "view"), ValueError),
        ((0, True, "view"), TypeError),
        ((0, -2, "view"), ValueError),
    ],
)
def test_member_seed_bad_arguments(args, error):
    with pytest.raises(error):
        member_seed(*args)


# ---------------------------------------------------------------------------- all rows, views
def test_all_rows_members_see_every_row_in_both_engines(digits):
    X, y = digits
    plan = MemberPlan(ALL_ROWS, member_ids=[0, 1, 2])
    trees = fit_members(DecisionTreeClassifier(), X, y, plan, n_classes=10, seed=0)
    assert all(t.tree_.n_node_samples[0] == len(X) for t in trees)
    # members differ only through their seeds
    assert len({t.random_state for t in trees}) == 3
    kw = dict(n_classes=10, seed=0)
    loop = fit_members(_net(), X, y, plan, engine="loop", **kw)
    vec = fit_members(_net(), X, y, plan, engine="vectorized", chunk_size=2, **kw)
    for a, b in zip(loop, vec, strict=True):
        for p, q in zip(_params(a), _params(b), strict=True):
            np.testing.assert_allclose(p, q, atol=2e-5)


def test_vectorized_all_rows_keeps_one_copy_of_X(digits, monkeypatch):
    """A plan with all rows builds one row store per job (X itself), not one per chunk."""
    X, y = digits
    stores = []
    original = vectorized.row_store

    def recording(X_, y_, rows, device):
        stores.append(rows)
        return original(X_, y_, rows, device)

    monkeypatch.setattr(vectorized, "row_store", recording)
    fit_members(
        _net(),
        X,
        y,
        MemberPlan(ALL_ROWS, member_ids=range(6)),
        n_classes=10,
        seed=0,
        engine="vectorized",
        chunk_size=2,
    )
    assert stores == [None]  # three chunks, one store holding X


@pytest.mark.parametrize("engine", ["loop", "vectorized"])
def test_view_gets_row_ids_member_ids_and_view_seeds(digits, engine):
    X, y = digits
    rows = [np.arange(0, 40), np.arange(100, 130)]
    view = Recorder()
    plan = MemberPlan(rows, member_ids=[3, 5], n_members_total=6, view=view)
    fit_members(_net(), X, y, plan, n_classes=10, seed=11, engine=engine, chunk_size=6)
    seen = {}
    for shape, row_ids, member_ids, seeds in view.calls:
        assert row_ids.shape == shape[:2]
        for slot, mid in enumerate(member_ids.tolist()):
            if mid < 0:  # a placeholder slot of the vectorized engine
                assert int(seeds[slot]) == 0
                continue
            assert int(seeds[slot]) == member_seed(11, mid, "view")
            seen.setdefault(mid, set()).update(row_ids[slot].tolist())
    assert seen == {3: set(rows[0].tolist()), 5: set(rows[1].tolist())}
    if engine == "loop":  # once per member, on all its rows
        assert [tuple(c[0][:2]) for c in view.calls] == [(1, 40), (1, 30)]
    else:  # once per step, on (chunk_size, batch_size) batches
        assert {tuple(c[0][:2]) for c in view.calls} == {(6, 16)}
        assert len(view.calls) == 3 * 3  # 3 epochs x ceil(40 / 16) steps


def test_view_is_a_fixed_function_of_member_and_row_across_epochs(digits):
    """Every epoch of a member sees the same transformed rows (one noisy copy per member)."""
    X, y = digits
    seen: dict = {}

    def view(Xb, row_ids, member_ids, seeds):
        out = keyed_noise(Xb, row_ids, member_ids, seeds)
        for slot, mid in enumerate(member_ids.tolist()):
            for r, x in zip(row_ids[slot].tolist(), out[slot], strict=True):
                seen.setdefault((mid, r), []).append(x.clone())
        return out

    plan = MemberPlan(ALL_ROWS, member_ids=[0, 1], view=view)
    fit_members(_net(), X[:50], y[:50], plan, n_classes=10, seed=2, chunk_size=2)
    assert len({mid for mid, _ in seen}) == 2
    for copies in seen.values():
        assert len(copies) >= 3  # three epochs (more with padding)
        assert all(torch.equal(c, copies[0]) for c in copies)


def test_view_changes_training_and_members_do_not_depend_on_other_members(digits):
    X, y = digits
    base = LogisticRegression(max_iter=300)
    rows = [np.arange(0, 100), np.arange(100, 200), np.arange(200, 300)]
    kw = dict(n_classes=10, seed=4)
    plain = fit_members(base, X, y, rows, **kw)
    viewed = fit_members(base, X, y, MemberPlan(rows, view=keyed_noise), **kw)
    alone = fit_members(base, X, y, MemberPlan(rows[1:2], [1], 3, keyed_noise), **kw)[0]
    assert not np.array_equal(plain[1].coef_, viewed[1].coef_)
    assert np.array_equal(alone.coef_, viewed[1].coef_)


def test_bad_view_output_is_a_clear_error(digits):
    X, y = digits
    plan = MemberPlan([np.arange(40)], view=lambda X, r, m, s: X[..., :3])
    with pytest.raises(ValueError, match="shape and dtype"):
        fit_members(LogisticRegression(), X, y, plan, n_classes=10, seed=0)
    with pytest.raises(ValueError, match="shape and dtype"):
        fit_members(_net(), X, y, plan, n_classes=10, seed=0, engine="vectorized")


# ---------------------------------------------------------------------------- test-time views
def offset_view(X, row_ids, member_ids, seeds):
    """A fixed per-member offset of the test input (no row ids at test time)."""
    assert row_ids is None
    return X + ((seeds % 7).to(X.dtype) / 7.0).reshape(-1, *([1] * (X.ndim - 1)))


@pytest.mark.parametrize("engine", ["loop", "vectorized"])
def test_test_view_in_scoring(digits, engine):
    X, y = digits
    rows = [np.arange(0, 60), np.arange(60, 120), np.arange(120, 180)]
    members = fit_members(
        _net(), X, y, rows, n_classes=10, seed=3, engine=engine, chunk_size=2
    )
    if engine == "vectorized":
        assert isinstance(members, StackedMembers)
    plain = member_outputs(members, X[:9], n_classes=10)
    viewed = member_outputs(
        members, X[:9], n_classes=10, view=offset_view, member_ids=[0, 1, 2], seed=3
    )
    assert not np.allclose(plain, viewed)
    for j in range(3):
        shift = (member_seed(3, j, "test_view") % 7) / 7.0
        alone = member_outputs(members, X[:9] + np.float32(shift), n_classes=10)[:, j]
        np.testing.assert_allclose(viewed[:, j], alone, rtol=1e-5, atol=1e-5)


def test_test_view_needs_ids_and_seed_for_lists(digits):
    X, y = digits
    members = fit_members(LogisticRegression(), X, y, [np.arange(50)], n_classes=10, seed=0)
    with pytest.raises(ValueError, match="member_ids and seed"):
        member_outputs(members, X[:3], n_classes=10, view=offset_view)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_sklearn_members_scored_in_parallel_agree(digits, n_jobs):
    X, y = digits
    rows = [np.arange(i, 300, 7) for i in range(7)]
    members = fit_members(DecisionTreeClassifier(), X, y, rows, n_classes=10, seed=1)
    one = member_outputs(members, X, n_classes=10)
    assert np.array_equal(member_outputs(members, X, n_classes=10, n_jobs=n_jobs), one)


def test_view_once_trains_the_same_members_as_a_view_per_step(digits):
    """Applying the view once per member or to every batch gives the same rows, hence the same
    members (it only trades memory for time)."""
    X, y = digits
    kw = dict(n_classes=10, seed=4, engine="vectorized", chunk_size=3)
    fitted = []
    for once in (False, True):
        plan = MemberPlan(ALL_ROWS, member_ids=range(5), view=keyed_noise, view_once=once)
        fitted.append(fit_members(_net(), X, y, plan, **kw))
    for a, b in zip(*fitted, strict=True):
        for p, q in zip(_params(a), _params(b), strict=True):
            assert np.array_equal(p, q)


def test_view_once_auto_keeps_copies_only_while_they_fit(digits):
    """'auto' applies the view once while the chunk's copies fit the budget, per step
    otherwise; both give the same members."""
    from sklearn_certify.ensemble._net_config import unsupported_reason
    from sklearn_certify.ensemble._vectorized import _chunking

    X, y = digits
    plan = MemberPlan(ALL_ROWS, member_ids=range(6), view=keyed_noise, view_once="auto")
    net = _net()
    _, config, probe = unsupported_reason(net, X, 10)
    assert _chunking(config, probe, X, plan, None, None)[1]  # 300 x 64 rows: copies fit
    assert not _chunking(config, probe, X, plan, None, 4 * X.nbytes)[1]  # a tiny budget
    assert _chunking(config, probe, X, plan, 3, None) == (3, True)
    assert _chunking(config, probe, X, plan, 3, 2 * X.nbytes) == (3, False)
    kw = dict(n_classes=10, seed=1, engine="vectorized", chunk_size=3)
    big = fit_members(net, X, y, plan, **kw)
    small = fit_members(net, X, y, plan, memory_budget=2 * X.nbytes, **kw)
    for a, b in zip(big, small, strict=True):
        for p, q in zip(_params(a), _params(b), strict=True):
            assert np.array_equal(p, q)
    with pytest.raises(ValueError, match="view_once"):
        MemberPlan(ALL_ROWS, member_ids=[0], view=keyed_noise, view_once="always")
