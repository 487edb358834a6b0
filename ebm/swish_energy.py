"""U(x) and dU/dx of a Swish MLP energy in one pass down and one back: the path a sampler runs.

    U(x) = Wn^T a_n + bn,   a_i = swish(z_i),   z_i = a_(i-1) @ Wi + bi,   a_0 = x     x: (B, D)

This computes what gan's forward/backward pairs compute (ebm.neural's energy_forward followed by
energy_input_grad, tested to agree), arranged for speed: a Langevin step is nothing but this
function, two (B, H) @ (H, H) products and a dozen elementwise passes over (B, H) arrays.

Swish through exp, with the sign folded into the weights. With v = -z (every weight and bias negated
once, exact in floating point) and c = 1 + exp(v) = 1 / sigmoid(z):
    -a = -swish(z) = v / c         da/dz = sigmoid(z) (1 + z (1 - sigmoid(z))) = (1 - a) / c + a
One transcendental per element (exp; NumPy's float32 exp costs about half its tanh) and two passes
forward (+1, divide); three back for da/dz and one to multiply in dU/da. Keeping -a instead of a
costs nothing: the next layer's v = -(a @ W + b) = (-a) @ W - b takes W as it is and -b. Far on
the negative side exp(v) overflows to inf, and v / inf = 0, 1 / inf = 0 are the limits swish and
its slope have there; that overflow (and an underflow of exp far on the positive side) is the idea,
not an error, so those two flags are silenced around the block; invalid follows the caller.
The first layer's bias rides in its thin product ([x, 1] @ [[-W0], [-b0]]), and since the last
layer has one output, dU/da_n = Wn[:, 0] for every chain: it is folded into the weights of the
first product back, not multiplied in.

Row blocks, processed whole. The batch is cut into blocks of _BLOCK_ROWS rows and each block goes
all the way down and back up (every layer's product, activation and gradient) while its few
(rows, H) buffers sit in a core's L2 cache; nothing of size (B, H) is ever allocated. Each product
is issued as a stack of products of at most _SMALL_GEMM multiply-adds, which OpenBLAS computes on
the calling thread, faster than one big product (see _small_matmul). With NumPy and a batch of
more than one block the blocks are then shared out to threads (NumPy's ufuncs and BLAS release the
GIL; smoothing.threads.run_pieces, each thread taking the next block not yet taken), with no BLAS
worker threads in between; each block's arithmetic does not depend on the thread that runs it, so
the result is bit-identical to one thread (tested).
"""

import threading

import numpy as np

from smoothing import get_xp
from smoothing.threads import run_pieces, thread_count

# 256 rows: six (256, 128) float32 buffers per thread, 768 KiB, about a core's L2 cache (128 rows
# measured slower on a 512 KiB L2: twice the products, each half as tall)
_BLOCK_ROWS = 256
# OpenBLAS runs a matrix product of at most this many multiply-adds (M * K * N) on the calling
# thread (65536 * GEMM_MULTITHREAD_THRESHOLD, 4 by default), and a matrix-vector product of at most
# _SMALL_GEMV (M * K); larger ones wake its threads.
_SMALL_GEMM = 1 << 18
_SMALL_GEMV = 1 << 13
# Products with a wider W are computed in column panels this wide (see _small_matmul)
_PANEL_COLS = 64
# Batches of at least this many hidden elements (B * H, two blocks of 256 x 128) are split over threads.
_PARALLEL_ELEMS = 1 << 16


