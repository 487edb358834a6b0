"""Started under mpiexec by tests/test_data_parallel.py: every rank fills a gradient that depends on its
rank, a reducer sums the flat buffer's buckets, and every rank checks the sum against its closed form.

    mpiexec -n 2 python -m tests.data_parallel_ranks numpy       # MPI on host buffers
    mpiexec -n 2 python -m tests.data_parallel_ranks strict      # "device" buffers of the strict double
    mpiexec -n 2 python -m tests.data_parallel_ranks cupy-mpi    # CuPy buffers through MPI
    mpiexec -n 1 python -m tests.data_parallel_ranks cupy-nccl   # CuPy buffers through NCCL (one GPU a rank)

The strict double (tests/strict_arrays.py) refuses to mix with NumPy as CuPy arrays do, so on a CPU it
checks that the device path makes its buffer with the parameters' module and moves data only explicitly.
"""
import sys

import numpy as np
from mpi4py import MPI

from minibert.data_parallel import FlatGradients, MPIReducer, NcclReducer

SHAPES = {"a.weight": (3, 5), "a.bias": (7,), "b.weight": (2, 2, 4)}


def main(backend):
    comm = MPI.COMM_WORLD
    if backend == "numpy":
        xp = np
    elif backend == "strict":
        from tests.strict_arrays import strict as xp
    else:
        import cupy as xp
        xp.cuda.Device(comm.rank % xp.cuda.runtime.getDeviceCount()).use()
    params = {k: xp.zeros(s, xp.float64) for k, s in SHAPES.items()}
    flat = FlatGradients(params, bucket_bytes=5 * 8)      # 5 numbers a bucket: buckets cut across tensors
    # rank r holds g = (r + 1) * (1, 2, 3, ...) and adds it with weight 2
    grads = {k: (comm.rank + 1.0) * (xp.arange(int(np.prod(s)), dtype=xp.float64).reshape(s) + 1)
             for k, s in SHAPES.items()}
    flat.add(grads, weight=2.0)
    stats = np.array([comm.rank + 1.0, 1.0])
    reducer = NcclReducer(comm, timeout=30.0) if backend == "cupy-nccl" else MPIReducer(comm, timeout=30.0)
    reducer.allreduce(flat.buckets + [stats], "the test all-reduce")
    ranks_sum = comm.size * (comm.size + 1) / 2           # sum over r of (r + 1)
    for k, s in SHAPES.items():
        got = flat.views[k] if xp is np else xp.asnumpy(flat.views[k])     # the explicit transfer back
        want = 2.0 * ranks_sum * (np.arange(int(np.prod(s)), dtype=np.float64).reshape(s) + 1)
        np.testing.assert_array_equal(got, want, err_msg=f"summed gradient {k} on rank {comm.rank}")
    np.testing.assert_array_equal(stats, [ranks_sum, comm.size], err_msg=f"summed stats on rank {comm.rank}")
    print(f"rank {comm.rank} of {comm.size}: {backend} sums match", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
