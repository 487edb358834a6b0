"""Soft accuracy and soft precision / recall / F1, differentiable stand-ins for the metrics (kexue.fm 6620).

The hard metrics count agreements between a one-hot prediction and a one-hot label. Replacing the
predicted one-hot by a probability vector (softmax of the logits, or sigmoid for one positive class)
turns every count into a smooth sum, so the metric can be maximised directly: use -metric as a loss.
The post's caveat: soft F1 is a ratio of batch sums, a biased estimate of F1; it is safest as a
fine-tuning objective after cross-entropy, and it also penalises correct but unconfident predictions.

Each comes as `name(...)`, `name_forward(...) -> (out, cache)` and `name_backward(dout, cache)`.
"""
import numpy as np

from .core import as_float_array, check_axis, check_temperature, get_xp, sigmoid, softmax, softmax_backward

# Denominators of precision / recall / F1 get this added, so an empty class gives 0, never 0 / 0.
PRF_EPS = 1e-12


def as_class_labels(labels, n_classes, shape, name="labels"):
    """Integer class ids of the given shape with 0 <= id < n_classes, else ValueError naming `name`."""
    xp = np if not hasattr(labels, "__cuda_array_interface__") else get_xp(labels)
    labels = xp.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{name} must be an integer array of class ids, got dtype {labels.dtype}")
    if labels.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)} (the scores without the class axis), "
                         f"got {labels.shape}")
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(f"{name} must lie in [0, {n_classes}), got values in "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    return labels


def as_binary_targets(targets, shape, dtype, name="targets"):
    """A 0/1 array (bool, int or float holding only 0 and 1) of the given shape, as `dtype`."""
    xp = np if not hasattr(targets, "__cuda_array_interface__") else get_xp(targets)
    targets = xp.asarray(targets)
    if targets.shape != tuple(shape):
        raise ValueError(f"{name} must have the scores' shape {tuple(shape)}, got {targets.shape}")
    if targets.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a 0/1 array, got dtype {targets.dtype}")
    t = targets.astype(dtype)
    if not bool(((t == 0) | (t == 1)).all()):
        raise ValueError(f"{name} must hold only 0 and 1")
    return t


def _logits_and_onehot(logits, labels, axis, temperature, names=("logits", "labels")):
    """Softmax probabilities and one-hot labels with the class axis moved last, both (..., C)."""
    logits = as_float_array(logits, names[0])
    t = check_temperature(temperature)
    ax = check_axis(logits, axis)
    xp = get_xp(logits)
    z = xp.moveaxis(logits, ax, -1)                                  # (..., C)
    C = z.shape[-1]
    labels = as_class_labels(labels, C, z.shape[:-1], name=names[1])
    onehot = (labels[..., None] == xp.arange(C)).astype(z.dtype)    # (..., C)
    return softmax(z, axis=-1, temperature=t), onehot, ax, t


# ---- accuracy ---------------------------------------------------------------------------------
def soft_accuracy_forward(logits, labels, temperature=1.0, *, axis=-1):
    """Soft accuracy: mean over samples of p_y, p = softmax(logits / T) along the class `axis`.

    logits: (..., C, ...) floats     labels: ints, logits' shape without `axis`, values in [0, C)
    returns (acc, cache), acc a float in [0, 1]
    Bounds (derived): hard_acc >= 2 * soft_acc - 1 (p_y > 1/2 forces argmax = y) and
    soft_acc >= hard_acc / C; and |soft_acc - hard_acc| <= (C - 1) * exp(-gap / T), gap the smallest
    distance between the two largest logits of a sample (so soft -> hard as T -> 0 without ties).
    """
    p, onehot, ax, t = _logits_and_onehot(logits, labels, axis, temperature)
    N = max(1, p.size // p.shape[-1])
    acc = (p * onehot).sum() / N
    return float(acc), (p, onehot, N, ax, t)


def soft_accuracy_backward(dout, cache):
    """d acc / d logits = softmax_backward(onehot / N): the gradient of mean p_y."""
    p, onehot, N, ax, t = cache
    dz = softmax_backward(dout * onehot / N, p, axis=-1, temperature=t)
    return get_xp(p).moveaxis(dz, -1, ax)


def soft_accuracy(logits, labels, temperature=1.0, *, axis=-1):
    return soft_accuracy_forward(logits, labels, temperature, axis=axis)[0]


def hard_accuracy(logits, labels, *, axis=-1):
    """Fraction of samples whose argmax along `axis` equals the label."""
    logits = as_float_array(logits, "logits")
    ax = check_axis(logits, axis)
    pred = logits.argmax(axis=ax)
    labels = as_class_labels(labels, logits.shape[ax], pred.shape)
    return float((pred == labels).mean())


# ---- precision / recall / F1 -------------------------------------------------------------------
def _prf(p, t):
    """Per-column soft precision, recall and F1 of probabilities p against 0/1 targets t, both (N, C).

    TP = sum t p, predicted = sum p, actual = sum t:  P = TP / predicted, R = TP / actual,
    F1 = 2 TP / (actual + predicted); each denominator gets PRF_EPS.
    """
    tp = (t * p).sum(axis=0)                                        # (C,)
    pred = p.sum(axis=0) + PRF_EPS
    actual = t.sum(axis=0) + PRF_EPS
    both = pred + actual - PRF_EPS
    return tp / pred, tp / actual, 2.0 * tp / both, (pred, actual, both)


def _prf_backward(dprec, drec, df1, p, t, prec, f1, dens):
    """d(mean over columns of P, R, F1) / dp, (N, C), for scalar upstream gradients."""
    pred, actual, both = dens
    C = p.shape[1]
    # forward was: P = TP / pred, R = TP / actual, F1 = 2 TP / both with TP = sum t p
    dp = dprec * (t - prec) / pred + drec * t / actual + df1 * (2.0 * t - f1) / both
    return dp / C


def soft_prf_forward(scores, targets, temperature=1.0, average="binary", *, axis=-1):
    """Soft precision, recall and F1, usable as losses (-f1 for instance).

    average="binary": scores (...) are logits of the positive class, targets (...) are 0/1 of the same
        shape; p = sigmoid(scores / T). All entries are pooled.
    average="macro": scores (..., C, ...) are class logits along `axis`, targets are integer labels
        (scores' shape without `axis`); p = softmax(scores / T); P, R, F1 are computed per class
        (one-vs-rest over all samples) and averaged over the C classes.
    returns ((precision, recall, f1) as floats, cache)
    Bound: the soft counts (TP, predicted, actual) differ from the hard ones (prediction score > 0, or
    argmax) by at most the summed per-sample errors: sigmoid(-|s| / T) <= exp(-|s| / T) in the binary
    case, sum_c |p_c - onehot_c| <= 2 (C - 1) exp(-gap / T) in the macro case (gap: top two logits).
    So P, R, F1 tend to the hard values as T -> 0 away from ties (score 0, or tied top logits).
    At finite T soft F1 is biased (see the module docstring).
    """
    if average not in ("binary", "macro"):
        raise ValueError(f"average must be 'binary' or 'macro', got {average!r}")
    if average == "binary":
        s = as_float_array(scores, "scores")
        tm = check_temperature(temperature)
        t = as_binary_targets(targets, s.shape, s.dtype).reshape(-1, 1)
        p = sigmoid(s / tm).reshape(-1, 1)                          # (N, 1)
        ax = None
    else:
        pz, t, ax, tm = _logits_and_onehot(scores, targets, axis, temperature, ("scores", "targets"))
        s = pz
        p, t = pz.reshape(-1, pz.shape[-1]), t.reshape(-1, t.shape[-1])  # (N, C)
    prec, rec, f1, dens = _prf(p, t)
    out = (float(prec.mean()), float(rec.mean()), float(f1.mean()))
    return out, (p, t, prec, f1, dens, s.shape, average, ax, tm)


def soft_prf_backward(dprecision, drecall, df1, cache):
    """Gradient of dprecision * P + drecall * R + df1 * F1 with respect to the scores."""
    p, t, prec, f1, dens, shape, average, ax, tm = cache
    xp = get_xp(p)
    dp = _prf_backward(dprecision, drecall, df1, p, t, prec, f1, dens)
    if average == "binary":
        # forward was: p = sigmoid(s / T)
        return (dp * p * (1.0 - p) / tm).reshape(shape)
    dz = softmax_backward(dp.reshape(shape), p.reshape(shape), axis=-1, temperature=tm)
    return xp.moveaxis(dz, -1, ax)


def soft_prf(scores, targets, temperature=1.0, average="binary", *, axis=-1):
    """(precision, recall, f1), soft; see soft_prf_forward."""
    return soft_prf_forward(scores, targets, temperature, average, axis=axis)[0]


def hard_prf(scores, targets, average="binary", *, axis=-1):
    """The exact precision, recall, F1 (prediction: score > 0, or argmax), with the same PRF_EPS."""
    if average == "binary":
        s = as_float_array(scores, "scores")
        t = as_binary_targets(targets, s.shape, s.dtype).reshape(-1, 1)
        p = (s > 0).astype(s.dtype).reshape(-1, 1)
    else:
        s = as_float_array(scores, "scores")
        ax = check_axis(s, axis)
        z = get_xp(s).moveaxis(s, ax, -1)
        labels = as_class_labels(targets, z.shape[-1], z.shape[:-1], name="targets")
        C = z.shape[-1]
        p = (z.argmax(axis=-1)[..., None] == np.arange(C)).astype(s.dtype).reshape(-1, C)
        t = (labels[..., None] == np.arange(C)).astype(s.dtype).reshape(-1, C)
    prec, rec, f1, _ = _prf(p, t)
    return float(prec.mean()), float(rec.mean()), float(f1.mean())
