"""Optimizers for a dict of NumPy parameters: AdamW (optionally LAMB), schedules, clipping, accumulation, EMA.

Parameters and gradients are flat dicts `{name: array}` with the same keys (what `bert_backward` returns).
Updates are made in place, so anything holding a reference to a parameter array sees the new values.
This is the plain layer: `adamw_step` is the formula below, one tensor at a time. The tuned twin,
`minibert.fast.optim.adamw_steps` (blocks in cache, threads, scratch buffers), is chosen by passing
`ops=minibert.fast.OPS` to AdamW (see ops.py).

AdamW step t (t = 1, 2, ...), for each tensor w with gradient g, following Loshchilov & Hutter (2019):
    m = b1 * m + (1 - b1) * g                 v = b2 * v + (1 - b2) * g * g
    u = (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps) + wd * w     (decay skipped for LayerNorm, bias)
    w = w - lr_t * r * u
with r = 1 for AdamW and, for LAMB (You et al., 2020), r = |w| / |u| per tensor (1 if either norm is 0,
and 1 for the tensors that skip decay, as bert4keras does). `bias_correction=False` drops the two
(1 - b**t) factors, as bert4keras' pretraining does.
"""
import numpy as np

from smoothing import get_xp


def skips_weight_decay(name):
    """True for LayerNorm weights and every bias: these are neither decayed nor LAMB-scaled."""
    return "LayerNorm" in name or "Norm." in name or name.endswith("bias")


def warmup_linear_decay(step, warmup_steps, total_steps):
    """Learning-rate multiplier after `step` updates: 0 -> 1 linearly over warm-up, then linearly to 0.

    step 0 is the first update (multiplier 0 when warmup_steps > 0), as in the usual BERT schedule:
    f(s) = s / warmup for s < warmup, else max(0, (total - s) / (total - warmup)).
    """
    if warmup_steps < 0 or total_steps < warmup_steps:
        raise ValueError(f"schedule needs 0 <= warmup_steps <= total_steps, got warmup_steps={warmup_steps}, "
                         f"total_steps={total_steps}")
    if step < warmup_steps:
        return step / warmup_steps
    if total_steps == warmup_steps:
        return 1.0 if step == warmup_steps else 0.0
    return max(0.0, (total_steps - step) / (total_steps - warmup_steps))


def global_norm(grads):
    """sqrt of the sum of squares of every gradient entry (summed per tensor, then across tensors)."""
    total = 0.0
    for g in grads.values():
        flat = g.reshape(-1)
        total += float(flat @ flat)
    return total ** 0.5


def clip_by_global_norm(grads, max_norm):
    """Scale every gradient by min(1, max_norm / (norm + 1e-6)) in place; returns the norm before clipping.

    The 1e-6 is the one torch.nn.utils.clip_grad_norm_ uses, so both clip identically.
    """
    norm = global_norm(grads)
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        for g in grads.values():
            g *= g.dtype.type(coef)
    return norm


OPTIONS = {
    "lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-6, "weight_decay": 0.01, "bias_correction": True,
    "lamb": False, "max_grad_norm": None, "warmup_steps": 0, "total_steps": None,
}


