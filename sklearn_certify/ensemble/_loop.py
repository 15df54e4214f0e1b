"""The loop engine: clone, seed and fit one estimator per member, batched into joblib tasks."""

from __future__ import annotations

import multiprocessing

import numpy as np
from joblib import effective_n_jobs
from joblib.parallel import MultiprocessingBackend, get_active_backend
from sklearn.base import clone
from sklearn.utils import _safe_indexing
from sklearn.utils.parallel import Parallel, delayed

from sklearn_certify.ensemble._seeding import member_seed, seed_random_state_params, sklearn_seed
from sklearn_certify.ensemble._skorch import configure_member_net, nested_nets, torch_seeded
from sklearn_certify.ensemble._threads import one_thread

#: Joblib tasks per worker: a few, so that uneven members balance, but not one per member
#: (each task pickles the base estimator and, for process workers, small arrays of X).
TASKS_PER_WORKER = 4


def make_member(estimator, seed: int, member_id: int, n_classes: int):
    """An unfitted, seeded, configured clone of ``estimator`` for member ``member_id``."""
    from sklearn_certify.ensemble._certified_net import CertifiedNeuralNetClassifier

    member = clone(estimator)
    seed_random_state_params(member, sklearn_seed(seed, member_id))
    for net in nested_nets(member):
        configure_member_net(net, n_classes, member_seed(seed, member_id, "shuffle"))
        if isinstance(net, CertifiedNeuralNetClassifier):
            net.set_params(member_key=member_seed(seed, member_id, "step"))
    return member


def apply_view(view, X_rows, row_ids, member_id: int, purpose_seed: int, device=None):
    """``view`` applied to one member's rows (a numpy array); returns a numpy array.

    ``row_ids`` are the rows' indices into the training ``X``, or ``None`` when scoring.
    """
    import torch

    X_t = torch.as_tensor(np.ascontiguousarray(X_rows), device=device)
    if row_ids is not None:
        row_ids = torch.as_tensor(np.asarray(row_ids, dtype=np.int64), device=device)[None]
    out = view(
        X_t[None],
        row_ids,
        torch.tensor([member_id], dtype=torch.int64, device=device),
        torch.tensor([purpose_seed], dtype=torch.int64, device=device),
    )
    check_view_output(out, X_t[None])
    return out[0].detach().cpu().numpy()


def check_view_output(out, batch) -> None:
    """Raise a clear error if a view changed the batch's type, shape or dtype."""
    import torch

    if not isinstance(out, torch.Tensor) or out.shape != batch.shape or out.dtype != batch.dtype:
        got = (
            f"{tuple(out.shape)} {out.dtype}"
            if isinstance(out, torch.Tensor)
            else type(out).__name__
        )
        raise ValueError(
            f"The plan's view must return a tensor of its input's shape and dtype "
            f"({tuple(batch.shape)} {batch.dtype}), got {got}."
        )


def fit_one_member(estimator, X, y, rows, view, seed: int, member_id: int, n_classes: int):
    """Fit member ``member_id`` on ``X[rows], y[rows]`` (all rows when ``rows`` is None)."""
    member = make_member(estimator, seed, member_id, n_classes)
    X_m = X if rows is None else _safe_indexing(X, rows)
    y_m = y if rows is None else y[rows]
    if view is not None:
        row_ids = np.arange(X.shape[0]) if rows is None else rows
        view_seed = member_seed(seed, member_id, "view")
        X_m = apply_view(view, X_m, row_ids, member_id, view_seed)
    nets = nested_nets(member)
    fit_params = {}
    if _keys_rows(member):  # its augmentation and step draws are keyed by training row
        fit_params["row_ids"] = np.arange(X.shape[0]) if rows is None else np.asarray(rows)
    if nets:
        with torch_seeded(member_seed(seed, member_id, "torch_init"), nets):
            member.fit(X_m, y_m, **fit_params)
    else:
        member.fit(X_m, y_m)
    return member


def _keys_rows(member) -> bool:
    """Whether ``member`` is a :class:`CertifiedNeuralNetClassifier` taking ``row_ids``."""
    from sklearn_certify.ensemble._certified_net import CertifiedNeuralNetClassifier

    return isinstance(member, CertifiedNeuralNetClassifier)


