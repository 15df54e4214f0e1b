"""Loop engine: seeding, determinism, joblib backends, partition independence."""

import numpy as np
import pytest
import torch
from joblib import parallel_config
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import ExtraTreeClassifier
from skorch import NeuralNetClassifier
from threadpoolctl import threadpool_limits

from sklearn_certify.ensemble import MEMBER_THREADS, MemberPlan, fit_members, member_outputs
from tests._ensemble_helpers import TinyMLP, disjoint_subsets, first_digits


class DropMLP(TinyMLP):
    """TinyMLP with dropout on the hidden layer."""

    def __init__(self):
        super().__init__()
        self.drop = torch.nn.Dropout(0.3)

    def forward(self, x):
        return self.l2(self.drop(torch.relu(self.l1(x))))


@pytest.fixture(scope="module")
def digits():
    return first_digits()


def _net(**kw):
    params = dict(
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=2,
        batch_size=8,
        lr=0.1,
        optimizer__momentum=0.9,
        iterator_train__shuffle=True,
    )
    params.update(kw)
    return NeuralNetClassifier(TinyMLP, **params)


def _sgd_state(est):
    return [est.coef_, est.intercept_]


def _tree_state(est):
    return [est.tree_.feature, est.tree_.threshold, est.tree_.value]


def _net_state(net):
    return [p.detach().numpy() for p in net.module_.parameters()]


def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_members_are_fitted_clones_trained_on_their_rows(digits):
    X, y = digits
    subsets = [np.arange(0, 100), np.arange(100, 250)]
    base = LogisticRegression(max_iter=200)
    members = fit_members(base, X, y, subsets, n_classes=10, seed=0, engine="loop")
    assert len(members) == 2
    assert all(m is not base for m in members)
    assert not hasattr(base, "coef_")
    ref = LogisticRegression(max_iter=200).fit(X[100:250], y[100:250])
    np.testing.assert_allclose(members[1].coef_, ref.coef_)


def test_row_order_is_respected(digits):
    """A member sees its rows in exactly the given order (an order-sensitive learner shows it)."""
    X, y = digits
    idx = np.arange(0, 80)
    kw = dict(n_classes=10, seed=1, engine="loop")
    base = SGDClassifier(shuffle=False, max_iter=5, tol=None)
    a = fit_members(base, X, y, [idx], **kw)[0]
    b = fit_members(base, X, y, [idx[::-1]], **kw)[0]
    assert not np.array_equal(a.coef_, b.coef_)


def test_member_seeds_depend_on_the_base_seed_and_member_id_only(digits):
    X, y = digits
    subsets, _ = disjoint_subsets(len(X), [60, 60, 60])
    base = SGDClassifier(max_iter=5, tol=None)
    kw = dict(n_classes=10, engine="loop")
    first = fit_members(base, X, y, subsets, seed=4, **kw)
    again = fit_members(base, X, y, subsets, seed=4, **kw)
    assert [m.random_state for m in first] == [m.random_state for m in again]
    assert len({m.random_state for m in first}) == 3
    other = fit_members(base, X, y, subsets, seed=5, **kw)
    assert [m.random_state for m in other] != [m.random_state for m in first]
    # member id 2 alone, called with its id, gets the same seed and fit
    alone = fit_members(base, X, y, MemberPlan(subsets[2:], member_ids=[2]), seed=4, **kw)[
        0
    ]
    assert alone.random_state == first[2].random_state
    assert _same(_sgd_state(alone), _sgd_state(first[2]))
    # nested random_state params (Pipeline) are seeded too
    pipe = make_pipeline(StandardScaler(), SGDClassifier(max_iter=5, tol=None))
    fitted = fit_members(pipe, X, y, subsets, seed=4, **kw)
    assert len({m[-1].random_state for m in fitted}) == 3


