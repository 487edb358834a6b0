"""A small CNN classifier for Fashion-MNIST: the evaluator whose features give an FID of our own.

    x (B, 1, 28, 28) in [-1, 1]
    conv1 3x3, 1 -> 16, padding 1, ReLU, 2x2 max pool      (B, 16, 14, 14)
    conv2 3x3, 16 -> 32, padding 1, ReLU, 2x2 max pool     (B, 32, 7, 7)
    flatten, fc1 1568 -> 128, ReLU                          (B, 128)   the features (gan/fid.py)
    fc2 128 -> 10                                           (B, 10)    the logits

Trained with softmax cross-entropy and Adam (train_classifier). The convolutions come from a module
passed in as `conv` (gan.conv, the plain layer, by default; the demos pass gan.conv_fast, its tuned
twin with the same functions); max pooling, cross-entropy and the model's forward/backward are
written here as pairs. Parameter names follow a PyTorch nn.Sequential's (conv1.weight, ...), with
the linear weights as (Din, Dout), as gan/nn.py lays them out.
"""
import numpy as np

from smoothing import get_xp, log_softmax

from . import conv as plain_conv
from .nn import linear_backward, linear_forward, relu_backward, relu_forward
from .optim import Adam

N_CLASSES = 10
FEATURES = 128


def maxpool2_forward(x):
    """2x2 max pooling with stride 2 (an odd last row or column is dropped, as PyTorch does).

    x: (B, C, H, W) -> out (B, C, H // 2, W // 2),  out[b, c, h, w] = max of x[b, c, 2h:2h+2, 2w:2w+2]
    """
    xp = get_xp(x)
    H2, W2 = x.shape[2] // 2, x.shape[3] // 2
    corners = [x[:, :, di:2 * H2:2, dj:2 * W2:2] for di in (0, 1) for dj in (0, 1)]   # 4 x (B, C, H2, W2)
    out = corners[0]
    for c in corners[1:]:
        out = xp.maximum(out, c)
    return out, (x.shape, corners, out)


def maxpool2_backward(dout, cache):
    """dout (B, C, H // 2, W // 2) -> dx (B, C, H, W): each window's gradient goes to its first maximum."""
    shape, corners, out = cache
    xp = get_xp(dout)
    # forward was: out = max(corners); the gradient of a max flows to the entry that won (the first of a tie)
    dx = xp.zeros(shape, dtype=dout.dtype)
    taken = xp.zeros(out.shape, dtype=bool)
    H2, W2 = out.shape[2:]
    for k, (di, dj) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):       # the order of the corners
        wins = (corners[k] == out) & ~taken
        dx[:, :, di:2 * H2:2, dj:2 * W2:2] = dout * wins
        taken |= wins
    return dx


def cross_entropy_forward(logits, labels):
    """Mean softmax cross-entropy. logits (B, K), labels (B,) ints in 0..K-1 -> (loss, cache)

    loss = mean_b [ logsumexp(logits[b]) - logits[b, labels[b]] ]
    """
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"labels must have shape ({logits.shape[0]},) for logits {logits.shape}, "
                         f"got {labels.shape}")
    xp = get_xp(logits)
    logp = log_softmax(logits, axis=1)                                    # (B, K)
    rows = xp.arange(logits.shape[0])
    return -logp[rows, labels].mean(), (logp, labels)


def cross_entropy_backward(cache):
    """-> dlogits (B, K) = (softmax(logits) - onehot(labels)) / B."""
    logp, labels = cache
    xp = get_xp(logp)
    # forward was: loss = mean(logsumexp(z) - z[label]);  d logsumexp / dz = softmax(z)
    dlogits = xp.exp(logp)
    dlogits[xp.arange(logp.shape[0]), labels] -= 1
    return dlogits / logp.shape[0]


def classifier_init(rng, dtype=np.float32):
    """Parameters (He normal weights, zero biases): a dict name -> array."""
    def he(shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)
    return {"conv1.weight": he((16, 1, 3, 3), 9), "conv1.bias": np.zeros(16, dtype),
            "conv2.weight": he((32, 16, 3, 3), 144), "conv2.bias": np.zeros(32, dtype),
            "fc1.weight": he((32 * 7 * 7, FEATURES), 32 * 7 * 7), "fc1.bias": np.zeros(FEATURES, dtype),
            "fc2.weight": he((FEATURES, N_CLASSES), FEATURES) / 2, "fc2.bias": np.zeros(N_CLASSES, dtype)}


