"""Adam (Kingma & Ba 2015) over a dict of arrays, updating the arrays in place.

    m = b1 * m + (1 - b1) * g          v = b2 * v + (1 - b2) * g^2
    p = p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

The default betas (0.5, 0.999) are the usual choice for GANs (Radford et al. 2016).
"""
from smoothing import get_xp


class Adam:
    """Adam for params: dict name -> float array. `step(params, grads)` updates params in place.

    lr: step size > 0    betas: (b1, b2) in [0, 1)    eps: added to sqrt(v_hat)
    The moment estimates are kept per name; grads must have exactly the keys of params.
    """

    def __init__(self, params, lr, betas=(0.5, 0.999), eps=1e-8):
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        self.lr, self.b1, self.b2, self.eps = float(lr), float(b1), float(b2), float(eps)
        self.t = 0
        self.m = {k: get_xp(p).zeros_like(p) for k, p in params.items()}
        self.v = {k: get_xp(p).zeros_like(p) for k, p in params.items()}

    def step(self, params, grads):
        """One Adam update of every params[k] with grads[k] (same shapes), in place."""
        if set(grads) != set(self.m):
            raise ValueError(f"grads must have keys {sorted(self.m)}, got {sorted(grads)}")
        self.t += 1
        c1 = 1.0 - self.b1 ** self.t                      # bias corrections
        c2 = 1.0 - self.b2 ** self.t
        for k, g in grads.items():
            if g.shape != params[k].shape:
                raise ValueError(f"grads[{k!r}] has shape {g.shape}, params has {params[k].shape}")
            m, v = self.m[k], self.v[k]
            m *= self.b1
            m += (1.0 - self.b1) * g
            v *= self.b2
            v += (1.0 - self.b2) * (g * g)
            params[k] -= self.lr * (m / c1) / ((v / c2) ** 0.5 + self.eps)
