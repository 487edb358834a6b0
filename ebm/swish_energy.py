"""U(x) and dU/dx of a Swish MLP energy in one pass down and one back: the path a sampler runs.

    U(x) = Wn^T a_n + bn,   a_i = swish(z_i),   z_i = a_(i-1) @ Wi + bi,   a_0 = x     x: (B, D)

This computes what gan's forward/backward pairs compute (ebm.neural's energy_forward followed by
energy_input_grad, tested to agree), arranged for speed: a Langevin step is nothing but this
function, two (B, H) @ (H, H) products and a dozen elementwise passes over (B, H) arrays.

Swish through tanh. With u = z / 2 (every weight and bias halved once; exact in floating point):
    sigmoid(z) = (1 + tanh(u)) / 2,   so   a = swish(z) = u c   with   c = 1 + tanh(u)
    da/du = c + u (1 - tanh(u)^2) = c + a (2 - c)
and back through u = h @ (W / 2) + b / 2, dh = (dU/du) @ (W / 2).T is the same dh as through z.
One transcendental per element (tanh, cheaper than exp in NumPy) and two passes forward; three
back for da/du and one to multiply in dU/da. The first layer's bias rides in its thin product
([x, 1] @ [[W0 / 2], [b0 / 2]]), and since the last layer has one output, dU/da_n = Wn[:, 0] for
every chain: it is folded into the weights of the first product back, not multiplied in.

Row blocks, processed whole. The batch is cut into blocks of _BLOCK_ROWS rows and each block goes
all the way down and back up (every layer's product, activation and gradient) while its few
(rows, H) buffers sit in a core's L2 cache; nothing of size (B, H) is ever allocated. Each product
is issued as a stack of products of at most _SMALL_GEMM multiply-adds, which OpenBLAS computes on
the calling thread, at about the speed of one big product. With NumPy and a large batch the blocks
are then split over threads (NumPy's ufuncs and BLAS release the GIL), one share of blocks per
thread and no BLAS worker threads in between; each block's arithmetic does not depend on the
thread that runs it, so the result is bit-identical to one thread (tested).
"""

import numpy as np

from smoothing import get_xp
from smoothing.threads import thread_count, thread_pool

# 256 rows: six (256, 128) float32 buffers per thread, 768 KiB, inside a core's L2 cache
_BLOCK_ROWS = 256
# OpenBLAS runs a matrix product of at most this many multiply-adds (M * K * N) on the calling
# thread, and a matrix-vector product of at most _SMALL_GEMV (M * K); larger ones wake its threads.
_SMALL_GEMM = 1 << 17
_SMALL_GEMV = 1 << 13
# Batches of at least this many hidden elements (B * H) are split over threads.
_PARALLEL_ELEMS = 1 << 19


