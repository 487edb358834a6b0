"""gan/fid.py and gan/classifier.py: the Frechet distance against closed forms, class coverage, and the
classifier's backward passes against float64 finite differences."""
import numpy as np
import pytest

from gan import classifier as clf
from gan.fid import (class_fractions, class_min_fraction, fid_from_features, frechet_distance,
                     gaussian_stats, pixel_gaussian_samples, sqrtm_psd)
from tests.gradcheck import check_grad


def _random_cov(rng, D, rank=None):
    a = rng.standard_normal((D, rank or D))
    return a @ a.T / D


def test_sqrtm_psd_squares_back_also_when_singular():
    rng = np.random.default_rng(0)
    for rank in (None, 3):                                # full rank, and rank 3 of 8 (zero eigenvalues)
        a = _random_cov(rng, 8, rank)
        r = sqrtm_psd(a)
        np.testing.assert_allclose(r, r.T, atol=1e-14, err_msg="the root is symmetric")
        np.testing.assert_allclose(r @ r, a, atol=1e-10, err_msg=f"root squared, rank {rank}")
        assert np.linalg.eigvalsh(r).min() > -1e-7


def test_identical_gaussians_are_at_distance_zero():
    rng = np.random.default_rng(1)
    mu, s = rng.standard_normal(16), _random_cov(rng, 16)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0, abs=1e-9)
    f = rng.standard_normal((500, 6)) @ rng.standard_normal((6, 6))
    assert fid_from_features(f, gaussian_stats(f)) == pytest.approx(0, abs=1e-9)


def test_diagonal_gaussians_match_the_closed_form():
    """For diagonal covariances d^2 = |mu1 - mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2."""
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.standard_normal(10), rng.standard_normal(10)
    a, b = rng.uniform(0.1, 3, 10), rng.uniform(0.1, 3, 10)
    want = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(want, rel=1e-12)


def test_rotated_gaussians_and_symmetry():
    """Rotating both Gaussians by the same orthogonal Q leaves d^2 unchanged (a non-diagonal case with
    a known answer), and d^2(1, 2) = d^2(2, 1) although the formula treats S1 and S2 differently."""
    rng = np.random.default_rng(3)
    mu1, mu2 = rng.standard_normal(7), rng.standard_normal(7)
    a, b = rng.uniform(0.1, 3, 7), rng.uniform(0.1, 3, 7)
    q, _ = np.linalg.qr(rng.standard_normal((7, 7)))
    want = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    assert frechet_distance(q @ mu1, s1, q @ mu2, s2) == pytest.approx(want, rel=1e-10)
    c1, c2 = _random_cov(rng, 7), _random_cov(rng, 7)
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(frechet_distance(mu2, c2, mu1, c1), rel=1e-10)


def test_commuting_case_against_the_usual_formula():
    """tr((S1^1/2 S2 S1^1/2)^1/2) = tr((S1 S2)^1/2): the eigenvalues of S1 S2 are real and >= 0."""
    rng = np.random.default_rng(4)
    s1, s2 = _random_cov(rng, 9), _random_cov(rng, 9)
    cross = np.sqrt(np.clip(np.linalg.eigvals(s1 @ s2).real, 0, None)).sum()
    want = np.trace(s1) + np.trace(s2) - 2 * cross
    assert frechet_distance(np.zeros(9), s1, np.zeros(9), s2) == pytest.approx(want, rel=1e-9)


def test_samples_of_a_gaussian_approach_it():
    rng = np.random.default_rng(5)
    mu, s = rng.standard_normal(4), _random_cov(rng, 4)
    x = mu + rng.standard_normal((200000, 4)) @ sqrtm_psd(s)
    assert fid_from_features(x, (mu, s)) < 1e-3
    assert fid_from_features(x + 1, (mu, s)) == pytest.approx(4, abs=0.01)     # |shift|^2 = 4


def test_class_coverage():
    assert class_min_fraction(np.repeat(np.arange(10), 7)) == pytest.approx(0.1)
    assert class_min_fraction(np.repeat(np.arange(9), 7)) == 0.0                 # class 9 missing
    np.testing.assert_allclose(class_fractions(np.array([0, 0, 1, 3]), 4), [0.5, 0.25, 0, 0.25])
    for bad, match in ((np.array([0, 10]), "0..9"), (np.array([-1]), "0..9"), (np.zeros(0, int), "non-empty")):
        with pytest.raises(ValueError, match=match):
            class_min_fraction(bad)


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="features"):
        gaussian_stats(np.zeros(5))
    with pytest.raises(ValueError, match="features must be finite"):
        gaussian_stats(np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="s2 must have shape"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4))
    with pytest.raises(ValueError, match="a must be a square"):
        sqrtm_psd(np.zeros((2, 3)))


