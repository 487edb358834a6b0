"""Convolutions at a 28 x 28 DCGAN discriminator's shapes: gan.conv against PyTorch, forward + backward.

    python -m bench conv2d [--quick] [--threads N] [--plain]

Batch 64, float32, the two strided convolutions of a DCGAN-style discriminator for 28 x 28 images:
(64, 1, 28, 28) -> 4 x 4 kernel, stride 2, padding 1 -> (64, 64, 14, 14) -> the same -> (64, 128, 7, 7),
and the generator's mirror image through conv_transpose2d (128 -> 64 -> 1 channels, 7 -> 14 -> 28).
One timed run is the forward pass of all four and the backward pass (dx, dw, db) of all four with a
fixed upstream gradient; the reference is torch.nn.functional with autograd on the same threads.
Ours is the tuned twin gan/conv_fast.py (channels-last windows, im2col as one strided copy, col2im
with the stride-2 taps grouped 2 x 2, copies spread over the BLAS threads); --plain times the plain
layer gan/conv.py (im2col and one matrix product over the whole batch) instead.

The record also holds `products_s`: the time of the tuned layers' matrix products alone (three per
layer, of the shapes conv_fast.py multiplies, on random arrays), and `products_over_reference`, that
time over PyTorch's. Over 1 it says that no arrangement of the copies around these products can bring
the ratio to 1: the products would have to get faster.
"""
import sys

import numpy as np

from bench.harness import result, set_torch_threads, time_pair
from gan import conv, conv_fast

# (kind, input shape, weight shape): weights in PyTorch's layouts; every layer has stride 2, padding 1
LAYERS = [("conv", (64, 1, 28, 28), (64, 1, 4, 4)), ("conv", (64, 64, 14, 14), (128, 64, 4, 4)),
          ("transpose", (64, 128, 7, 7), (128, 64, 4, 4)), ("transpose", (64, 64, 14, 14), (64, 1, 4, 4))]


def _pairs(module):
    """The forward/backward pairs of one module (conv or conv_fast), by layer kind."""
    return {"conv": (module.conv2d_forward, module.conv2d_backward),
            "transpose": (module.conv_transpose2d_forward, module.conv_transpose2d_backward)}


PAIRS = _pairs(conv)


def _arrays(rng, batch):
    out = []
    for kind, x_shape, w_shape in LAYERS:
        x = rng.standard_normal((batch, *x_shape[1:])).astype(np.float32)
        w = (rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))).astype(np.float32)
        b = rng.standard_normal(w_shape[0] if kind == "conv" else w_shape[1]).astype(np.float32)
        y, _ = PAIRS[kind][0](x, w, b, 2, 1)
        out.append((kind, x, w, b, rng.standard_normal(y.shape).astype(np.float32)))
    return out


def _product_shapes(arrays):
    """(kind, M, K, N) of each layer's products in conv_fast.py: M rows (pixels), inner K, N columns.

    conv: cols (B OH OW, KH KW Cin) @ (KH KW Cin, Cout); transpose: x (B H W, Cin) @ (Cin, KH KW Cout).
    """
    shapes = []
    for kind, x, w, _, dout in arrays:
        if kind == "conv":
            shapes.append((kind, dout.shape[0] * dout.shape[2] * dout.shape[3], int(np.prod(w.shape[1:])), w.shape[0]))
        else:
            shapes.append((kind, x.shape[0] * x.shape[2] * x.shape[3], w.shape[0], int(np.prod(w.shape[1:]))))
    return shapes


def _products(rng, shapes):
    """One call: every layer's three products (forward, weight gradient, input gradient) as conv_fast does
    them; the weight gradient turned by conv_fast._product as there."""
    mats = [(kind, *(rng.standard_normal(s).astype(np.float32) for s in ((M, K), (K, N), (M, N))))
            for kind, M, K, N in shapes]

    def run():
        for kind, a, b, g in mats:
            a @ b
            if kind == "conv":
                conv_fast._product(g.T, a)
            else:
                conv_fast._product(a.T, g)
            g @ b.T
    return run


def _ours(arrays, pairs):
    def run():
        for kind, x, w, b, dout in arrays:
            forward, backward = pairs[kind]
            _, cache = forward(x, w, b, 2, 1)
            backward(dout, cache)
    return run


def _torch(torch, arrays):
    fns = {"conv": torch.nn.functional.conv2d, "transpose": torch.nn.functional.conv_transpose2d}
    tensors = [(fns[kind], *(torch.tensor(a, requires_grad=True) for a in (x, w, b)), torch.tensor(dout))
               for kind, x, w, b, dout in arrays]

    def run():
        for fn, x, w, b, dout in tensors:
            x.grad = w.grad = b.grad = None
            fn(x, w, b, stride=2, padding=1).backward(dout)
    return run, tensors


def run(args):
    batch = 16 if args.quick else 64
    repeats = args.repeats or (3 if args.quick else 7)
    torch = set_torch_threads(args.threads)
    layer = "plain" if getattr(args, "plain", False) else "tuned"
    pairs = PAIRS if layer == "plain" else _pairs(conv_fast)
    arrays = _arrays(np.random.default_rng(0), batch)
    print(f"conv2d ({layer} layer): batch {batch}, 2 convolutions + 2 transposed convolutions, forward + "
          f"backward, float32, {args.threads} thread(s), {repeats} runs each", file=sys.stderr)
    ref, err = None, None
    if torch is not None:
        ref, tensors = _torch(torch, arrays)
        ref()
        kind, x, w, b, dout = arrays[1]
        _, cache = pairs["conv"][0](x, w, b, 2, 1)
        err = float(np.abs(pairs["conv"][1](dout, cache)[1] - tensors[1][2].grad.numpy()).max())
    else:
        print("torch is not installed: timing ours only", file=sys.stderr)
    ours_s, ref_s = time_pair(_ours(arrays, pairs), ref, repeats, label="conv2d")
    products_s, _ = time_pair(_products(np.random.default_rng(1), _product_shapes(arrays)), None, repeats,
                              label="conv2d, matrix products alone")
    return result("conv2d", ours_s, ref_s, args.threads, layer=layer, batch=batch, dtype="float32",
                  layers=[f"{kind} {x.shape[1:]} w{w.shape}" for kind, x, w, _, _ in arrays],
                  max_abs_diff_dw_layer2=err, products_s=round(products_s, 6),
                  products_over_reference=None if not ref_s else round(products_s / ref_s, 4))