class AdamW:
    """AdamW with decoupled weight decay; `lamb=True` adds LAMB's per-tensor trust ratio.

    options (every one has a default in OPTIONS; an unknown name raises ValueError):
      lr, betas, eps, weight_decay, bias_correction, lamb,
      max_grad_norm  clip the global gradient norm to this before the update (None: no clipping)
      warmup_steps, total_steps  the warm-up + linear-decay schedule (total_steps None: constant lr)
    ops: None for the plain step of this module, or an ops table (ops.py) whose adamw_steps is used
    State: `step` (updates done), `m` and `v` (dicts like params).
    """

    def __init__(self, params, ops=None, **options):
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ValueError(f"unknown optimizer option(s) {unknown}; expected some of {sorted(OPTIONS)}")
        opts = dict(OPTIONS, **options)
        b1, b2 = opts["betas"]
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"betas must be two numbers in [0, 1), got {opts['betas']!r}")
        if not opts["lr"] >= 0.0 or not opts["eps"] > 0.0 or not opts["weight_decay"] >= 0.0:
            raise ValueError(f"lr and weight_decay must be >= 0 and eps > 0, got lr={opts['lr']!r}, "
                             f"eps={opts['eps']!r}, weight_decay={opts['weight_decay']!r}")
        if opts["max_grad_norm"] is not None and not opts["max_grad_norm"] > 0:
            raise ValueError(f"max_grad_norm must be > 0 or None, got {opts['max_grad_norm']!r}")
        if opts["total_steps"] is not None:
            warmup_linear_decay(0, opts["warmup_steps"], opts["total_steps"])  # validates the pair
        self.options = opts
        self.step = 0
        self.m = {k: get_xp(p).zeros_like(p) for k, p in params.items()}
        self.v = {k: get_xp(p).zeros_like(p) for k, p in params.items()}
        self.adamw_steps = adamw_steps if ops is None else ops.adamw_steps

    def lr_at(self, step):
        """Learning rate used by the update that follows `step` earlier updates."""
        o = self.options
        if o["total_steps"] is None:
            return o["lr"] * (step / o["warmup_steps"] if step < o["warmup_steps"] else 1.0)
        return o["lr"] * warmup_linear_decay(step, o["warmup_steps"], o["total_steps"])

    def update(self, params, grads):
        """One update of every parameter in place (grads may be clipped in place). Returns the grad norm."""
        if grads.keys() != params.keys() or params.keys() != self.m.keys():
            missing = sorted(set(self.m) ^ set(grads)) or sorted(set(self.m) ^ set(params))
            raise ValueError(f"grads and params must have the optimizer's keys; these differ: {missing[:5]}")
        o = self.options
        norm = (clip_by_global_norm(grads, o["max_grad_norm"]) if o["max_grad_norm"] is not None
                else None)
        lr = self.lr_at(self.step)
        self.step += 1
        b1, b2 = o["betas"]
        c1 = 1.0 - b1 ** self.step if o["bias_correction"] else 1.0
        c2 = 1.0 - b2 ** self.step if o["bias_correction"] else 1.0
        steps = []                                        # (w, g, m, v, decay) of the AdamW tensors
        for name, w in params.items():
            g, m, v = grads[name], self.m[name], self.v[name]
            if g.shape != w.shape:
                raise ValueError(f"gradient of {name} has shape {g.shape}, parameter has {w.shape}")
            plain = skips_weight_decay(name)
            if o["lamb"] and not plain:
                # LAMB: the AdamW direction with its decay, scaled by the trust ratio |w| / |u|
                u = adam_direction(g, m, v, b1, b2, c1, c2, o["eps"]) + o["weight_decay"] * w
                w -= (lr * _trust_ratio(w, u)) * u
            else:
                steps.append((w, g, m, v, 0.0 if plain else o["weight_decay"]))
        self.adamw_steps(steps, lr, b1, b2, c1, c2, o["eps"])
        return norm


def adam_direction(g, m, v, b1, b2, c1, c2, eps):
    """Update the moments in place and return Adam's direction (m / c1) / (sqrt(v / c2) + eps).

    g, m, v: arrays of one shape   m = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g^2
    c1, c2: the bias corrections 1 - b1**t, 1 - b2**t (1.0 without bias correction)
    """
    m[...] = b1 * m + (1.0 - b1) * g
    v[...] = b2 * v + (1.0 - b2) * g * g
    return (m / c1) / (get_xp(v).sqrt(v / c2) + eps)


def adamw_step(w, g, m, v, lr, decay, b1, b2, c1, c2, eps):
    """One AdamW step of one tensor, in place in w, m and v.

    w = w - lr * (direction + decay * w),  direction as adam_direction;  decay 0 skips weight decay
    """
    u = adam_direction(g, m, v, b1, b2, c1, c2, eps)
    w[...] = w - lr * (u + decay * w)


