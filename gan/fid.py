"""The Frechet distance between two sets of features, and class coverage: the GAN's image scores.

FID (Heusel et al. 2017) fits a Gaussian to each set of features and measures

    d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr( (S1^1/2 S2 S1^1/2)^1/2 )

which is the squared 2-Wasserstein distance between N(mu1, S1) and N(mu2, S2). The usual formula writes
the last term as tr((S1 S2)^1/2); S1 S2 is not symmetric, but it is similar to the symmetric positive
semi-definite matrix S1^1/2 S2 S1^1/2 (conjugate by S1^1/2), so both have the same eigenvalues and the
same trace of the square root. Here every square root is of a symmetric PSD matrix, taken by its
symmetric eigendecomposition A = Q diag(l) Q^T -> A^1/2 = Q diag(sqrt(l)) Q^T, with the eigenvalues
that rounding leaves slightly negative set to 0: no complex numbers and no iterative sqrtm.
The features are those of our own classifier (gan/classifier.py, 128 per image), not Inception's,
so the numbers are comparable with each other, not with published FIDs.
"""
import numpy as np


def gaussian_stats(features):
    """Mean (D,) and covariance (D, D) of features (N, D), N >= 2, in float64."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must be a 2-D array (N, D) with N >= 2, got shape {f.shape}")
    if not np.isfinite(f).all():
        raise ValueError("features must be finite (found NaN or inf)")
    mu = f.mean(axis=0)
    centered = f - mu
    return mu, centered.T @ centered / (f.shape[0] - 1)


def sqrtm_psd(a):
    """The symmetric square root of a symmetric positive semi-definite matrix a (D, D).

    a = Q diag(l) Q^T  ->  a^1/2 = Q diag(sqrt(max(l, 0))) Q^T
    """
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"a must be a square matrix, got shape {a.shape}")
    l, q = np.linalg.eigh((a + a.T) / 2)                  # symmetrized: rounding may leave a - a.T != 0
    return (q * np.sqrt(np.clip(l, 0, None))) @ q.T


def frechet_distance(mu1, s1, mu2, s2):
    """d^2 between N(mu1, s1) and N(mu2, s2): mu (D,), s (D, D) symmetric PSD. Returns a float >= 0."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(s1, np.float64), np.asarray(s2, np.float64)
    D = mu1.shape[0] if mu1.ndim == 1 else -1
    for name, v, shape in (("mu1", mu1, (D,)), ("mu2", mu2, (D,)), ("s1", s1, (D, D)), ("s2", s2, (D, D))):
        if v.shape != shape:
            raise ValueError(f"{name} must have shape {shape} (mu1 is {mu1.shape}), got {v.shape}")
    r1 = sqrtm_psd(s1)                                    # S1^1/2
    middle = r1 @ s2 @ r1                                 # S1^1/2 S2 S1^1/2, symmetric PSD
    l = np.linalg.eigvalsh((middle + middle.T) / 2)
    cross = np.sqrt(np.clip(l, 0, None)).sum()            # tr((S1^1/2 S2 S1^1/2)^1/2)
    d2 = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * cross)
    return max(d2, 0.0)                                   # rounding can leave -1e-12 for equal inputs


def fid_from_features(features, ref_stats):
    """FID of features (N, D) against reference statistics (mu, S) from gaussian_stats."""
    mu, s = gaussian_stats(features)
    return frechet_distance(mu, s, *ref_stats)


def class_fractions(predictions, n_classes=10):
    """Share of the samples predicted as each class: (n_classes,) summing to 1."""
    p = np.asarray(predictions)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"predictions must be a non-empty 1-D array, got shape {p.shape}")
    if p.min() < 0 or p.max() >= n_classes:
        raise ValueError(f"predictions must lie in 0..{n_classes - 1}, got {p.min()}..{p.max()}")
    return np.bincount(p, minlength=n_classes) / p.size


def class_min_fraction(predictions, n_classes=10):
    """The smallest class's share of the samples: 1 / n_classes when balanced, 0 when a class is missing."""
    return float(class_fractions(predictions, n_classes).min())


def pixel_gaussian_samples(images, n, rng):
    """n images drawn from the Gaussian fitted to the pixels of `images` (N, ...), clipped to [-1, 1].

    The baseline a sampler must beat: it has the data's mean image and every pixel covariance, and
    nothing else. x = mu + S^1/2 z, z ~ N(0, I), S^1/2 by sqrtm_psd.
    """
    flat = np.asarray(images, np.float64).reshape(len(images), -1)
    mu, s = gaussian_stats(flat)
    z = rng.standard_normal((n, flat.shape[1]))
    x = mu + z @ sqrtm_psd(s)                             # S^1/2 is symmetric
    return np.clip(x, -1, 1).astype(np.float32).reshape((n,) + np.shape(images)[1:])