def _small_matmul(a, W, out):
    """out = a @ W, as a stack of products small enough for OpenBLAS to run on this thread.

    a: (r, K) and out: (r, N), both C-contiguous (the stack is a reshaped view)   W: (K, N)
    With K = N = 128 each product has 8 rows; the stack costs about what one (r, K) @ (K, N) does.
    """
    xp = get_xp(a)
    r, (K, N) = a.shape[0], W.shape
    s = max(1, (_SMALL_GEMV // K) if N == 1 else (_SMALL_GEMM // (K * N)))
    q = r - r % s
    if xp is not np or q == 0 or s >= r:
        xp.matmul(a, W, out=out)
        return
    xp.matmul(a[:q].reshape(q // s, s, K), W, out=out[:q].reshape(q // s, s, N))
    if q < r:
        xp.matmul(a[q:], W, out=out[q:])


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


def _prepared_layers(weights, biases, xp):
    """The weights as the blocks use them: halved, the first bias and the output weights folded in.

    Returns a dict: W_in (D + 1, H1) so that [x, 1] @ W_in = x @ (W0 / 2) + b0 / 2; W (W_i / 2) and
    b (b_i / 2) for the hidden products i >= 1; w_out (Hn, 1), b_out; W_back[i] (H_i, H_(i-1) or D),
    where going back dU/da_(i-1) = dU/du_i @ (W_i / 2).T and, at the top, dU/du_n = w_out * da/du
    has its factor w_out in W_back[n - 1] rather than multiplied into a (rows, Hn) array.
    """
    Wh = [W * 0.5 for W in weights[:-1]]                           # u = z / 2 = h @ (W / 2) + b / 2
    bh = [b * 0.5 for b in biases[:-1]]
    w_out = weights[-1]
    W_back = [xp.ascontiguousarray(W.T) for W in Wh[:-1]]
    W_back.append(xp.ascontiguousarray((Wh[-1] * w_out.T).T))
    return {"W_in": xp.concatenate([Wh[0], bh[0][None]]), "W": Wh, "b": bh,
            "w_out": w_out, "b_out": biases[-1][0], "W_back": W_back}


def block_forward(x1, layers, a, c, U):
    """Down through one block of rows, keeping what block_backward needs.

    x1: (r, D + 1) = [x, 1]   a, c: per hidden layer (r, H_i) buffers, left holding a_i and c_i
    U: (r,) filled with U = a_n @ Wn + bn
    """
    _small_matmul(x1, layers["W_in"], a[0])                        # u_0, thin: K = D + 1
    swish_forward_inplace(a[0], c[0])
    for i in range(1, len(a)):
        _small_matmul(a[i - 1], layers["W"][i], a[i])              # u_i = a_(i-1) @ (W_i / 2) + b_i / 2
        a[i] += layers["b"][i]
        swish_forward_inplace(a[i], c[i])
    _small_matmul(a[-1], layers["w_out"], U[:, None])
    U += layers["b_out"]


def block_backward(layers, a, c, t, dx):
    """Back up through the same block: c_i <- dU/du_i (at the top, but for w_out), dx <- dU/dx.

    a, c: from block_forward   t: per hidden layer (r, H_i) scratch   dx: (r, D) filled
    """
    swish_grad_inplace(c[-1], a[-1], t[-1])                        # da_n/du_n
    for i in range(len(a) - 1, 0, -1):
        swish_grad_inplace(c[i - 1], a[i - 1], t[i - 1])           # da_(i-1)/du_(i-1)
        # forward was: u_i = a_(i-1) @ (W_i / 2) + b_i / 2
        _small_matmul(c[i], layers["W_back"][i], t[i - 1])         # dU/da_(i-1)
        c[i - 1] *= t[i - 1]                                       # dU/du_(i-1)
    _small_matmul(c[0], layers["W_back"][0], dx)                   # dU/dx, thin: N = D


def _split_over_threads(run, blocks, threads):
    """run(part) for contiguous shares of the blocks, one per thread, under the caller's errstate."""
    share = -(-len(blocks) // max(1, threads))
    parts = [blocks[i:i + share] for i in range(0, len(blocks), share)]
    errstate = np.geterr()                                         # per thread in NumPy

    def run_with_errstate(part):
        with np.errstate(**errstate):
            run(part)

    if len(parts) <= 1:
        for part in parts:
            run(part)
        return
    list(thread_pool(len(parts), "ebm-swish").map(run_with_errstate, parts))


def swish_energy_and_input_grad(weights, biases, x, threads=None):
    """U(x) and dU/dx of a Swish MLP; the same numbers as energy_forward + energy_input_grad.

    weights: [W0 (D, H1), ..., Wn (Hn, 1)]   biases: [b0 (H1,), ..., bn (1,)]   x: (B, D)
    threads: None (all cores for a large NumPy batch) or a count; the result does not depend on it
    returns U: (B,), dU/dx: (B, D)
    """
    xp = get_xp(x)
    (B, D), dtype = x.shape, np.result_type(x.dtype, *[W.dtype for W in weights])
    if len(weights) == 1:                                          # a linear energy
        w = weights[0][:, 0]
        return x @ w + biases[0][0], xp.broadcast_to(w, x.shape).astype(dtype)
    widths = [W.shape[1] for W in weights[:-1]]
    layers = _prepared_layers(weights, biases, xp)
    x1 = xp.empty((B, D + 1), dtype)                               # [x, 1]
    x1[:, :D], x1[:, D] = x, 1.0
    U, dx = xp.empty(B, dtype), xp.empty((B, D), dtype)
    block = _BLOCK_ROWS if xp is np else B                         # CuPy: the GPU is parallel already

    def run(part):
        """Every block of rows in `part`, down and back, in this thread's own buffers."""
        A, C, T = ([xp.empty((block, H), dtype) for H in widths] for _ in range(3))
        for rows in part:
            r = rows.stop - rows.start
            a, c, t = [M[:r] for M in A], [M[:r] for M in C], [M[:r] for M in T]
            block_forward(x1[rows], layers, a, c, U[rows])
            block_backward(layers, a, c, t, dx[rows])

    blocks = [slice(i, min(i + block, B)) for i in range(0, B, block)]
    if threads is None:
        threads = thread_count() if xp is np and B * max(widths) >= _PARALLEL_ELEMS else 1
    _split_over_threads(run, blocks, int(threads))
    return U, dx