def test_skorch_members_deterministic_and_configured(digits):
    X, y = digits
    subsets, _ = disjoint_subsets(len(X), [50, 70])
    net = _net()
    a = fit_members(net, X, y, subsets, n_classes=10, seed=0, engine="loop")
    b = fit_members(net, X, y, subsets, n_classes=10, seed=0, engine="loop")
    for m1, m2 in zip(a, b, strict=True):
        assert _same(_net_state(m1), _net_state(m2))
        assert m1.train_split is None and m1.verbose == 0
        assert list(m1.classes_) == list(range(10))
        assert m1.predict_proba(X[:5]).shape == (5, 10)
    assert not _same(_net_state(a[0]), _net_state(a[1]))
    # the base net is untouched and the global torch RNG is not consumed
    assert not hasattr(net, "module_")
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fit_members(net, X, y, subsets[:1], n_classes=10, seed=0, engine="loop")
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("engine", ["loop", "vectorized"])
def test_n_jobs_one_and_two_identical_whatever_the_threads(digits, engine):
    """Members are bit-identical for n_jobs=1 and 2, even when the caller runs torch and BLAS
    with several threads (joblib's process workers run one): members train with one thread.
    """
    X, y = digits
    subsets, _ = disjoint_subsets(len(X), [40, 50, 60, 45])
    bases = [(_net(), _net_state)]
    if engine == "loop":
        bases.append((SGDClassifier(max_iter=5, tol=None), _sgd_state))
    previous = torch.get_num_threads()
    try:
        for base, state in bases:
            kw = dict(n_classes=10, seed=2, engine=engine)
            with threadpool_limits(2):
                torch.set_num_threads(2)
                one = fit_members(base, X, y, subsets, n_jobs=1, **kw)
                assert torch.get_num_threads() == 2  # the caller's setting is restored
            torch.set_num_threads(1)
            two = fit_members(base, X, y, subsets, n_jobs=2, **kw)
            for m1, m2 in zip(one, two, strict=True):
                assert _same(state(m1), state(m2))
    finally:
        torch.set_num_threads(previous)


def test_members_train_and_score_with_member_threads(digits):
    """Inside a member fit and a scoring pass torch sees MEMBER_THREADS threads."""
    X, y = digits
    seen = []

    class Recording(LogisticRegression):
        def fit(self, X, y):
            seen.append(("fit", torch.get_num_threads()))
            return super().fit(X, y)

        def predict_proba(self, X):
            seen.append(("score", torch.get_num_threads()))
            return super().predict_proba(X)

    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        members = fit_members(Recording(), X, y, [np.arange(40)], n_classes=10, seed=0)
        member_outputs(members, X[:5], n_classes=10)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
    assert seen == [("fit", MEMBER_THREADS), ("score", MEMBER_THREADS)]


def test_vectorized_members_do_not_depend_on_the_thread_count(digits):
    """The vectorized engine keeps the caller's threads: its kernels batch over members."""
    X, y = digits
    subsets, _ = disjoint_subsets(len(X), [40, 50, 60, 45, 30])
    drop = NeuralNetClassifier(
        DropMLP, criterion=torch.nn.CrossEntropyLoss, max_epochs=2, batch_size=8, lr=0.1
    )
    previous = torch.get_num_threads()
    try:
        adam = NeuralNetClassifier(
            TinyMLP, criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=0.01
        )
        for net in (_net(), drop, adam):
            fitted = []
            for threads in (1, 3):
                torch.set_num_threads(threads)
                members = fit_members(
                    net, X, y, subsets, n_classes=10, seed=2, engine="vectorized"
                )
                fitted.append((members, members.outputs(X[:50])))
            (a, out_a), (b, out_b) = fitted
            for m1, m2 in zip(a, b, strict=True):
                assert _same(_net_state(m1), _net_state(m2))
            assert np.array_equal(out_a, out_b)
    finally:
        torch.set_num_threads(previous)


def test_threading_backend_identical(digits):
    X, y = digits
    subsets, _ = disjoint_subsets(len(X), [40, 50, 60])
    one = fit_members(_net(), X, y, subsets, n_classes=10, seed=2, engine="loop")
    with parallel_config(backend="threading", n_jobs=2):
        threaded = fit_members(_net(), X, y, subsets, n_classes=10, seed=2, engine="loop")
    for m1, m2 in zip(one, threaded, strict=True):
        assert _same(_net_state(m1), _net_state(m2))


def test_dask_backend(digits):
    distributed = pytest.importorskip("dask.distributed")
    X, y = digits
    subsets, _ = disjoint_subsets(len(X), [40, 50, 60])
    base = ExtraTreeClassifier()
    local = fit_members(base, X, y, subsets, n_classes=10, seed=3, engine="loop")
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        with parallel_config(backend="dask"):
            remote = fit_members(base, X, y, subsets, n_classes=10, seed=3, n_jobs=-1)
            nets = fit_members(
                _net(), X, y, subsets, n_classes=10, seed=3, n_jobs=-1, engine="loop"
            )
            # vectorized chunks are dispatched through the same backend
            chunks = fit_members(
                _net(),
                X,
                y,
                subsets,
                n_classes=10,
                seed=3,
                n_jobs=-1,
                engine="vectorized",
                chunk_size=2,
            )
    for m1, m2 in zip(local, remote, strict=True):
        assert _same(_tree_state(m1), _tree_state(m2))
    for m1, m2 in zip(
        fit_members(_net(), X, y, subsets, n_classes=10, seed=3, engine="loop"),
        nets,
        strict=True,
    ):
        assert _same(_net_state(m1), _net_state(m2))
    for m1, m2 in zip(
        fit_members(
            _net(), X, y, subsets, n_classes=10, seed=3, engine="vectorized", chunk_size=2
        ),
        chunks,
        strict=True,
    ):
        assert _same(_net_state(m1), _net_state(m2))


