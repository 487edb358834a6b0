"""The whole-chain Langevin kernel vs a CuPy per-step loop: 100,000 chains x 100 steps.

    python -m bench gpu_langevin [--quick]

Energy: a mixture of 8 Gaussians on a ring (2-D). The per-step loop computes the mixture's gradient with
CuPy array operations and draws its noise with cupy.random at each step; the kernel runs each chain in
registers. The fused per-step kernel (gradient from CuPy, update fused) is timed beside them.
Without a GPU (or CuPy) it says so and prints a JSON line with "skipped".
"""
import sys

import numpy as np

from bench.gpu_attention import _gpu_or_reason
from bench.harness import result, time_pair


def ring_mixture(K=8, radius=4.0, sigma=0.5):
    means = np.stack([radius * np.cos(2 * np.pi * np.arange(K) / K),
                      radius * np.sin(2 * np.pi * np.arange(K) / K)], 1)
    precisions = np.repeat(np.eye(2)[None] / sigma**2, K, 0)
    log_coef = np.full(K, -np.log(K) - np.log(2 * np.pi * sigma**2))
    return log_coef, means, precisions


def mixture_grad(cp, x, log_coef, means, prec):
    """dU/dx = sum_k r_k P_k (x - mu_k), r = softmax_k(log_coef_k - 1/2 (x - mu_k)^T P_k (x - mu_k))."""
    diff = x[:, None, :] - means                                   # (N, K, 2)
    Pd = cp.einsum("kde,nke->nkd", prec, diff)
    lp = log_coef - 0.5 * (diff * Pd).sum(-1)                      # (N, K)
    r = cp.exp(lp - lp.max(1, keepdims=True))
    r /= r.sum(1, keepdims=True)
    return (r[:, :, None] * Pd).sum(1)


def run(args):
    cp, reason = _gpu_or_reason()
    if cp is None:
        print(f"gpu_langevin: skipped, {reason}", file=sys.stderr)
        return {"bench": "gpu_langevin", "skipped": reason}
    from ebm.kernels import langevin_chains, langevin_update, mixture_params
    N, steps = (20_000, 50) if args.quick else (100_000, 100)
    repeats = args.repeats or (3 if args.quick else 10)
    eps = 0.01
    log_coef, means, prec = ring_mixture()
    energy = mixture_params(log_coef, means, prec)
    g_log_coef, g_means, g_prec = (cp.asarray(a, dtype=cp.float32) for a in (log_coef, means, prec))
    x0 = cp.asarray(np.random.default_rng(0).uniform(-5, 5, (N, 2)).astype(np.float32))
    sync = cp.cuda.Device().synchronize
    rng = cp.random.default_rng(1)

    def per_step_loop():
        x = x0.copy()
        for _ in range(steps):
            g = mixture_grad(cp, x, g_log_coef, g_means, g_prec)
            x = x - (eps / 2) * g + np.float32(np.sqrt(eps)) * rng.standard_normal(x.shape, dtype=cp.float32)
        sync()
        return x

    def fused_steps():
        x = x0.copy()
        for s in range(steps):
            langevin_update(x, mixture_grad(cp, x, g_log_coef, g_means, g_prec), eps / 2, np.sqrt(eps), 7, s,
                            out=x)
        sync()
        return x

    def chains():
        x, _ = langevin_chains(x0, energy, steps, eps / 2, np.sqrt(eps), 7)
        sync()
        return x

    t_chain, t_loop = time_pair(chains, per_step_loop, repeats, warmup=1, label="chain kernel vs loop")
    t_fused, _ = time_pair(fused_steps, None, repeats, warmup=1, label="fused per-step update")
    # the three sample the same law: compare the radius distribution's mean as a sanity figure
    radius = {name: float(cp.sqrt((f() ** 2).sum(1)).mean()) for name, f in
              (("chain", chains), ("loop", per_step_loop), ("fused", fused_steps))}
    return result("gpu_langevin", t_chain, t_loop, args.threads, chains=N, steps=steps,
                  device=cp.cuda.runtime.getDeviceProperties(0)["name"].decode(),
                  loop_over_chain=round(t_loop / t_chain, 2), fused_update_s=round(t_fused, 6),
                  mean_radius=radius)
