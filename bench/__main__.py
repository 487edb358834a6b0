"""Run one benchmark: `python -m bench <name> [--quick] [--threads N] [--repeats R]`.

Each benchmark is a module `bench/<name>.py` with `run(args) -> dict`. The thread count is fixed here,
before NumPy or PyTorch is imported, so both sides get the same number of BLAS / intra-op threads.
The last line printed is one JSON object with our time, the reference's time and their ratio.
"""
import argparse
import importlib
import json
import os
import pkgutil
import sys


def available():
    """Names of the benchmark modules in this folder."""
    here = os.path.dirname(os.path.abspath(__file__))
    skip = {"__main__", "harness"}
    return sorted(m.name for m in pkgutil.iter_modules([here]) if m.name not in skip)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("name", help="benchmark to run: " + ", ".join(available()))
    parser.add_argument("--quick", action="store_true", help="small budget, under a minute")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="threads for BLAS and PyTorch, the same for both (default: all cores)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs of each side")
    parser.add_argument("--plain", action="store_true",
                        help="minibert and conv2d benchmarks: time the plain layer instead of its tuned "
                             "twin (minibert/ops.py, gan/conv.py)")
    args, rest = parser.parse_known_args(argv)
    if args.name not in available():
        parser.error(f"unknown benchmark {args.name!r}; choose one of: {', '.join(available())}")
    if args.threads < 1:
        parser.error("--threads must be >= 1")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    # Both sides alternate on the same few cores, so neither side's idle worker threads may busy-wait
    # after a parallel region and take the cores the other side (or our own main thread) needs next:
    # PyTorch's OpenMP threads sleep when passive, and OpenBLAS's spin for 2^4 cycles instead of its
    # default of about 2^28 (0.1 s). Both are read when the library loads, before the import below.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    args.extra = rest
    module = importlib.import_module(f"bench.{args.name}")
    result = module.run(args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