def _fit_batch(estimator, X, y, plan, *, n_classes: int, seed: int, progress=None) -> list:
    """Fit the members of ``plan`` one after another, with one thread (see ``_threads``)."""
    members = []
    with one_thread():
        for position, member_id in enumerate(plan.member_ids.tolist()):
            rows = plan.member_rows(position)
            members.append(
                fit_one_member(estimator, X, y, rows, plan.view, seed, member_id, n_classes)
            )
            if progress is not None:
                progress.update(1)
    return members


def member_batches(n_members: int, n_jobs) -> list:
    """Consecutive position batches, :data:`TASKS_PER_WORKER` per joblib worker (one if 1)."""
    workers = effective_n_jobs(n_jobs)
    n_tasks = 1 if workers == 1 else min(n_members, TASKS_PER_WORKER * workers)
    return [b for b in np.array_split(np.arange(n_members), max(1, n_tasks)) if b.size]


def _progress(verbose, total: int):
    if not verbose:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="fitting members", unit="member")


def classes_defined_in_main(estimator) -> list:
    """Names of the module, criterion and optimizer classes of nested skorch nets in ``__main__``.

    A fitted skorch net pickles these with the standard pickle, which finds a class by its
    module and name: a class defined in a script or notebook (``__main__``) cannot be sent
    back from a worker process.
    """
    names = []
    for net in nested_nets(estimator):
        for cls in (net.module, net.criterion, net.optimizer):
            if isinstance(cls, type) and cls.__module__ == "__main__":
                names.append(cls.__qualname__)
    return names


def _shares_main(backend) -> bool:
    """Whether ``backend``'s workers see this script's ``__main__``: threads, forks, inproc."""
    if getattr(backend, "uses_threads", False):
        return True
    # forked workers inherit __main__ (ray's backend subclasses this one: its workers do not)
    if type(backend) is MultiprocessingBackend:
        context = backend.backend_kwargs.get("context") or multiprocessing
        return context.get_start_method() == "fork"
    client = getattr(backend, "client", None)  # joblib's dask backend
    if client is None:
        return False
    workers = client.nthreads()
    return bool(workers) and all(address.startswith("inproc://") for address in workers)


def _parallel(n_jobs, verbose, in_main: list):
    """The joblib ``Parallel`` for member batches, refused if ``in_main`` classes cannot travel.

    A skorch net pickles its fitted module with the standard pickle even inside cloudpickle,
    so a worker in another process cannot send back a member whose module, criterion or
    optimizer class lives in ``__main__`` (loky fails after training; dask hangs for ever):
    such classes get the threading backend unless the user configured a process backend,
    which is refused here, before any member is trained.
    """
    prefer = "threads" if in_main else None
    backend, _ = get_active_backend(prefer=prefer)
    if in_main and not _shares_main(backend):
        raise TypeError(
            f"{', '.join(in_main)} is defined in __main__ (a script or notebook), and the "
            f"active joblib backend ({type(backend).__name__}) would train members in other "
            "processes, which cannot send a fitted skorch net back when its module, criterion "
            "or optimizer class lives in __main__ (pickle finds classes by module and name). "
            "Move the class into an importable .py file (and import it from there), or use "
            "n_jobs=1 or joblib's threading backend."
        )
    return_as = "generator" if backend.supports_return_generator else "list"
    return Parallel(
        n_jobs=n_jobs, verbose=max(0, int(verbose) - 1), return_as=return_as, prefer=prefer
    )


def fit_loop(estimator, X, y, plan, *, n_classes, seed, n_jobs, verbose):
    """Fit one member per plan entry, batched into joblib tasks (:func:`member_batches`)."""
    kwargs = dict(n_classes=n_classes, seed=seed)
    batches = member_batches(plan.n_members, n_jobs)
    progress = _progress(verbose, plan.n_members)
    try:
        if len(batches) == 1:  # in this process: the progress bar advances per member
            return _fit_batch(estimator, X, y, plan, progress=progress, **kwargs)
        parallel = _parallel(n_jobs, verbose, classes_defined_in_main(estimator))
        jobs = (delayed(_fit_batch)(estimator, X, y, plan.select(b), **kwargs) for b in batches)
        members: list = []
        for fitted in parallel(jobs):
            members.extend(fitted)
            if progress is not None:
                progress.update(len(fitted))
        return members
    finally:
        if progress is not None:
            progress.close()