def test_pixel_gaussian_keeps_the_mean_and_the_range():
    rng = np.random.default_rng(6)
    images = np.clip(rng.standard_normal((400, 1, 4, 4)) * 0.3 + np.linspace(-0.5, 0.5, 16).reshape(1, 1, 4, 4),
                     -1, 1)
    x = pixel_gaussian_samples(images, 4000, np.random.default_rng(7))
    assert x.shape == (4000, 1, 4, 4) and x.dtype == np.float32
    assert x.min() >= -1 and x.max() <= 1
    np.testing.assert_allclose(x.mean(axis=0), images.mean(axis=0), atol=0.03)


# ---- the classifier's pairs, in float64 with the plain convolutions ----

def test_maxpool_gradient_by_finite_differences():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 6, 7))                 # an odd width: the last column is dropped
    out, cache = clf.maxpool2_forward(x)
    assert out.shape == (2, 3, 3, 3)
    check_grad(lambda x_: clf.maxpool2_forward(x_)[0], [x], lambda d: [clf.maxpool2_backward(d, cache)],
               rng, names=["dx"])


def test_maxpool_sends_a_tie_to_one_entry():
    x = np.zeros((1, 1, 2, 2))
    out, cache = clf.maxpool2_forward(x)
    dx = clf.maxpool2_backward(np.ones_like(out), cache)
    np.testing.assert_array_equal(dx, [[[[1, 0], [0, 0]]]])


def test_cross_entropy_gradient_by_finite_differences():
    rng = np.random.default_rng(9)
    logits, labels = rng.standard_normal((5, 4)) * 3, np.array([0, 3, 1, 1, 2])
    loss, cache = clf.cross_entropy_forward(logits, labels)
    z = logits - logits.max(axis=1, keepdims=True)
    want = np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(5), labels])
    assert float(loss) == pytest.approx(want, rel=1e-12)
    check_grad(lambda z_: np.array(clf.cross_entropy_forward(z_, labels)[0]), [logits],
               lambda d: [clf.cross_entropy_backward(cache) * d], rng, names=["dlogits"])
    with pytest.raises(ValueError, match="labels must have shape"):
        clf.cross_entropy_forward(logits, labels[:3])


def test_classifier_gradient_along_random_directions():
    """Every parameter's gradient against central differences along random directions (the full check
    would need 200,000 evaluations for fc1 alone); then the model learns one batch by heart."""
    rng = np.random.default_rng(10)
    params = {k: v.astype(np.float64) for k, v in clf.classifier_init(rng).items()}
    for k in params:                                      # biases away from zero: ReLUs off their kinks
        if k.endswith("bias"):
            params[k] = rng.standard_normal(params[k].shape) * 0.1
    x, labels = rng.uniform(-1, 1, (3, 1, 28, 28)), np.array([1, 7, 7])

    def loss_of(p):
        return float(clf.cross_entropy_forward(clf.classifier_forward(p, x)[0], labels)[0])
    logits, _, cache = clf.classifier_forward(params, x)
    grads = clf.classifier_backward(clf.cross_entropy_backward(clf.cross_entropy_forward(logits, labels)[1]),
                                    cache)
    assert grads.keys() == params.keys()
    eps = 1e-7                                            # the net is piecewise linear: no kink crossed
    for k in params:
        for _ in range(2):
            v = rng.standard_normal(params[k].shape)
            v /= np.sqrt((v * v).sum())
            up = dict(params, **{k: params[k] + eps * v})
            down = dict(params, **{k: params[k] - eps * v})
            numeric = (loss_of(up) - loss_of(down)) / (2 * eps)
            assert float((grads[k] * v).sum()) == pytest.approx(numeric, rel=1e-6, abs=1e-8), k


def test_classifier_overfits_one_batch_and_the_twin_agrees():
    from gan import conv_fast
    rng = np.random.default_rng(11)
    x = rng.uniform(-1, 1, (8, 1, 28, 28)).astype(np.float32)
    labels = np.arange(8)
    params = clf.classifier_init(rng)
    logits0, f0, _ = clf.classifier_forward(params, x)
    logits1, f1, _ = clf.classifier_forward(params, x, conv_fast)
    np.testing.assert_allclose(logits1, logits0, rtol=1e-4, atol=1e-4, err_msg="tuned convolutions")
    from gan.optim import Adam
    opt = Adam(params, 1e-3, betas=(0.9, 0.999))
    first = None
    for _ in range(60):
        logits, _, cache = clf.classifier_forward(params, x, conv_fast)
        loss, lc = clf.cross_entropy_forward(logits, labels)
        first = float(loss) if first is None else first
        opt.step(params, clf.classifier_backward(clf.cross_entropy_backward(lc), cache))
    assert float(loss) < 0.05 * first
    feats, preds = clf.classify(params, x, conv_fast, batch=3)
    assert feats.shape == (8, clf.FEATURES)
    np.testing.assert_array_equal(preds, labels)