@pytest.mark.parametrize(
    "base, state",
    [
        (SGDClassifier(max_iter=5, tol=None), _sgd_state),
        (ExtraTreeClassifier(), _tree_state),
        (_net(), _net_state),
    ],
    ids=["sgd", "extra_tree", "skorch"],
)
def test_exact_partition_independence_loop(digits, base, state):
    """Insert into / delete from the largest subset, omit a member: all others bit-identical."""
    X, y = digits
    sizes = [30, 45, 21, 60, 38]
    subsets, rest = disjoint_subsets(len(X), sizes)
    big = int(np.argmax(sizes))
    kw = dict(n_classes=10, seed=7, engine="loop")
    ref = fit_members(base, X, y, subsets, **kw)
    for change in ("insert", "delete"):
        changed = list(subsets)
        changed[big] = (
            np.concatenate([subsets[big], rest[:1]]) if change == "insert" else subsets[big][:-1]
        )
        new = fit_members(base, X, y, changed, **kw)
        for i in range(len(sizes)):
            if i != big:
                assert _same(state(new[i]), state(ref[i])), (change, i)
    keep = [0, 1, 3, 4]
    partial = fit_members(base, X, y, MemberPlan([subsets[i] for i in keep], keep), **kw)
    for m, i in zip(partial, keep, strict=True):
        assert _same(state(m), state(ref[i]))


def test_module_instance_and_file_callbacks_refused(digits):
    from skorch.callbacks import Checkpoint

    X, y = digits
    net = NeuralNetClassifier(TinyMLP(), criterion=torch.nn.CrossEntropyLoss)
    with pytest.raises(TypeError, match="module class"):
        fit_members(net, X, y, [np.arange(20)], n_classes=10, seed=0)
    pipe = make_pipeline(StandardScaler(), net)
    with pytest.raises(TypeError, match=r"nn\.Module instance"):
        fit_members(pipe, X, y, [np.arange(20)], n_classes=10, seed=0)
    net = _net(callbacks=[Checkpoint(dirname="/nonexistent")])
    with pytest.raises(ValueError, match="Checkpoint"):
        fit_members(net, X, y, [np.arange(20)], n_classes=10, seed=0)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(seed=None), TypeError, "seed"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(engine="fast"), ValueError, "engine"),
        (dict(n_classes=0), ValueError, "n_classes"),
        (dict(engine="vectorized"), ValueError, "skorch"),
        (dict(chunk_size=0), ValueError, "chunk_size"),
    ],
)
def test_bad_arguments(digits, kwargs, error, match):
    X, y = digits
    params = dict(n_classes=10, seed=0)
    params.update(kwargs)
    subsets = [np.arange(10), np.arange(10, 20)]
    base = LogisticRegression() if "chunk_size" not in kwargs else _net()
    with pytest.raises(error, match=match):
        fit_members(base, X, y, subsets, **params)


def test_bad_subsets_and_labels(digits):
    X, y = digits
    kw = dict(n_classes=10, seed=0)
    with pytest.raises(ValueError, match="empty"):
        fit_members(LogisticRegression(), X, y, [np.array([], dtype=int)], **kw)
    with pytest.raises(ValueError, match="outside"):
        fit_members(LogisticRegression(), X, y, [np.array([0, len(X)])], **kw)
    with pytest.raises(TypeError, match="integer row indices"):
        fit_members(LogisticRegression(), X, y, [np.array([0.0, 1.0])], **kw)
    with pytest.raises(TypeError, match="list of 1-d index arrays"):
        fit_members(LogisticRegression(), X, y, np.arange(10), **kw)
    with pytest.raises(ValueError, match="encoded labels"):
        fit_members(LogisticRegression(), X, y + 1, [np.arange(20)], **kw)
    with pytest.raises(TypeError, match="integer-encoded"):
        fit_members(LogisticRegression(), X, y.astype(float), [np.arange(20)], **kw)


def test_verbose_progress_bar(digits, capsys):
    X, y = digits
    fit_members(
        LogisticRegression(max_iter=50),
        X,
        y,
        [np.arange(30), np.arange(30, 60)],
        n_classes=10,
        seed=0,
        verbose=1,
    )
    assert "fitting members" in capsys.readouterr().err
