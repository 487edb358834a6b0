"""Data-parallel MLM pretraining on MPI: every rank computes the gradient of its share of the global
batch, an all-reduce sums the shares, and every rank takes the same optimizer step.

    mpirun -n 2 python -m minibert.pretrain --data-parallel --accum 4       # 2 micro-batches a rank
    mpirun -n 4 python -m minibert.pretrain --data-parallel --accum 4 --out runs/a --resume

The global batch. An update uses `accum` micro-batches of `batch_size` rows whatever the number of
ranks N (accum must be a multiple of N). Rank r reads only micro-batches r*A/N ... (r+1)*A/N - 1
(A = accum); every rank walks the same data order, so all agree where the next global batch starts.

The gradient. With g_k the gradient of micro-batch k's mean loss over its n_k masked tokens,
    g = sum_k n_k g_k / sum_k n_k                  (what one process with the whole batch computes)
Each rank adds n_k g_k of its own micro-batches into one flat buffer (P,) holding every parameter's
gradient end to end; MPI_Allreduce(SUM), one bucket (a contiguous slice of --bucket-mb) at a time,
leaves the full sum on every rank, and a 3-number all-reduce sums n_k, n_k loss_k and n_k acc_k.
Every rank then runs the same AdamW step on the same numbers, so the weights never need sending.

The randomness. Before each update every rank draws one key from the run's Generator (the same on
all ranks); micro-batch k's masks and dropout come from Generator([key, k]). Nothing depends on N,
so the saved state (weights, Adam moments, the Generator, step, data position) is the same for
every N and a run saved by 2 ranks resumes on 1 or 4. Rank counts differ only in the order of the
sum's terms (rounding: about 1e-16 relative in float64, 1e-7 in float32).

Failure. Every collective is nonblocking and waited for with a deadline (--comm-timeout): a rank
that hangs, or dies under a launcher that does not clean up, makes the others say where they waited
and MPI_Abort ends every rank; an error raised on one rank ends all ranks the same way. (mpiexec
itself ends the job within a second when a rank is killed.) Rank 0 writes the checkpoints with
train_state's atomic scheme; --resume continues from the newest one, with any N.

Devices. The flat buffer is made by the parameters' array module. CuPy buffers go to MPI as they are
when the MPI build is CUDA-aware, through host memory when it is not, or to NCCL (NcclReducer).

Why the buckets are not reduced during the backward: bert_backward hands back the gradients only
when it is done, and MPICH advances a nonblocking reduction only inside MPI calls, so there is no
point in the backward where a bucket could travel; on 2 cores there is no spare core for it either.
"""
import argparse
import hashlib
import io
import json
import sys
import time

import numpy as np

from smoothing import get_xp

from .mlm import mlm_forward_backward, whole_word_mask
from .model import init_params
from .ops import PLAIN
from .optim import EMA, AdamW
from .pretrain_setup import batches, evaluate, prepare
from .train_state import load_train_state, save_train_state


def add_arguments(ap):
    """The --data-parallel flags of `python -m minibert.pretrain`."""
    g = ap.add_argument_group("data parallel (MPI: launch with mpirun -n N)")
    g.add_argument("--data-parallel", action="store_true",
                   help="share each update's --accum micro-batches among the MPI ranks")
    g.add_argument("--comm-timeout", type=float, default=60.0,
                   help="seconds a rank waits for the others in one all-reduce before it stops the run")
    g.add_argument("--bucket-mb", type=float, default=4.0, help="MiB of gradient in one all-reduce bucket")
    g.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="parameter dtype of a data-parallel run")