def classifier_forward(params, x, conv=plain_conv):
    """x (B, 1, 28, 28) -> (logits (B, 10), features (B, 128), cache); conv: gan.conv or gan.conv_fast."""
    if x.ndim != 4 or x.shape[1:] != (1, 28, 28):
        raise ValueError(f"x must have shape (B, 1, 28, 28), got {x.shape}")
    h, c1 = conv.conv2d_forward(x, params["conv1.weight"], params["conv1.bias"], 1, 1)   # (B, 16, 28, 28)
    h, r1 = relu_forward(h)
    h, p1 = maxpool2_forward(h)                                                          # (B, 16, 14, 14)
    h, c2 = conv.conv2d_forward(h, params["conv2.weight"], params["conv2.bias"], 1, 1)   # (B, 32, 14, 14)
    h, r2 = relu_forward(h)
    h, p2 = maxpool2_forward(h)                                                          # (B, 32, 7, 7)
    flat = h.reshape(h.shape[0], -1)                                                     # (B, 1568)
    z, l1 = linear_forward(flat, params["fc1.weight"], params["fc1.bias"])
    features, r3 = relu_forward(z)                                                       # (B, 128)
    logits, l2 = linear_forward(features, params["fc2.weight"], params["fc2.bias"])      # (B, 10)
    return logits, features, (conv, c1, r1, p1, c2, r2, p2, h.shape, l1, r3, l2)


def classifier_backward(dlogits, cache):
    """dlogits (B, 10) -> grads, a dict with the keys of params."""
    conv, c1, r1, p1, c2, r2, p2, pooled_shape, l1, r3, l2 = cache
    g = {}
    dfeat, g["fc2.weight"], g["fc2.bias"] = linear_backward(dlogits, l2)
    dflat, g["fc1.weight"], g["fc1.bias"] = linear_backward(relu_backward(dfeat, r3), l1)
    dh = maxpool2_backward(dflat.reshape(pooled_shape), p2)
    dh, g["conv2.weight"], g["conv2.bias"] = conv.conv2d_backward(relu_backward(dh, r2), c2)
    dh = maxpool2_backward(dh, p1)
    _, g["conv1.weight"], g["conv1.bias"] = conv.conv2d_backward(relu_backward(dh, r1), c1)
    return g


def to_inputs(images):
    """uint8 images (N, 28, 28) -> float32 (N, 1, 28, 28) in [-1, 1], the scale of the GAN's tanh."""
    return (images.astype(np.float32) / np.float32(127.5) - 1)[:, None]


def train_classifier(images, labels, steps, rng, batch=64, lr=1e-3, conv=plain_conv, progress=None):
    """Adam on the cross-entropy for `steps` updates of `batch` images drawn by epochs (shuffled).

    images: (N, 1, 28, 28) float32 in [-1, 1]   labels: (N,) ints   rng: numpy Generator
    The learning rate falls linearly to lr / 10 over the last half of the updates.
    progress: callable(step, loss) called every 100 updates, or None. Returns params.
    """
    params = classifier_init(rng)
    opt = Adam(params, lr, betas=(0.9, 0.999))
    order, pos, running = rng.permutation(len(images)), 0, None
    for step in range(1, steps + 1):
        if pos + batch > len(order):
            order, pos = rng.permutation(len(images)), 0
        idx = order[pos:pos + batch]
        pos += batch
        logits, _, cache = classifier_forward(params, images[idx], conv)
        loss, lcache = cross_entropy_forward(logits, labels[idx])
        grads = classifier_backward(cross_entropy_backward(lcache), cache)
        opt.lr = lr * (1 - 0.9 * max(0.0, 2 * step / steps - 1))        # lr, then down to lr / 10
        opt.step(params, grads)
        running = float(loss) if running is None else 0.98 * running + 0.02 * float(loss)
        if progress is not None and (step % 100 == 0 or step == steps):
            progress(step, running)
    return params


def classify(params, images, conv=plain_conv, batch=500):
    """Features (N, 128) and predicted classes (N,) of images (N, 1, 28, 28), `batch` at a time."""
    feats, preds = [], []
    for i in range(0, len(images), batch):
        logits, f, _ = classifier_forward(params, images[i:i + batch], conv)
        feats.append(f)
        preds.append(logits.argmax(axis=1))
    xp = get_xp(images)
    return xp.concatenate(feats), xp.concatenate(preds)
