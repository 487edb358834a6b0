"""`python -m gan fashion`: the DCGAN (gan/dcgan.py) on Fashion-MNIST, scored by our own evaluator.

One run trains G and D for a budget of updates on the 60,000 training images (in [-1, 1]), with the
tuned convolutions (gan/conv_fast.py, which equal the plain ones), then draws n_eval samples and
scores them with the cached classifier (gan/evaluator.py): FID against the training set and the
smallest class's share. The untrained generator's scores are measured the same way, as the baseline
of what was learned, and the evaluator's test-set FID is the floor.
"""
import time
from dataclasses import asdict

import numpy as np

from . import conv_fast
from .classifier import to_inputs
from .dcgan import d_step, g_step, init_dcgan, sample_images
from .idx import load_fashion_mnist
from .optim import Adam
from .progress import Progress


def train_dcgan(cfg, images, progress=None, log_every=500, conv=conv_fast):
    """Train one DCGAN on images (N, 1, 28, 28) in [-1, 1]; returns (model, last losses, seconds).

    Real batches are drawn by epochs (shuffled by the run's generator); the numbers depend on cfg only.
    """
    if cfg.steps < 1 or cfg.batch < 1:
        raise ValueError(f"steps and batch must be >= 1, got steps={cfg.steps}, batch={cfg.batch}")
    rng = np.random.default_rng(cfg.seed)
    model = init_dcgan(cfg, rng)
    opt_d = Adam(model["D"], cfg.lr_d, betas=(0.5, 0.999))
    opt_g = Adam(model["G"], cfg.lr_g, betas=(0.5, 0.999))
    order, pos = rng.permutation(len(images)), 0
    clock = Progress(cfg.steps)
    d_loss = g_loss = per_stage = None
    for step in range(1, cfg.steps + 1):
        if pos + cfg.batch > len(order):
            order, pos = rng.permutation(len(images)), 0
        real = images[order[pos:pos + cfg.batch]]
        pos += cfg.batch
        d_loss, per_stage = d_step(model, opt_d, cfg, real, rng, conv)
        g_loss = g_step(model, opt_g, cfg, rng, conv)
        if progress is not None and (step % log_every == 0 or step == cfg.steps):
            progress(f"{clock.line(step)}  D {d_loss:.4f}  G {g_loss:.4f}  "
                     f"per-stage D {' '.join(f'{x:.3f}' for x in per_stage)}")
    return model, {"d_loss": d_loss, "g_loss": g_loss, "d_loss_per_stage": per_stage}, \
        clock.clock() - clock.start


def image_grid(images, rows=10, cols=10):
    """images (n, 1, 28, 28) in [-1, 1] -> one (rows 29 + 1, cols 29 + 1) picture in [0, 1], 1-pixel gaps."""
    n = min(len(images), rows * cols)
    grid = np.ones((rows * 29 + 1, cols * 29 + 1), np.float32)
    for k in range(n):
        r, c = divmod(k, cols)
        grid[1 + 29 * r:29 * (r + 1), 1 + 29 * c:29 * (c + 1)] = (np.asarray(images[k, 0]) + 1) / 2
    return np.clip(grid, 0, 1)


def save_grid(images, path):
    """The first 100 images as a 10 x 10 grid, an 8-bit grey PNG; returns path, or None without Pillow
    (installed with matplotlib, the [plot] extra)."""
    try:
        from PIL import Image
    except ImportError:
        return None
    Image.fromarray(np.round(image_grid(images) * 255).astype(np.uint8), "L").save(path)
    return path


def run_fashion(cfg, evaluator, n_eval=10000, data_dir=None, n_train=None, png=None, progress=None,
                log_every=500):
    """Train, sample, score: the demo's result dict (the JSON line's fields)."""
    log = progress or (lambda msg: None)
    images, _ = load_fashion_mnist("train", data_dir)
    x = to_inputs(images[:n_train] if n_train else images)
    model0 = init_dcgan(cfg, np.random.default_rng(cfg.seed))
    start = evaluator.score(sample_images(model0["G"], n_eval, np.random.default_rng([cfg.seed, 1]),
                                          cfg.z_dim, conv_fast))
    log(f"untrained generator: FID {start['fid']:.2f}, smallest class share {start['class_min_fraction']:.3f}")
    model, losses, seconds = train_dcgan(cfg, x, log, log_every)
    samples = sample_images(model["G"], n_eval, np.random.default_rng([cfg.seed, 1]), cfg.z_dim, conv_fast)
    t0 = time.perf_counter()
    scores = evaluator.score(samples)
    log(f"scored {n_eval} samples in {time.perf_counter() - t0:.1f} s: FID {scores['fid']:.2f}, "
        f"smallest class share {scores['class_min_fraction']:.3f}")
    if png is not None:
        png = save_grid(samples, png)
    return {**{k: v for k, v in asdict(cfg).items()}, "n_train": len(x), "n_eval": n_eval,
            "fid": round(scores["fid"], 3), "class_min_fraction": scores["class_min_fraction"],
            "class_fractions": scores["class_fractions"], "classifier_accuracy": evaluator.accuracy,
            "fid_test_set": evaluator.test_fid, "untrained": {k: start[k] for k in ("fid", "class_min_fraction")},
            **losses, "train_seconds": round(seconds, 1), "png": png}
