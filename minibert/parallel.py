"""Work spread over the cores with plain threads: NumPy's ufuncs and matmul release the GIL.

The elementwise passes (GELU, LayerNorm) and the per-head attention products are cut into
independent pieces that each stay in the L2 cache; `run_pieces` hands them out to as many threads
as BLAS is given (OMP_NUM_THREADS / OPENBLAS_NUM_THREADS, else every core). Each thread takes the
next piece not yet taken, so a core that other work slows down simply does fewer pieces. Every piece
writes its own disjoint slice of the outputs, so the numbers do not depend on the thread count.
"""
import itertools
import threading

from smoothing.core import thread_count, thread_pool

_PREFIX = "minibert-pieces"


def run_pieces(work, n):
    """work(i) for i in range(n): on the calling thread alone when there is one thread or one piece,
    else shared between the calling thread and thread_count() - 1 helpers."""
    workers = min(thread_count(), n)
    if workers <= 1 or threading.current_thread().name.startswith(_PREFIX):
        for i in range(n):                                # (inside a helper: no nesting, no deadlock)
            work(i)
        return
    counter = itertools.count()                           # next() on it is atomic under the GIL

    def worker():
        for i in iter(lambda: next(counter), None):
            if i >= n:
                return
            work(i)

    helpers = [thread_pool(workers - 1, _PREFIX).submit(worker) for _ in range(workers - 1)]
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
