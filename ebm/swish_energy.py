"""U(x) and dU/dx of a Swish MLP energy in one pass down and one back: the path a sampler runs.

    U(x) = Wn^T a_n + bn,   a_i = swish(z_i),   z_i = a_(i-1) @ Wi + bi,   a_0 = x     x: (B, D)

This computes what gan's forward/backward pairs compute (ebm.neural's energy_forward followed by
energy_input_grad, tested to agree), arranged for speed: a Langevin step is nothing but this
function, and beside its two big products it makes a dozen elementwise passes over (B, H) arrays.

Swish through tanh. With u = z / 2 (every weight and bias halved once; exact in floating point):
    sigmoid(z) = (1 + tanh(u)) / 2,   so   a = swish(z) = u c   with   c = 1 + tanh(u)
    da/du = c + u (1 - tanh(u)^2) = c + a (2 - c)
and back through u = h @ (W / 2) + b / 2, dh = (dU/du) @ (W / 2).T is the same dh as through z.
One transcendental per element (tanh, cheaper than exp in NumPy) and two passes forward; three
back for da/du and one to multiply in dU/da. The last layer has one output, so dU/da_n = Wn[:, 0]
for every chain: it is folded into the weights of the first product back, not multiplied in.
The (B, H) buffers live in a `work` dict that the next call reuses (ebm.neural keeps one per
energy and thread): a fresh 5 MB array costs about 1 ms of page faults on first touch.

Row blocks. Between two (B, H) @ (H, H) products (run whole, on BLAS's own threads) every stage
works on blocks of _BLOCK_ROWS rows: all its passes over one block run while the block sits in a
core's L2 cache, and the thin products of the input and output layers (K or N = D or 1) are small
enough per block that OpenBLAS computes them on the calling thread. With NumPy and a large batch
the blocks are split over threads (NumPy's ufuncs and BLAS release the GIL); each row's arithmetic
does not depend on which thread runs it, so the result is bit-identical to one thread (tested).
"""
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from smoothing import get_xp

# 256 rows of 128 float32 = 128 KiB per array; the busiest stage touches three of them.
_BLOCK_ROWS = 256
# Batches of at least this many hidden elements (B * H) are split over threads.
_PARALLEL_ELEMS = 1 << 19
_POOLS = {}


def _threads():
    """Threads for the elementwise stages: OMP_NUM_THREADS when set (as BLAS uses), else all cores."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return os.cpu_count() or 1


def _buffer(work, name, shape, dtype, xp):
    """work[name] if it already has this shape and dtype, else a new empty array kept there."""
    buf = work.get(name)
    if buf is None or buf.shape != shape or buf.dtype != dtype:
        buf = work[name] = xp.empty(shape, dtype)
    return buf


def _run_blocks(stage, n_rows, block, scratch):
    """Call stage(rows, tmp) for every block of `block` rows, split over len(scratch) threads.

    stage: writes only its own rows of preallocated arrays
    scratch: (threads, block, W), one (rows, W) tmp buffer per thread
    """
    blocks = [slice(i, min(i + block, n_rows)) for i in range(0, n_rows, block)]
    threads = len(scratch)
    share = -(-len(blocks) // threads)
    parts = [blocks[i:i + share] for i in range(0, len(blocks), share)]

    def run(k):
        for rows in parts[k]:
            stage(rows, scratch[k, :rows.stop - rows.start])

    if len(parts) == 1:
        run(0)
        return
    if len(parts) not in _POOLS:
        _POOLS[len(parts)] = ThreadPoolExecutor(len(parts), thread_name_prefix="ebm-swish")
    list(_POOLS[len(parts)].map(run, range(len(parts))))


def swish_forward_inplace(u, c):
    """u (r, H) holds z / 2; leaves c = 1 + tanh(u) and u <- a = swish(z) = u c."""
    get_xp(u).tanh(u, out=c)
    c += 1.0
    u *= c


def swish_grad_inplace(c, a, tmp):
    """c <- da/du = c + a (2 - c), from swish_forward_inplace's c and a. c, a, tmp: (r, H)."""
    get_xp(c).subtract(2.0, c, out=tmp)
    tmp *= a
    c += tmp