class FlatGradients:
    """Every parameter's gradient end to end in one flat buffer, cut into buckets for the all-reduce.

    params: dict name -> array, all of one dtype (their order is the layout)
    flat: (P,) with P the parameter count, same dtype and array module as the parameters
    views[name]: flat[offset:offset + size] shaped like params[name] (a view, no copy)
    buckets: contiguous slices of flat of bucket_bytes each (the last one shorter)
    """

    def __init__(self, params, bucket_bytes=4 << 20):
        if not params:
            raise ValueError("params must hold at least one array")
        dtypes = sorted({str(p.dtype) for p in params.values()})
        if len(dtypes) != 1:
            raise ValueError(f"params must share one dtype to share a flat buffer, got {dtypes}")
        if not bucket_bytes > 0:
            raise ValueError(f"bucket_bytes must be > 0, got {bucket_bytes!r}")
        first = next(iter(params.values()))
        total = sum(int(p.size) for p in params.values())
        self.flat = get_xp(first).zeros(total, first.dtype)              # (P,)
        self.views, offset = {}, 0
        for name, p in params.items():
            self.views[name] = self.flat[offset:offset + p.size].reshape(p.shape)
            offset += p.size
        per = max(1, int(bucket_bytes) // self.flat.itemsize)
        self.buckets = [self.flat[i:i + per] for i in range(0, total, per)]

    def zero(self):
        self.flat[...] = 0

    def add(self, grads, weight):
        """views += weight * grads: a micro-batch's gradient of a mean over `weight` terms, as a sum."""
        for name, view in self.views.items():
            view += grads[name] * view.dtype.type(weight)

    def mean(self, total_weight):
        """views / total_weight, in place; returns the views as a gradient dict (keys like params)."""
        self.flat *= self.flat.dtype.type(1.0 / total_weight)
        return dict(self.views)


def stop_every_rank(comm, code):
    """MPI_Abort, one second after this rank's last words: mpiexec relays a rank's output through a pipe,
    and an abort right after a write can end the job before the message reaches the terminal."""
    time.sleep(1.0)
    comm.Abort(code)


def wait_or_abort(done, comm, timeout, what):
    """Poll done() until it is true; after `timeout` seconds say why on stderr and MPI_Abort every rank."""
    deadline, pause = time.monotonic() + timeout, 1e-5
    while not done():
        if time.monotonic() > deadline:
            print(f"data parallel: rank {comm.rank} of {comm.size} waited {timeout:g} s for {what}: another "
                  "rank has died or hangs. Stopping every rank; continue from the last checkpoint with "
                  "--resume (any number of ranks).", file=sys.stderr, flush=True)
            stop_every_rank(comm, 3)
        time.sleep(pause)
        pause = min(2 * pause, 1e-3)                      # answer fast, without spinning a core


class MPIReducer:
    """Sums buffers over the ranks in place: MPI_Iallreduce(SUM) on each, all waited for with a deadline.

    comm: an mpi4py communicator   timeout: seconds one wait may take before every rank is stopped
    cuda_aware: CuPy buffers go to MPI as device pointers; otherwise each is copied to host memory,
    summed there and copied back.
    """

    def __init__(self, comm, timeout=60.0, cuda_aware=False):
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.comm, self.timeout, self.cuda_aware = comm, timeout, cuda_aware

    def allreduce(self, buffers, what="an all-reduce"):
        from mpi4py import MPI
        on_device = [get_xp(b) is not np for b in buffers]
        xp = get_xp(*buffers)
        if hasattr(xp, "cuda"):                          # CuPy: the kernels writing the buffers must be done
            xp.cuda.get_current_stream().synchronize()
        staged = [b.get() if dev and not self.cuda_aware else b for b, dev in zip(buffers, on_device)]
        requests = [self.comm.Iallreduce(MPI.IN_PLACE, s, op=MPI.SUM) for s in staged]
        wait_or_abort(lambda: MPI.Request.Testall(requests), self.comm, self.timeout, what)
        for b, s in zip(buffers, staged):
            if s is not b:
                b[...] = get_xp(b).asarray(s)             # host -> device


class NcclReducer(MPIReducer):
    """Sums CuPy buffers with NCCL through cupy.cuda.nccl (one GPU a rank); NumPy ones go to MPI.

    MPI only hands NCCL's 128-byte unique id from rank 0 to the others.
    """

    def __init__(self, comm, timeout=60.0):
        super().__init__(comm, timeout)
        from cupy.cuda import nccl
        # [is bytes, then NCCL_UNIQUE_ID_BYTES = 128 entries]: CuPy gives the id as bytes (v13 on) or
        # as a tuple of 128 C chars (before)
        uid = np.zeros(129, np.int64)
        if comm.rank == 0:
            made = nccl.get_unique_id()
            uid[0], uid[1:] = isinstance(made, bytes), list(made)
        comm.Bcast(uid, root=0)
        unique_id = bytes(uid[1:].astype(np.uint8)) if uid[0] else tuple(int(c) for c in uid[1:])
        self.nccl = nccl
        self.nccl_comm = nccl.NcclCommunicator(comm.size, unique_id, comm.rank)
        self.types = {np.dtype(np.float16): nccl.NCCL_FLOAT16, np.dtype(np.float32): nccl.NCCL_FLOAT32,
                      np.dtype(np.float64): nccl.NCCL_FLOAT64}

    def allreduce(self, buffers, what="an all-reduce"):
        host = [b for b in buffers if get_xp(b) is np]
        device = [b for b in buffers if get_xp(b) is not np]
        if device:
            stream = get_xp(device[0]).cuda.get_current_stream()
            self.nccl.groupStart()
            for b in device:
                self.nccl_comm.allReduce(b.data.ptr, b.data.ptr, b.size, self.types[b.dtype],
                                         self.nccl.NCCL_SUM, stream.ptr)
            self.nccl.groupEnd()
            wait_or_abort(lambda: stream.done, self.comm, self.timeout, what)
        if host:
            super().allreduce(host, what)


def update_step(params, config, optimizer, flat, reducer, micro, step, ops=PLAIN):
    """One update, the same on every rank: this rank's micro-batches, the all-reduce, the AdamW step.

    micro: this rank's micro-batches, each (inputs, is_masked, labels, real, rng) as mlm_forward_backward
    takes them (B, T each; rng for dropout)    step: updates done before this one (for messages)
    ops: the ops table of the forward and backward (ops.py)
    g = sum_k n_k g_k / sum_k n_k over the micro-batches of every rank
    returns (masked tokens, mean loss, mean accuracy) of the whole global batch
    """
    flat.zero()
    stats = np.zeros(3)                                  # sum n_k, sum n_k loss_k, sum n_k acc_k
    for inputs, is_masked, labels, real, rng in micro:
        loss, acc, n, grads = mlm_forward_backward(params, config, inputs, is_masked, labels, real, rng, ops=ops)
        flat.add(grads, n)
        stats += (n, n * loss, n * acc)
    reducer.allreduce(flat.buckets + [stats], f"the gradient all-reduce of update {step + 1}")
    if stats[0] == 0:
        raise ValueError(f"update {step + 1}: no token of the global batch was masked (raise --mask-rate)")
    optimizer.update(params, flat.mean(stats[0]))
    return stats[0], stats[1] / stats[0], stats[2] / stats[0]


def rank_share(accum, size, rank):
    """The micro-batches k (of 0 .. accum-1) that rank `rank` of `size` computes: one contiguous block."""
    if accum % size:
        raise ValueError(f"--accum {accum} micro-batches an update cannot be shared evenly by {size} MPI "
                         f"ranks; use a multiple of {size}")
    per = accum // size
    return range(rank * per, (rank + 1) * per)


def world():
    """mpi4py's COMM_WORLD (one rank when started without mpirun); ValueError without mpi4py."""
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise ValueError(f"--data-parallel needs mpi4py and an MPI library ({err}): pip install "
                         "'minibert-blogs[mpi]' (mpi4py and the mpich wheel)") from None
    return MPI.COMM_WORLD


def state_digest(params, optimizer, rng, step, position):
    """A 64-bit digest (sha256) of what every rank must hold alike: weights, moments, RNG, step, position."""
    h = hashlib.sha256(json.dumps([rng.bit_generator.state, step, position, optimizer.step]).encode())
    for group in (params, optimizer.m, optimizer.v):
        for name in sorted(group):
            h.update(np.ascontiguousarray(group[name]).tobytes())
    return int.from_bytes(h.digest()[:8], "little")


def check_same_state(comm, digest, timeout):
    """Raise ValueError on every rank unless all ranks start from the same state (digests gathered)."""
    every = np.zeros(comm.size, np.uint64)
    request = comm.Iallgather(np.array([digest], np.uint64), every)
    wait_or_abort(request.Test, comm, timeout, "the other ranks to start")
    if len(set(every.tolist())) != 1:
        raise ValueError("the MPI ranks start from different states (weights, optimizer or RNG differ): "
                         "do all ranks see the same --out directory and the same code?")


class OtherRankFailed(Exception):
    """On the ranks that could start when another could not (that one says why)."""


def on_every_rank(comm, timeout, work):
    """work() on every rank, then agree: its result everywhere if it succeeded everywhere; else its error
    where it failed and OtherRankFailed on the others, so no rank is left waiting for the rest."""
    from mpi4py import MPI
    try:
        result, error = work(), None
    except (ValueError, OSError) as err:
        result, error = None, err
    failed = np.array([error is not None], np.int64)
    request = comm.Iallreduce(MPI.IN_PLACE, failed, op=MPI.MAX)
    wait_or_abort(request.Test, comm, timeout, "the other ranks to start")
    if error is not None:
        raise error
    if failed[0]:
        raise OtherRankFailed()
    return result


def start_state(args, config, options, fingerprint, dtype, log):
    """Fresh weights from --seed, or the newest checkpoint of --out with --resume (read by every rank)."""
    start = load_train_state(args.out, fingerprint, log=log) if (args.out and args.resume) else None
    if start is not None:
        return start
    rng = np.random.default_rng(args.seed)
    params = init_params(config, rng, dtype=dtype)
    return {"params": params, "optimizer": AdamW(params, **options), "rng": rng, "step": 0,
            "ema": EMA(params, args.ema) if args.ema else None, "data_position": {"epoch": 0, "index": 0}}


def train_data_parallel(args, log=None):
    """pretrain.train with each global batch shared among the MPI ranks.

    Returns the run summary on rank 0 and None on the other ranks. A bad argument or checkpoint raises
    ValueError on the ranks that find it (the others return None); any error later ends every rank.
    """
    comm, log = world(), sys.stderr if log is None else log
    if not args.comm_timeout > 0 or not args.bucket_mb > 0:
        raise ValueError(f"--comm-timeout and --bucket-mb must be > 0, got {args.comm_timeout} and "
                         f"{args.bucket_mb}")
    share, lead = rank_share(args.accum, comm.size, comm.rank), comm.rank == 0
    # --out is checked by rank 0 alone: it writes a probe file there, which other ranks checking the same
    # folder at the same moment would take for a stranger's file
    mine = args if lead else argparse.Namespace(**dict(vars(args), out=None))
    try:
        tok, config, rows, options, fingerprint = on_every_rank(comm, args.comm_timeout, lambda: prepare(mine))
        fingerprint = dict(fingerprint, dtype=args.dtype, randomness="masks and dropout from Generator([key, k])")
        state = on_every_rank(comm, args.comm_timeout, lambda: start_state(
            args, config, options, fingerprint, np.dtype(args.dtype), log if lead else io.StringIO()))
    except OtherRankFailed:
        return None
    digest = state_digest(state["params"], state["optimizer"], state["rng"], state["step"],
                          state["data_position"])
    check_same_state(comm, digest, args.comm_timeout)
    if lead and state["step"]:
        print(f"resumed from {state['path']} at step {state['step']} on {comm.size} rank(s)", file=log, flush=True)
    try:
        return _train_loop(args, comm, share, tok, config, rows, fingerprint, state, log)
    except Exception as err:
        if comm.size > 1:
            print(f"data parallel: rank {comm.rank} of {comm.size} failed ({type(err).__name__}: {err}); "
                  "stopping every rank", file=sys.stderr, flush=True)
            stop_every_rank(comm, 1)
        raise


def _train_loop(args, comm, share, tok, config, rows, fingerprint, state, log):
    params, optimizer, ema, rng = state["params"], state["optimizer"], state["ema"], state["rng"]
    step, position, lead = state["step"], state["data_position"], comm.rank == 0
    reducer = MPIReducer(comm, args.comm_timeout)
    flat = FlatGradients(params, args.bucket_mb * 2 ** 20)
    mask_id, (ids, words) = tok.vocab["[MASK]"], rows["train"]
    stream = batches(ids, args.batch_size, args.seed, position)
    history, t0, first, every = [], time.perf_counter(), step, max(1, args.steps // 20)
    if step == 0 and lead:
        history.append((0, *evaluate(params, config, tok, rows["eval"], args.seed, args.mask_rate)))
    while step < args.steps:
        key = int(rng.integers(2 ** 63))                 # one draw an update, the same on every rank
        picks = [next(stream) for _ in range(args.accum)]  # the global batch: every rank walks all of it
        position = picks[-1][1]
        micro = []
        for k in share:                                  # ... and reads only its own micro-batches
            sel, micro_rng = picks[k][0], np.random.default_rng([key, k])
            inputs, is_masked = whole_word_mask(ids[sel], words[sel], micro_rng, config.vocab_size, mask_id,
                                                args.mask_rate)
            micro.append((inputs, is_masked, ids[sel], ids[sel] != tok.pad_id, micro_rng))
        _, loss, acc = update_step(params, config, optimizer, flat, reducer, micro, step)
        if ema is not None:
            ema.update(params)
        step += 1
        rate = (step - first) / (time.perf_counter() - t0)
        if lead and (step % args.eval_every == 0 or step == args.steps):
            ev_loss, ev_acc = evaluate(params, config, tok, rows["eval"], args.seed, args.mask_rate)
            history.append((step, ev_loss, ev_acc))
            print(f"step {step}/{args.steps}  train loss {loss:.3f} acc {acc:.3f}  held-out loss {ev_loss:.3f} "
                  f"acc {ev_acc:.3f}  {comm.size} rank(s), {rate:.1f} updates/s", file=log, flush=True)
        elif lead and step % every == 0:
            print(f"step {step}/{args.steps}  train loss {loss:.3f}  {comm.size} rank(s), {rate:.1f} updates/s",
                  file=log, flush=True)
        if lead and args.out and (step % args.save_every == 0 or step == args.steps):
            save_train_state(args.out, config=config, params=params, optimizer=optimizer, rng=rng, step=step,
                             data_position=position, fingerprint=fingerprint, ema=ema)
    seconds = time.perf_counter() - t0
    if not lead:
        return None
    tokens = (step - first) * args.accum * args.batch_size * args.maxlen
    print(f"{tokens / max(seconds, 1e-9):.0f} tokens/s on {comm.size} rank(s)", file=log, flush=True)
    return {"steps": step, "params": int(sum(p.size for p in params.values())), "seconds": seconds,
            "history": history, "out": args.out, "data_parallel": {"ranks": comm.size}}
