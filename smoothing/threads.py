"""Work spread over the cores with plain threads (NumPy's ufuncs and matmul release the GIL).

This is the one thread helper of the project: the tuned twins (`smoothing.fast`, `minibert.fast`,
`ebm.swish_energy`) cut their work into independent pieces that each stay in the L2 cache, and
`run_pieces` hands the pieces out to as many threads as BLAS is given (OMP_NUM_THREADS /
OPENBLAS_NUM_THREADS, else every core). Each thread takes the next piece not yet taken, so a core
that other work slows down simply does fewer pieces. Every piece writes its own disjoint slice of
the outputs, so the numbers do not depend on the thread count. The plain layer never imports this.
"""
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

_POOLS = {}
_POOLS_LOCK = threading.Lock()
_PREFIX = "pieces-"


def thread_count():
    """Threads for large work: the BLAS thread count when set (OMP_NUM_THREADS, then
    OPENBLAS_NUM_THREADS), else all cores."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        try:
            return max(1, int(os.environ.get(var, "")))
        except ValueError:
            pass
    return os.cpu_count() or 1


def thread_pool(workers, name="smoothing"):
    """A shared pool of `workers` threads for one user (`name`), created on first use.

    Each user keeps its own pools, so work running in one user's pool that calls into another
    never waits on a pool it is itself occupying.
    """
    key = (name, workers)
    with _POOLS_LOCK:                                     # two first users at once make one pool
        if key not in _POOLS:
            _POOLS[key] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=_PREFIX + name)
        return _POOLS[key]


def run_pieces(work, n, name="minibert", threads=None):
    """work(i) for i in range(n): on the calling thread alone when there is one thread or one piece
    (or when called from inside a helper: no nesting, no deadlock), else shared between the calling
    thread and threads - 1 helpers of the pool `name` (threads: None for thread_count())."""
    workers = min(thread_count() if threads is None else max(1, int(threads)), n)
    if workers <= 1 or threading.current_thread().name.startswith(_PREFIX):
        for i in range(n):
            work(i)
        return
    counter = itertools.count()                           # next() on it is atomic under the GIL

    def worker():
        for i in iter(lambda: next(counter), None):
            if i >= n:
                return
            work(i)

    helpers = [thread_pool(workers - 1, name).submit(worker) for _ in range(workers - 1)]
    try:
        worker()
    finally:
        for h in helpers:
            # a helper the system has not yet run is cancelled (its pieces are done already), so a
            # busy machine never makes the caller wait for it; a started one is waited for
            if not h.cancel():
                h.result()                                # re-raises a helper's error


def row_pieces(n_rows, row_len, elems=1 << 15):
    """Slices of rows, each about `elems` elements (at least one row): pieces that stay in cache."""
    step = max(1, elems // max(1, row_len))
    return [slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]