def swish_energy_and_input_grad(weights, biases, x, threads=None, work=None):
    """U(x) and dU/dx of a Swish MLP; the same numbers as energy_forward + energy_input_grad.

    weights: [W0 (D, H1), ..., Wn (Hn, 1)]   biases: [b0 (H1,), ..., bn (1,)]   x: (B, D)
    threads: None (all cores for a large NumPy batch) or a count; the result does not depend on it
    work: None, or a dict whose buffers are reused by the next call with the same shapes
    returns U: (B,), dU/dx: (B, D), new arrays
    """
    xp = get_xp(x)
    (B, D), dtype = x.shape, np.result_type(x, *weights)
    n = len(weights) - 1                                           # hidden layers
    w_out, b_out = weights[-1][:, 0], biases[-1][0]                # (Hn,), scalar
    if n == 0:                                                     # a linear energy
        return x @ w_out + b_out, xp.broadcast_to(w_out, x.shape).astype(dtype)
    work = {} if work is None else work
    widths = [W.shape[1] for W in weights[:-1]]
    block = _BLOCK_ROWS if xp is np else B                         # CuPy: the GPU is parallel already
    if threads is None:
        threads = _threads() if xp is np and B * max(widths) >= _PARALLEL_ELEMS else 1
    threads = max(1, min(int(threads), -(-B // block)))
    scratch = _buffer(work, "scratch", (threads, min(block, B), max(widths)), dtype, xp)

    Wh = [W * 0.5 for W in weights[:-1]]                           # u = z / 2 = h @ (W / 2) + b / 2
    bh = [b * 0.5 for b in biases[:-1]]
    # the first layer's bias rides in its thin product: [x, 1] @ [[W0 / 2], [b0 / 2]]
    x1 = _buffer(work, "x1", (B, D + 1), dtype, xp)
    x1[:, :D], x1[:, D] = x, 1.0
    W_in = xp.concatenate([Wh[0], bh[0][None]])                    # (D + 1, H1)
    # going back, dh_(i-1) = dU/du_i @ (W_i / 2).T, and at the top dU/du_n = w_out * da/du:
    # w_out is folded into that product's weights instead of multiplied into a (B, Hn) array
    W_back = [W.T for W in Wh[:-1]] + [(Wh[-1] * w_out).T]         # (H_i, H_(i-1) or D)
    A = [_buffer(work, f"a{i}", (B, H), dtype, xp) for i, H in enumerate(widths)]  # u_i, then a_i
    C = [_buffer(work, f"c{i}", (B, H), dtype, xp) for i, H in enumerate(widths)]  # c_i, then da_i/du_i
    G = [_buffer(work, f"g{i}", (B, H), dtype, xp) for i, H in enumerate(widths[:-1])]  # dU/da_i
    U, dx = xp.empty(B, dtype), xp.empty((B, D), dtype)

    def down(i):
        def stage(rows, tmp):
            if i == 0:
                xp.matmul(x1[rows], W_in, out=A[0][rows])          # thin: K = D + 1
            else:
                A[i][rows] += bh[i]
            swish_forward_inplace(A[i][rows], C[i][rows])
            if i == n - 1:
                xp.matmul(A[i][rows], w_out, out=U[rows])          # U = a_n @ Wn + bn
                U[rows] += b_out
                swish_grad_inplace(C[i][rows], A[i][rows], tmp[:, :widths[i]])  # backward starts
            if i == n - 1 == 0:
                xp.matmul(C[0][rows], W_back[0], out=dx[rows])    # thin: N = D
        return stage

    def up(i):
        def stage(rows, tmp):
            swish_grad_inplace(C[i][rows], A[i][rows], tmp[:, :widths[i]])
            G[i][rows] *= C[i][rows]                               # dU/du_i
            if i == 0:
                xp.matmul(G[0][rows], W_back[0], out=dx[rows])    # thin: N = D
        return stage

    for i in range(n):
        if i > 0:
            xp.matmul(A[i - 1], Wh[i], out=A[i])                   # (B, H_i): a big product
        _run_blocks(down(i), B, block, scratch)
    dU_du = C[n - 1]                                               # without its w_out, see W_back
    for i in range(n - 2, -1, -1):
        xp.matmul(dU_du, W_back[i + 1], out=G[i])                  # forward was: u = a @ (W / 2) + b / 2
        _run_blocks(up(i), B, block, scratch)
        dU_du = G[i]
    return U, dx
