"""Loop-engine members train and score with one thread, so they never depend on ``n_jobs``.

A float sum split over two threads is added in another order than over one, so a torch or BLAS
kernel can return different last bits for different thread counts. Joblib's process workers run
one thread each while the calling process runs one per core: without a fixed count, a member
fitted with ``n_jobs=1`` and the same member fitted with ``n_jobs=2`` could differ (they did,
for a skorch net). Every loop-engine member fit and every per-member scoring pass therefore
runs inside :func:`one_thread`; parallelism comes from ``n_jobs``.

The vectorized engine does not need this: its kernels are batched over the members (a
``vmap``-ed matrix product is a batch of per-member products, split over threads by member),
so a member's arithmetic does not depend on the thread count, and it keeps the caller's
threads when it trains in the calling process (its joblib workers run one thread each: a
forked worker would otherwise hang in OpenMP's pool). The test suite checks both engines bit
for bit across thread counts.
"""

from __future__ import annotations

import contextlib
import threading

from threadpoolctl import threadpool_limits

__all__ = ["MEMBER_THREADS", "one_thread"]

#: Threads each loop-engine member is trained and scored with.
MEMBER_THREADS = 1

_LOCK = threading.Lock()
_depth = 0
_limits = None


@contextlib.contextmanager
def one_thread():
    """Run the block with torch, BLAS and OpenMP limited to :data:`MEMBER_THREADS` threads.

    The previous settings are restored afterwards. BLAS thread pools are process-wide, so when
    several threads of one process train members at once (joblib's threading backend), the
    limit is set by the first to enter and lifted by the last to leave; torch's intra-op count
    is per thread and set by each.
    """
    import torch

    global _depth, _limits
    with _LOCK:
        if _depth == 0:
            _limits = threadpool_limits(limits=MEMBER_THREADS)
        _depth += 1
    previous = torch.get_num_threads()
    torch.set_num_threads(MEMBER_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
        with _LOCK:
            _depth -= 1
            if _depth == 0:
                _limits.restore_original_limits()
                _limits = None
