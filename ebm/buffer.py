"""The replay buffer of IGEBM (Du & Mordatch 2019): short chains that resume where old ones stopped.

Each training step starts its Langevin chains from the buffer with probability 1 - reinit (95%)
and from uniform noise on the data box otherwise (5%), runs K steps and pushes the results back.
Over many training steps the chains therefore run far longer than K steps (persistent contrastive
divergence), while the 5% fresh noise keeps exploring regions the old chains have left.
The buffer has a fixed capacity and forgets its oldest samples first (a ring).
"""
import numpy as np

from smoothing import get_xp


class ReplayBuffer:
    """Fixed-capacity store of past samples.

    capacity: int >= 1   dim: D   low, high: the box that fresh noise is drawn from
    reinit: probability of starting a chain from noise (IGEBM: 0.05)
    xp: numpy or cupy, where the stored samples live
    """

    def __init__(self, capacity, dim, low, high, reinit=0.05, dtype=np.float64, xp=np):
        if isinstance(capacity, bool) or int(capacity) != capacity or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        if not float(low) < float(high):
            raise ValueError(f"low must be < high, got low={low}, high={high}")
        if not 0.0 <= float(reinit) <= 1.0:
            raise ValueError(f"reinit must be a probability in [0, 1], got {reinit}")
        self.capacity, self.dim = int(capacity), int(dim)
        self.low, self.high, self.reinit = float(low), float(high), float(reinit)
        self.data = xp.empty((self.capacity, self.dim), dtype=dtype)  # (capacity, D)
        self.size = 0           # how many slots hold a sample
        self.next = 0           # the slot the next push writes first

    def __len__(self):
        return self.size

    def noise(self, n, rng):
        """n fresh starting points, uniform on [low, high]^D: (n, D)."""
        u = rng.random((n, self.dim), dtype=self.data.dtype)
        return self.low + (self.high - self.low) * u

    def sample(self, batch, rng):
        """Starting points for `batch` chains: (batch, D).

        Each row is a uniformly chosen stored sample with probability 1 - reinit, else fresh noise;
        an empty buffer gives all noise. batch must not exceed the capacity.
        """
        if isinstance(batch, bool) or int(batch) != batch or batch < 1:
            raise ValueError(f"batch must be a positive integer, got {batch!r}")
        if batch > self.capacity:
            raise ValueError(f"batch {batch} is larger than the buffer capacity {self.capacity}: "
                             "the buffer must hold at least one batch")
        x = self.noise(int(batch), rng)
        if self.size == 0:
            return x
        xp = get_xp(x)
        from_buffer = rng.random(int(batch)) >= self.reinit                # (batch,) bool
        idx = rng.integers(0, self.size, int(batch))
        return xp.where(from_buffer[:, None], self.data[idx], x)

    def push(self, x):
        """Store the rows of x (n, D), overwriting the oldest samples once full."""
        if not hasattr(x, "ndim") or x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}), got {getattr(x, 'shape', None)}")
        n = x.shape[0]
        if n > self.capacity:
            raise ValueError(f"cannot push {n} samples into a buffer of capacity {self.capacity}")
        slots = (self.next + get_xp(self.data).arange(n)) % self.capacity  # ring positions
        self.data[slots] = x
        self.next = int((self.next + n) % self.capacity)
        self.size = min(self.capacity, self.size + n)