def _small_matmul(a, W, out):
    """out = a @ W, as a stack of products small enough for OpenBLAS to run on this thread.

    a: (r, K) and out: (r, N), both C-contiguous (the stack is a strided view)   W: (K, N)
    A wide W is cut into column panels of _PANEL_COLS (views, no copy) and the rows into stacks of
    s rows, s * K * panel <= _SMALL_GEMM: with K = N = 128, (32, 128) @ (128, 64) products. Measured
    with one thread on an AVX2 EPYC, (256, 128) @ (128, 128) takes 530 us as one product, 360 us as
    8-row stacks and 260 us as these panels (OpenBLAS's kernel runs a 64-wide N better than 128).
    """
    xp = get_xp(a)
    r, (K, N) = a.shape[0], W.shape
    if xp is not np or r * K * N <= (_SMALL_GEMV if N == 1 else _SMALL_GEMM):
        xp.matmul(a, W, out=out)                                   # small enough already
        return
    if N == 1:
        s, panel = max(1, _SMALL_GEMV // K), 1
    else:
        panel = _PANEL_COLS if N > _PANEL_COLS and N % _PANEL_COLS == 0 else N
        s = max(1, _SMALL_GEMM // (K * panel))
    p = N // panel
    Wp = W.reshape(K, p, panel).transpose(1, 0, 2)                 # (p, K, panel), views of W
    q = r - r % s if s < r else 0
    if q:
        xp.matmul(a[:q].reshape(q // s, 1, s, K), Wp,
                  out=out[:q].reshape(q // s, s, p, panel).transpose(0, 2, 1, 3))
    if q < r:
        xp.matmul(a[q:], Wp, out=out[q:].reshape(r - q, p, panel).transpose(1, 0, 2))


def swish_forward_inplace(v, c):
    """v (r, H) holds -z; leaves c = 1 + exp(-z) and v <- -a = -swish(z) = v / c."""
    xp = get_xp(v)
    xp.exp(v, out=c)                                               # inf far on the negative side
    c += 1.0
    xp.divide(v, c, out=v)


def swish_grad_inplace(c, na, tmp):
    """c <- da/dz = (1 - a) / c + a, from swish_forward_inplace's c and na = -a. c, na, tmp: (r, H)."""
    xp = get_xp(c)
    xp.add(na, 1.0, out=tmp)
    xp.divide(tmp, c, out=c)
    c -= na


def _prepared_layers(weights, biases, xp):
    """The weights as the blocks use them: signs folded in, the first bias and output weights too.

    Returns a dict: W_in (D + 1, H1) so that [x, 1] @ W_in = -(x @ W0 + b0) = v_0; W (W_i) and
    b (-b_i) for the hidden products i >= 1, v_i = (-a_(i-1)) @ W_i - b_i; w_out (-Wn, (Hn, 1)) and
    b_out so that U = (-a_n) @ w_out + b_out; W_back[i] (H_i, H_(i-1) or D), where going back
    dU/da_(i-1) = dU/dz_i @ W_i.T and, at the top, dU/dz_n = Wn * da_n/dz_n has its factor Wn in
    W_back[n - 1] rather than multiplied into a (rows, Hn) array.
    """
    W, w_last = list(weights[:-1]), weights[-1]
    W_back = [xp.ascontiguousarray(Wi.T) for Wi in W[:-1]]
    W_back.append(xp.ascontiguousarray((W[-1] * w_last.T).T))
    return {"W_in": xp.concatenate([-W[0], -biases[0][None]]), "W": W,
            "b": [-b for b in biases[:-1]], "w_out": -w_last, "b_out": biases[-1][0],
            "W_back": W_back}


def block_forward(x1, layers, a, c, U):
    """Down through one block of rows, keeping what block_backward needs.

    x1: (r, D + 1) = [x, 1]   a, c: per hidden layer (r, H_i) buffers, left holding -a_i and c_i
    U: (r,) filled with U = a_n @ Wn + bn
    """
    _small_matmul(x1, layers["W_in"], a[0])                        # v_0 = -z_0, thin: K = D + 1
    swish_forward_inplace(a[0], c[0])
    for i in range(1, len(a)):
        _small_matmul(a[i - 1], layers["W"][i], a[i])              # v_i = (-a_(i-1)) @ W_i - b_i
        a[i] += layers["b"][i]
        swish_forward_inplace(a[i], c[i])
    _small_matmul(a[-1], layers["w_out"], U[:, None])
    U += layers["b_out"]


def block_backward(layers, a, c, t, dx):
    """Back up through the same block: c_i <- dU/dz_i (at the top, but for Wn), dx <- dU/dx.

    a, c: from block_forward   t: per hidden layer (r, H_i) scratch   dx: (r, D) filled
    """
    swish_grad_inplace(c[-1], a[-1], t[-1])                        # da_n/dz_n
    for i in range(len(a) - 1, 0, -1):
        swish_grad_inplace(c[i - 1], a[i - 1], t[i - 1])           # da_(i-1)/dz_(i-1)
        # forward was: z_i = a_(i-1) @ W_i + b_i
        _small_matmul(c[i], layers["W_back"][i], t[i - 1])         # dU/da_(i-1)
        c[i - 1] *= t[i - 1]                                       # dU/dz_(i-1)
    _small_matmul(c[0], layers["W_back"][0], dx)                   # dU/dx, thin: N = D


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

    blocks = [slice(i, min(i + block, B)) for i in range(0, B, block)]
    errstate = {**np.geterr(), "over": "ignore", "under": "ignore"}   # exp's limits, see above
    local = threading.local()                                      # one set of buffers per thread

    def run(k):
        """Block k of rows, down and back, in this thread's own buffers (errstate is per thread)."""
        if getattr(local, "buffers", None) is None:
            local.buffers = [[xp.empty((block, H), dtype) for H in widths] for _ in range(3)]
        rows = blocks[k]
        a, c, t = ([M[:rows.stop - rows.start] for M in Ms] for Ms in local.buffers)
        with np.errstate(**errstate):
            block_forward(x1[rows], layers, a, c, U[rows])
            block_backward(layers, a, c, t, dx[rows])

    if threads is None:
        threads = thread_count() if xp is np and B * max(widths) >= _PARALLEL_ELEMS else 1
    run_pieces(run, len(blocks), name="ebm-swish", threads=threads)
    return U, dx
