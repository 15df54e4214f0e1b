"""Process-based joblib backends and skorch module classes defined in ``__main__``.

A fitted skorch net pickles its module with the standard pickle, so a worker in another
process cannot send back a member whose module class lives in the user's script: the loop
engine must refuse that before training (a real dask cluster used to hang for ever), and
keep working when the class is importable or the workers share ``__main__``.
"""

import os
import subprocess
import sys
import textwrap
from multiprocessing import get_context
from pathlib import Path

import pytest
import torch
from joblib import parallel_config
from skorch import NeuralNetClassifier

from sklearn_certify.ensemble import fit_members
from sklearn_certify.ensemble._loop import _shares_main, classes_defined_in_main
from tests._ensemble_helpers import TinyMLP, disjoint_subsets, first_digits

ROOT = Path(__file__).resolve().parents[1]

# Run as a script, so that ``MainMLP`` really lives in ``__main__``; every wait is bounded.
SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import torch
    from distributed import Client, LocalCluster
    from joblib import parallel_config
    from skorch import NeuralNetClassifier

    from sklearn_certify import DPAClassifier
    from tests._ensemble_helpers import TinyMLP, first_digits


    class MainMLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(64, 10)

        def forward(self, x):
            return self.lin(x)


    def dpa(module, n_jobs):
        net = NeuralNetClassifier(
            module, criterion=torch.nn.CrossEntropyLoss, max_epochs=1, batch_size=16, lr=0.1
        )
        return DPAClassifier(net, n_partitions=4, engine="loop", random_state=0, n_jobs=n_jobs)


    def weights(clf):
        return [p.detach().numpy() for m in clf.estimators_ for p in m.module_.parameters()]


    def same(a, b):
        return all(np.array_equal(u, v) for u, v in zip(weights(a), weights(b), strict=True))


    if __name__ == "__main__":
        X, y = first_digits(160)
        local = dpa(TinyMLP, 1).fit(X, y)
        local_main = dpa(MainMLP, 1).fit(X, y)
        with parallel_config(backend="multiprocessing"):  # forked workers share __main__
            assert same(dpa(MainMLP, 2).fit(X, y), local_main)
        with (
            LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster, timeout=60) as client,
            parallel_config(backend="dask"),
        ):
            client.wait_for_workers(2, timeout=60)
            try:
                dpa(MainMLP, -1).fit(X, y)
            except TypeError as exc:
                print("REFUSED", exc)
            assert same(dpa(TinyMLP, -1).fit(X, y), local)
            print("IMPORTABLE OK")
    """
)


@pytest.mark.slow
def test_dask_process_cluster_refuses_main_classes_and_fits_importable_ones(tmp_path):
    """A real 2-process LocalCluster: refused at once for ``__main__``, bit-identical otherwise."""
    pytest.importorskip("distributed")
    script = tmp_path / "user_script.py"
    script.write_text(SCRIPT)
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    try:
        out = subprocess.run(
            [sys.executable, str(script)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired as exc:  # the old behaviour: the fit never returned
        pytest.fail(f"the cluster fit hung: {exc}")
    assert out.returncode == 0, out.stderr[-3000:]
    refused = [line for line in out.stdout.splitlines() if line.startswith("REFUSED")]
    assert refused, out.stdout
    assert "MainMLP is defined in __main__" in refused[0]
    assert "importable .py file" in refused[0]
    assert "IMPORTABLE OK" in out.stdout


def _main_class():
    """A TinyMLP subclass that claims to live in ``__main__``, as a script's class does."""
    return type("ScriptMLP", (TinyMLP,), {"__module__": "__main__"})


def _net(module):
    return NeuralNetClassifier(
        module, criterion=torch.nn.CrossEntropyLoss, max_epochs=1, batch_size=16, lr=0.1
    )


def test_process_backends_refuse_main_classes_before_training():
    """loky (and any non-forking process backend) is refused before a worker starts."""
    X, y = first_digits(120)
    subsets, _ = disjoint_subsets(len(X), [40, 40, 40])
    net = _net(_main_class())
    assert classes_defined_in_main(net) == ["ScriptMLP"]
    configs = [dict(backend="loky"), dict(backend="multiprocessing", context=get_context("spawn"))]
    for config in configs:
        with (
            parallel_config(**config),
            pytest.raises(TypeError, match=r"ScriptMLP is defined in __main__.*importable"),
        ):
            fit_members(
                net, X, y, subsets, n_classes=10, seed=0, n_jobs=2, engine="loop"
            )


def test_which_backends_share_main():
    """Threads and forked workers see ``__main__``; spawned ones and ray's pool do not."""
    from joblib.parallel import LokyBackend, MultiprocessingBackend, ThreadingBackend

    class RayLike(MultiprocessingBackend):  # ray's joblib backend subclasses it
        pass

    assert _shares_main(ThreadingBackend())
    assert _shares_main(MultiprocessingBackend(context=get_context("fork")))
    assert not _shares_main(MultiprocessingBackend(context=get_context("spawn")))
    assert not _shares_main(RayLike(context=get_context("fork")))
    assert not _shares_main(LokyBackend())


def test_threads_still_train_main_classes():
    """No backend configured: ``__main__`` classes get threads, the same members as one job."""
    X, y = first_digits(120)
    subsets, _ = disjoint_subsets(len(X), [40, 40, 40])
    net = _net(_main_class())
    one = fit_members(net, X, y, subsets, n_classes=10, seed=0, engine="loop")
    two = fit_members(net, X, y, subsets, n_classes=10, seed=0, engine="loop", n_jobs=2)
    for a, b in zip(one, two, strict=True):
        for p, q in zip(a.module_.parameters(), b.module_.parameters(), strict=True):
            assert torch.equal(p, q)
