"""Langevin sampling through an MLP energy: our hand-written input gradient vs PyTorch autograd.

    python -m bench langevin [--quick] [--threads N] [--repeats R]

10,000 chains in 2-D, 60 steps of x <- x - eta dU/dx + sigma xi, U an MLP 2 -> 128 -> 128 -> 1 with
Swish, float32, the same weights on both sides. Ours is ebm.samplers.practical_langevin over
ebm.neural.neural_energy(..., fused=True), which asks for the tuned twin ebm.swish_energy (U, then
dU/dx by hand, no weight gradients, in row blocks split over --threads threads; the sampler also
checks every step for non-finite values). The reference is the usual PyTorch loop:
x.requires_grad_(), U = net(x), torch.autograd.grad(U.sum(), x), update under no_grad.
--quick: 2,000 chains, 3 runs each.
"""
import sys

import numpy as np

from bench.harness import result, set_torch_threads, time_pair
from ebm.neural import neural_energy, neural_energy_init
from ebm.samplers import practical_langevin

STEP, NOISE, STEPS, HIDDEN = 0.005, 0.1, 60, (128, 128)


def _torch_net(torch, params):
    """nn.Sequential with our weights (torch's Linear stores W.T)."""
    layers = []
    n = len(params) // 2
    for i in range(n):
        W = params[f"W{i}"]
        lin = torch.nn.Linear(*W.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T.copy()))
            lin.bias.copy_(torch.from_numpy(params[f"b{i}"]))
        layers.append(lin)
        if i < n - 1:
            layers.append(torch.nn.SiLU())
    net = torch.nn.Sequential(*layers)
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def _torch_sampler(torch, net, x0):
    def sample():
        x = torch.from_numpy(x0)
        gen = torch.Generator().manual_seed(1)
        for _ in range(STEPS):
            x = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(net(x)[:, 0].sum(), x)
            with torch.no_grad():
                x = x - STEP * grad + NOISE * torch.randn(x.shape, generator=gen)
        return x
    return sample


def run(args):
    n_chains = 2000 if args.quick else 10000
    repeats = args.repeats or (3 if args.quick else 7)
    torch = set_torch_threads(args.threads)
    rng = np.random.default_rng(0)
    params, _ = neural_energy_init(rng, dim=2, hidden=HIDDEN, dtype=np.float32)
    x0 = rng.uniform(-4, 4, (n_chains, 2)).astype(np.float32)
    energy = neural_energy(params, fused=True)                    # the tuned twin, ebm.swish_energy
    ours = lambda: practical_langevin(energy, x0, STEP, NOISE, STEPS,  # noqa: E731
                                      np.random.default_rng(1))
    print(f"langevin: {n_chains} chains x {STEPS} steps, MLP 2-{HIDDEN[0]}-{HIDDEN[1]}-1 swish, "
          f"float32, {args.threads} thread(s), {repeats} runs each", file=sys.stderr)
    ref, grad_err = None, None
    if torch is not None:
        net = _torch_net(torch, params)
        ref = _torch_sampler(torch, net, x0)
        tx = torch.from_numpy(x0).requires_grad_(True)
        (tgrad,) = torch.autograd.grad(net(tx)[:, 0].sum(), tx)
        grad_err = float(np.abs(energy(x0)[1] - tgrad.numpy()).max())
    else:
        print("torch is not installed: timing ours only", file=sys.stderr)
    t_ours, t_ref = time_pair(ours, ref, repeats, label="langevin")
    return result("langevin", t_ours, t_ref, args.threads, chains=n_chains, steps=STEPS,
                  hidden=list(HIDDEN), dtype="float32",
                  ours_steps_per_s=round(STEPS / t_ours, 1),
                  max_abs_diff_grad=grad_err)
