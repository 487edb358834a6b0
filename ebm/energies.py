"""Analytic energies U(x) with closed-form gradients, the targets the samplers are tested on.

A density q(x) = exp(-U(x)) / Z. Every energy here is a callable object

    U, dU = energy(x)        x: (B, D)  ->  U: (B,), dU = dU/dx: (B, D)

with `dim`, `log_z` (log Z, known in closed form for each of them) and `log_prob(x) = -U(x) - log_z`.
Where the moments are known exactly, `mean` (D,) and `cov` (D, D) are attributes, so a sampler's
output can be compared with the truth. Parameters take the array module (NumPy or CuPy) of `mean`
or `means`; x must live in the same module.
"""
import math

import numpy as np

from smoothing import get_xp, logsumexp, softmax


def _check_points(x, dim, name="x"):
    """x as a float (B, dim) array; ValueError naming `name` otherwise."""
    if not hasattr(x, "ndim") or x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"{name} must have shape (B, {dim}), got {getattr(x, 'shape', type(x).__name__)}")
    if x.dtype.kind != "f":
        raise ValueError(f"{name} must be a floating-point array, got dtype {x.dtype}")
    return x


def _check_cov(cov, dim, name):
    """A symmetric positive-definite (dim, dim) matrix, else ValueError."""
    xp = get_xp(cov)
    cov = xp.asarray(cov, dtype=np.float64)
    if cov.shape != (dim, dim):
        raise ValueError(f"{name} must have shape ({dim}, {dim}), got {cov.shape}")
    if not bool(xp.allclose(cov, cov.T)):
        raise ValueError(f"{name} must be symmetric")
    if float(xp.linalg.eigvalsh(cov).min()) <= 0:
        raise ValueError(f"{name} must be positive definite (its smallest eigenvalue is <= 0)")
    return cov


def normal_cdf(z):
    """Standard normal CDF Phi(z) = (1 + erf(z / sqrt 2)) / 2, elementwise on a NumPy array."""
    erf = np.frompyfunc(math.erf, 1, 1)
    e = np.asarray(erf(np.asarray(z, dtype=np.float64) / math.sqrt(2.0)), dtype=np.float64)
    return 0.5 * (1.0 + e)


class Energy:
    """Shared checks and the normalised log density; subclasses define `_value_and_grad`."""

    dim = None
    log_z = None

    def __call__(self, x):
        x = _check_points(x, self.dim)
        U, dU = self._value_and_grad(x)
        return U.astype(x.dtype, copy=False), dU.astype(x.dtype, copy=False)

    def value(self, x):
        """U(x) alone: (B,)."""
        return self(x)[0]

    def log_prob(self, x):
        """log q(x) = -U(x) - log Z: (B,)."""
        return -self.value(x) - self.log_z


class GaussianEnergy(Energy):
    """U(x) = 1/2 (x - mu)^T P (x - mu) with P = Sigma^-1; log Z = 1/2 log det(2 pi Sigma).

    mean: (D,)   cov: (D, D) symmetric positive definite (any correlation)
    dU/dx = P (x - mu)
    """

    def __init__(self, mean, cov):
        xp = get_xp(mean)
        self.mean = xp.asarray(mean, dtype=np.float64).reshape(-1)
        self.dim = self.mean.shape[0]
        self.cov = _check_cov(cov, self.dim, "cov")
        self.precision = xp.linalg.inv(self.cov)
        self.log_z = 0.5 * float(xp.linalg.slogdet(2 * math.pi * self.cov)[1])

    def _value_and_grad(self, x):
        diff = x - self.mean.astype(x.dtype)                          # (B, D)
        Pd = diff @ self.precision.astype(x.dtype)                    # (B, D), P is symmetric
        return 0.5 * (diff * Pd).sum(axis=1), Pd


