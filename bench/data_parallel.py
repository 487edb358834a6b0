"""Data-parallel MLM training on MPI: 2 ranks of 1 thread against 1 rank of 1 thread and 1 rank of 2 threads.

    python -m bench data_parallel [--quick] [--repeats R]

The same work in all three: updates of a global batch of 4 micro-batches (8 rows of 128 tokens each,
15% masked, dropout 0.1) through minibert.data_parallel.update_step on a 4-layer, hidden 256, vocabulary
8192 BERT in float32, AdamW, with the tuned ops (minibert.fast.OPS; --plain: the plain ones, where
`python -m bench` offers the flag). One rank computes the 4 micro-batches itself; 2 ranks compute 2 each and
all-reduce the gradient (5.4 M numbers), then both take the full optimizer step. Each configuration
runs as its own `mpiexec -n N` job (N = 1, 1, 2), the three in turn, `--repeats` rounds; the figure of
a configuration is tokens / median seconds of its 4 timed updates (after a warm-up update). --quick: 2
layers, hidden 128, vocabulary 4096, length 64, one round. The last line is JSON: tokens per second of each,
and the 2-rank speedups (target: at least 1.6 over 1 rank of 1 thread). It also gives the CPU seconds an
update takes on 1 rank and on the busiest of 2 ranks (1 thread each): on a machine that other work keeps
busy, their ratio is what the 2 ranks would gain with both cores to themselves, less the waits.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

from bench.harness import result

CONFIGS = (("1 rank, 1 thread", 1, 1), ("1 rank, 2 threads", 1, 2), ("2 ranks, 1 thread each", 2, 1))
ACCUM = 4


def _sizes(quick):
    if quick:
        return {"layers": 2, "hidden": 128, "heads": 2, "intermediate": 512, "vocab": 4096, "rows": 8,
                "maxlen": 64, "updates": 4}
    return {"layers": 4, "hidden": 256, "heads": 4, "intermediate": 1024, "vocab": 8192, "rows": 8,
            "maxlen": 128, "updates": 4}


def _launch(ranks, threads, quick, plain):
    """Tokens per second of one `mpiexec -n ranks` job with `threads` BLAS threads a rank."""
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    mpiexec = here if os.access(here, os.X_OK) else shutil.which("mpiexec")
    if mpiexec is None:
        raise RuntimeError("no mpiexec: pip install mpich mpi4py (the [mpi] extra)")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    cmd = [mpiexec, "-n", str(ranks), sys.executable, "-m", "bench.data_parallel", "--worker"]
    cmd += (["--quick"] if quick else []) + (["--plain"] if plain else [])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(args):
    rounds = 1 if args.quick else (args.repeats or 3)
    found = {name: [] for name, _, _ in CONFIGS}
    cpu = {name: [] for name, _, _ in CONFIGS}
    for r in range(rounds):
        for name, ranks, threads in CONFIGS:
            out = _launch(ranks, threads, args.quick, getattr(args, "plain", False))
            found[name].append(out["tokens_per_second"])
            cpu[name].append(out["cpu_seconds_per_update"])
            print(f"  round {r + 1}/{rounds}: {name}: {out['tokens_per_second']:.0f} tokens/s "
                  f"({out['seconds_per_update']:.3f} s an update, the busiest rank's CPU "
                  f"{out['cpu_seconds_per_update']:.3f} s)", file=sys.stderr, flush=True)
    tps = {name: statistics.median(v) for name, v in found.items()}
    cpu_one, _, cpu_two_ranks = (statistics.median(cpu[name]) for name, _, _ in CONFIGS)
    one, two_threads, two_ranks = (tps[name] for name, _, _ in CONFIGS)
    size = _sizes(args.quick)
    tokens = ACCUM * size["rows"] * size["maxlen"]
    return result("data_parallel", tokens / two_ranks, tokens / one, 1,
                  tokens_per_update=tokens, tokens_per_second={k: round(v, 1) for k, v in tps.items()},
                  speedup_2_ranks_vs_1_thread=round(two_ranks / one, 3),
                  speedup_2_ranks_vs_2_threads=round(two_ranks / two_threads, 3),
                  speedup_2_threads_vs_1_thread=round(two_threads / one, 3), target_vs_1_thread=1.6,
                  cpu_seconds_per_update_1_rank=round(cpu_one, 4),
                  cpu_seconds_per_update_busiest_of_2_ranks=round(cpu_two_ranks, 4),
                  ops="plain" if getattr(args, "plain", False) else "fast",
                  load_average=[round(x, 2) for x in os.getloadavg()], rounds=rounds)


def worker(quick, plain):
    """One configuration under mpiexec; rank 0 prints its JSON line."""
    from mpi4py import MPI

    import minibert as mb
    from minibert.data_parallel import FlatGradients, MPIReducer, rank_share, update_step, wait_or_abort
    from minibert.fast import OPS
    from minibert.ops import PLAIN
    from minibert.mlm import whole_word_mask
    from minibert.optim import AdamW

    comm, size = MPI.COMM_WORLD, _sizes(quick)
    cfg = mb.BertConfig(vocab_size=size["vocab"], hidden_size=size["hidden"], num_hidden_layers=size["layers"],
                        num_attention_heads=size["heads"], intermediate_size=size["intermediate"],
                        max_position_embeddings=size["maxlen"])
    rng = np.random.default_rng(0)
    params = mb.init_params(cfg, rng, np.float32)
    ops = PLAIN if plain else OPS
    optimizer = AdamW(params, ops=None if plain else OPS, lr=1e-4, weight_decay=0.01)
    flat, reducer = FlatGradients(params), MPIReducer(comm, timeout=600.0)
    B, T = size["rows"], size["maxlen"]
    ids = rng.integers(5, cfg.vocab_size, (ACCUM * B, T))                  # the global batch's rows
    words = np.broadcast_to(np.arange(T), ids.shape)                       # every token a word
    times = []
    for step in range(size["updates"] + 1):                                # the first is a warm-up
        micro = []
        for k in rank_share(ACCUM, comm.size, comm.rank):
            mrng = np.random.default_rng([step, k])
            rows = slice(k * B, (k + 1) * B)
            inputs, masked = whole_word_mask(ids[rows], words[rows], mrng, cfg.vocab_size, 4, 0.15)
            micro.append((inputs, masked, ids[rows], np.ones((B, T), bool), mrng))
        barrier = comm.Ibarrier()                        # start together; wait without spinning a core
        wait_or_abort(barrier.Test, comm, 600.0, "the other ranks to start an update")
        t0, c0 = time.perf_counter(), time.process_time()
        update_step(params, cfg, optimizer, flat, reducer, micro, step, ops=ops)
        times.append((time.perf_counter() - t0, time.process_time() - c0))
    seconds = statistics.median(t for t, _ in times[1:])
    cpu = np.array([statistics.median(c for _, c in times[1:])])        # this rank's CPU seconds
    comm.Allreduce(MPI.IN_PLACE, cpu, op=MPI.MAX)
    if comm.rank == 0:
        print(json.dumps({"ranks": comm.size, "seconds_per_update": seconds, "cpu_seconds_per_update": cpu[0],
                          "tokens_per_second": ACCUM * B * T / seconds}))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m bench.data_parallel")
    ap.add_argument("--worker", action="store_true", help="run one configuration (under mpiexec)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--plain", action="store_true", help="the plain ops instead of minibert.fast's")
    a = ap.parse_args()
    if not a.worker:
        ap.error("run it as: python -m bench data_parallel")
    worker(a.quick, a.plain)