def adamw_steps(steps, lr, b1, b2, c1, c2, eps):
    """adamw_step for every (w, g, m, v, decay) in steps: the optimizer's elementwise work."""
    for w, g, m, v, decay in steps:
        adamw_step(w, g, m, v, lr, decay, b1, b2, c1, c2, eps)


def _trust_ratio(w, u):
    """LAMB's |w| / |u| for one tensor, 1 when either norm is zero."""
    wn = float(get_xp(w).linalg.norm(w.reshape(-1).astype(np.float64)))
    un = float(get_xp(u).linalg.norm(u.reshape(-1).astype(np.float64)))
    return wn / un if wn > 0.0 and un > 0.0 else 1.0


class GradientAccumulator:
    """Weighted mean of gradients over micro-batches: sum_i n_i g_i / sum_i n_i.

    With n_i the number of terms micro-batch i's mean loss averages (e.g. masked tokens), the result is
    exactly the gradient of the mean loss over the union of the micro-batches: k micro-batches equal one
    batch k times larger.
    """

    def __init__(self):
        self.total = None
        self.weight = 0.0
        self.count = 0

    def add(self, grads, weight=1.0):
        """Add one micro-batch's gradient (of a mean loss over `weight` terms)."""
        if not weight >= 0:
            raise ValueError(f"weight must be >= 0, got {weight!r}")
        if self.total is None:
            self.total = {k: g * g.dtype.type(weight) for k, g in grads.items()}
        else:
            if grads.keys() != self.total.keys():
                raise ValueError("every micro-batch must give gradients for the same parameter names")
            for k, g in grads.items():
                self.total[k] += g * g.dtype.type(weight)
        self.weight += weight
        self.count += 1

    def mean(self):
        """The accumulated weighted mean; resets the accumulator."""
        if self.total is None or self.weight == 0:
            raise ValueError("nothing accumulated (or only zero weights): call add() first")
        out = self.total
        for g in out.values():
            g *= g.dtype.type(1.0 / self.weight)
        self.total, self.weight, self.count = None, 0.0, 0
        return out


class EMA:
    """Exponential moving average of the weights with Adam-style bias correction, swappable for evaluation.

    shadow_t = d * shadow_{t-1} + (1 - d) * w_t, shadow_0 = 0; the average is shadow_t / (1 - d**t),
    so a weight that never changes averages to itself exactly from the first update on.
    """

    def __init__(self, params, decay=0.999):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay!r}")
        self.decay = decay
        self.step = 0
        self.shadow = {k: get_xp(p).zeros_like(p) for k, p in params.items()}
        self._backup = None

    def update(self, params):
        """Fold the current weights into the average (call after each optimizer update)."""
        if self._backup is not None:
            raise ValueError("EMA.update called while the average is swapped in; call swap_out first")
        d = self.decay
        for k, p in params.items():
            s = self.shadow[k]
            s *= s.dtype.type(d)
            s += s.dtype.type(1.0 - d) * p
        self.step += 1

    def average(self):
        """The bias-corrected averages as new arrays."""
        if self.step == 0:
            raise ValueError("EMA has no updates yet: call update(params) first")
        c = 1.0 / (1.0 - self.decay ** self.step)
        return {k: s * s.dtype.type(c) for k, s in self.shadow.items()}

    def swap_in(self, params):
        """Write the averaged weights into params (in place), keeping the trained weights aside."""
        if self._backup is not None:
            raise ValueError("EMA weights are already swapped in")
        self._backup = {k: p.copy() for k, p in params.items()}
        for k, a in self.average().items():
            params[k][...] = a

    def swap_out(self, params):
        """Put the trained weights back, bit for bit."""
        if self._backup is None:
            raise ValueError("EMA weights are not swapped in")
        for k, p in self._backup.items():
            params[k][...] = p
        self._backup = None
