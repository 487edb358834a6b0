"""Multi-label "softmax + cross-entropy" (kexue.fm 7359, the loss behind GlobalPointer).

Single-label cross-entropy is a logsumexp in disguise:
    -log softmax(s)_t = log(1 + sum_{i != t} exp(s_i - s_t))  ~  max(0, max_{i != t} (s_i - s_t)),
a smooth hinge asking the target score to beat every other score. For several target classes (the
positives) the same idea, with 0 as the threshold between positives and negatives, gives
    loss = log(1 + sum_{i in neg} exp(s_i)) + log(1 + sum_{j in pos} exp(-s_j)):
every negative score is pushed below 0 and every positive score above 0, and at test time the
predicted label set is {i : s_i > 0}. No class weights or top-k tuning are needed, unlike summing
per-class sigmoid cross-entropies. (It is Circle loss eq. (1) without its scale gamma and margin m.)

With a temperature T the loss is T * [log(1 + sum_neg exp(s_i / T)) + log(1 + sum_pos exp(-s_j / T))];
T = 1 is the post's loss and T -> 0 gives the hard hinge below.
"""
from .classification import as_binary_targets
from .core import as_float_array, check_axis, check_temperature, get_xp, logsumexp, softmax


def multilabel_hinge(scores, targets, *, axis=-1):
    """The T -> 0 limit: relu(max over negatives of s) + relu(max over positives of -s), per sample."""
    s = as_float_array(scores, "scores")
    ax = check_axis(s, axis)
    xp = get_xp(s)
    t = as_binary_targets(targets, s.shape, s.dtype)
    neg = xp.where(t == 1, -xp.inf, s).max(axis=ax)
    pos = xp.where(t == 1, -s, -xp.inf).max(axis=ax)
    return xp.maximum(neg, 0.0) + xp.maximum(pos, 0.0)


def multilabel_softmax_ce_forward(scores, targets, temperature=1.0, *, axis=-1):
    """Per-sample multi-label loss along the class `axis` (see the module docstring for the formula).

    scores: (..., C, ...) floats, -inf allowed where the target is 0 (a class ruled out)
    targets: same shape, 0/1 (bool, int or float)
    returns (loss, cache); loss has scores' shape without `axis` (average it for a batch loss)
    Bound: 0 <= loss - multilabel_hinge <= T * (log(1 + n_neg) + log(1 + n_pos)) <= 2 T log(1 + C),
    n_neg, n_pos the numbers of negatives and positives of the sample.
    """
    s = as_float_array(scores, "scores")
    tm = check_temperature(temperature)
    ax = check_axis(s, axis)
    xp = get_xp(s)
    t = as_binary_targets(targets, s.shape, s.dtype)
    s, t = xp.moveaxis(s, ax, -1), xp.moveaxis(t, ax, -1)             # (..., C)
    if bool(xp.any((t == 1) & ~(s > -xp.inf))):
        raise ValueError("scores must be finite where targets is 1 (a positive class cannot be -inf)")
    zero = xp.zeros(s.shape[:-1] + (1,), dtype=s.dtype)               # the threshold class s_0 = 0
    # the two logsumexps, each over [0, chosen entries] with the others set to -inf
    a_neg = xp.concatenate([zero, xp.where(t == 1, -xp.inf, s)], axis=-1)   # (..., 1 + C)
    a_pos = xp.concatenate([zero, xp.where(t == 1, -s, -xp.inf)], axis=-1)  # (..., 1 + C)
    loss = (logsumexp(a_neg, axis=-1, temperature=tm)
            + logsumexp(a_pos, axis=-1, temperature=tm))                    # (...,)
    q_neg = softmax(a_neg, axis=-1, temperature=tm)[..., 1:]         # d first term / d s, on negatives
    q_pos = softmax(a_pos, axis=-1, temperature=tm)[..., 1:]         # d second term / d (-s), positives
    return loss, (q_neg, q_pos, ax)


def multilabel_softmax_ce_backward(dout, cache):
    """d loss / d s_i = q_neg_i on negatives and -q_pos_j on positives, with q the softmax weights of
    each logsumexp (temperature cancels: d/ds of T * lse(s / T) is softmax(s / T))."""
    q_neg, q_pos, ax = cache
    xp = get_xp(q_neg)
    # forward was: loss = T lse_T([0, s_neg]) + T lse_T([0, -s_pos])
    ds = xp.asarray(dout)[..., None] * (q_neg - q_pos)               # (..., C)
    return xp.moveaxis(ds, -1, ax)


def multilabel_softmax_ce(scores, targets, temperature=1.0, *, axis=-1):
    return multilabel_softmax_ce_forward(scores, targets, temperature, axis=axis)[0]