class GaussianMixtureEnergy(Energy):
    """U(x) = -log sum_k w_k N(x; mu_k, Sigma_k): a normalised density, so log Z = 0.

    weights: (K,) positive, summing to 1   means: (K, D)   covs: (K, D, D)
    With log p_k(x) = log w_k - 1/2 log det(2 pi Sigma_k) - 1/2 (x - mu_k)^T P_k (x - mu_k):
    U = -logsumexp_k log p_k,  dU/dx = sum_k r_k P_k (x - mu_k),  r = softmax_k(log p_k).
    """

    def __init__(self, weights, means, covs):
        xp = get_xp(means)
        self.means = xp.asarray(means, dtype=np.float64)
        if self.means.ndim != 2:
            raise ValueError(f"means must have shape (K, D), got {self.means.shape}")
        K, self.dim = self.means.shape
        w = xp.asarray(weights, dtype=np.float64)
        if w.shape != (K,) or float(w.min()) <= 0 or abs(float(w.sum()) - 1.0) > 1e-9:
            raise ValueError(f"weights must be {K} positive numbers summing to 1, got {weights}")
        covs = xp.asarray(covs, dtype=np.float64)
        if covs.shape != (K, self.dim, self.dim):
            raise ValueError(f"covs must have shape ({K}, {self.dim}, {self.dim}), got {covs.shape}")
        self.covs = xp.stack([_check_cov(c, self.dim, f"covs[{k}]") for k, c in enumerate(covs)])
        self.weights = w
        self.precisions = xp.linalg.inv(self.covs)                   # (K, D, D)
        logdets = xp.linalg.slogdet(2 * math.pi * self.covs)[1]      # (K,)
        self.log_coef = xp.log(w) - 0.5 * logdets                    # (K,)
        self.log_z = 0.0
        # exact moments: E x = sum_k w_k mu_k,  Cov x = sum_k w_k (Sigma_k + mu_k mu_k^T) - E x E x^T
        self.mean = w @ self.means
        second = (w[:, None, None] * (self.covs + self.means[:, :, None] * self.means[:, None, :])).sum(0)
        self.cov = second - xp.outer(self.mean, self.mean)

    def _value_and_grad(self, x):
        xp = get_xp(x)
        diff = x[:, None, :] - self.means.astype(x.dtype)           # (B, K, D)
        P = self.precisions.astype(x.dtype)
        Pd = xp.stack([diff[:, k] @ P[k] for k in range(P.shape[0])], axis=1)   # (B, K, D)
        log_p = self.log_coef.astype(x.dtype) - 0.5 * (diff * Pd).sum(axis=2)   # (B, K)
        r = softmax(log_p, axis=1)                                   # responsibilities (B, K)
        return -logsumexp(log_p, axis=1), (r[:, :, None] * Pd).sum(axis=1)

    def cdf(self, x):
        """Exact CDF of a 1-D mixture: sum_k w_k Phi((x - mu_k) / sigma_k). x: any shape, NumPy."""
        if self.dim != 1:
            raise ValueError(f"cdf is defined for a 1-D mixture, this one has dim {self.dim}")
        x = np.asarray(x, dtype=np.float64)[..., None]
        mu, sd = np.asarray(self.means[:, 0]), np.sqrt(np.asarray(self.covs[:, 0, 0]))
        return (np.asarray(self.weights) * normal_cdf((x - mu) / sd)).sum(axis=-1)


class BananaEnergy(Energy):
    """A Rosenbrock-shaped (banana) density in 2-D:

    U(x) = (x1 - a)^2 / (2 s1^2) + (x2 - b x1^2)^2 / (2 s2^2),  log Z = log(2 pi s1 s2)
    i.e. x1 ~ N(a, s1^2) and x2 | x1 ~ N(b x1^2, s2^2), which gives the exact moments
    E x2 = b (a^2 + s1^2),  Var x2 = b^2 (4 a^2 s1^2 + 2 s1^4) + s2^2,  Cov(x1, x2) = 2 a b s1^2.
    dU/dx1 = (x1 - a) / s1^2 - 2 b x1 (x2 - b x1^2) / s2^2,   dU/dx2 = (x2 - b x1^2) / s2^2
    """

    dim = 2

    def __init__(self, a=0.0, b=1.0, s1=1.0, s2=0.5):
        self.a, self.b, self.s1, self.s2 = float(a), float(b), float(s1), float(s2)
        if not (self.s1 > 0 and self.s2 > 0):
            raise ValueError(f"s1 and s2 must be > 0, got s1={s1}, s2={s2}")
        self.log_z = math.log(2 * math.pi * self.s1 * self.s2)
        a, b, v1 = self.a, self.b, self.s1 ** 2
        self.mean = np.array([a, b * (a * a + v1)])
        cxy = 2 * a * b * v1
        self.cov = np.array([[v1, cxy], [cxy, b * b * (4 * a * a * v1 + 2 * v1 * v1) + self.s2 ** 2]])

    def _value_and_grad(self, x):
        x1, x2 = x[:, 0], x[:, 1]
        r1 = (x1 - self.a) / self.s1 ** 2                           # (B,)
        r2 = (x2 - self.b * x1 * x1) / self.s2 ** 2                 # (B,)
        U = 0.5 * (x1 - self.a) * r1 + 0.5 * (x2 - self.b * x1 * x1) * r2
        dU = get_xp(x).stack([r1 - 2 * self.b * x1 * r2, r2], axis=1)
        return U, dU


class RingEnergy(Energy):
    """A ring of radius r and width s in 2-D: U(x) = (|x| - r)^2 / (2 s^2).

    dU/dx = (|x| - r) / s^2 * x / |x|  (set to 0 at the origin, where U has a cone point)
    Z = int 2 pi rho exp(-(rho - r)^2 / (2 s^2)) d rho over rho > 0
      = 2 pi (s^2 exp(-r^2 / (2 s^2)) + r s sqrt(2 pi) Phi(r / s)).
    """

    dim = 2

    def __init__(self, radius=2.0, width=0.3):
        self.radius, self.width = float(radius), float(width)
        if not (self.radius >= 0 and self.width > 0):
            raise ValueError(f"radius must be >= 0 and width > 0, got {radius}, {width}")
        r, s = self.radius, self.width
        phi = float(normal_cdf(r / s))
        self.log_z = math.log(2 * math.pi * (s * s * math.exp(-r * r / (2 * s * s))
                                             + r * s * math.sqrt(2 * math.pi) * phi))
        self.mean = np.zeros(2)

    def _value_and_grad(self, x):
        xp = get_xp(x)
        rho = xp.sqrt((x * x).sum(axis=1))                          # (B,)
        dist = (rho - self.radius) / self.width ** 2                # dU/drho
        safe = xp.where(rho > 0, rho, 1.0)
        scale = xp.where(rho > 0, dist / safe, 0.0)
        return 0.5 * (rho - self.radius) * dist, scale[:, None] * x
