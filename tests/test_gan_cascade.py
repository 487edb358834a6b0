"""GAN losses and Cascading Rejection: gradients, N = 1 equals the plain head, orthogonality, bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gan.cascade import (cascade_backward, cascade_effective_weights, cascade_forward, cascade_init, cr_d_loss_backward,
                         cr_d_loss_forward, cr_g_loss_backward, cr_g_loss_forward)
from gan.losses import d_loss_backward, d_loss_forward, g_loss_backward, g_loss_forward
from tests.gradcheck import check_grad


@pytest.mark.parametrize("kind", ["ns", "hinge"])
def test_loss_gradcheck(kind):
    rng = np.random.default_rng(0)
    s_real, s_fake = rng.standard_normal(7) * 2, rng.standard_normal(5) * 2
    for s in (s_real, s_fake):                            # keep hinge away from its kinks at +-1
        s[np.abs(np.abs(s) - 1) < 0.05] += 0.2
    check_grad(lambda a, b: np.asarray(d_loss_forward(a, b, kind)[0]), [s_real, s_fake],
               lambda d: list(d_loss_backward(d, d_loss_forward(s_real, s_fake, kind)[1])), rng,
               names=["s_real", "s_fake"])
    check_grad(lambda b: np.asarray(g_loss_forward(b, kind)[0]), [s_fake],
               lambda d: [g_loss_backward(d, g_loss_forward(s_fake, kind)[1])], rng, names=["s_fake"])


def test_ns_loss_values_and_no_overflow():
    s = np.array([-800.0, 0.0, 800.0])
    loss, _ = d_loss_forward(s, s, "ns")
    expected = np.mean(np.logaddexp(0, -s)) + np.mean(np.logaddexp(0, s))
    np.testing.assert_allclose(loss, expected, rtol=1e-12)
    np.testing.assert_allclose(g_loss_forward(np.array([0.0]), "ns")[0], np.log(2.0))
    np.testing.assert_allclose(d_loss_forward(np.array([2.0]), np.array([-0.5]), "hinge")[0], 0.5)


@pytest.mark.parametrize("N", [1, 2, 3, 5])
def test_cascade_gradcheck(N):
    rng = np.random.default_rng(N)
    v, w = rng.standard_normal((4, 6)), rng.standard_normal((N, 6))
    check_grad(lambda v, w: cascade_forward(v, w)[0], [v, w],
               lambda d: list(cascade_backward(d, cascade_forward(v, w)[1])), rng, names=["v", "w"])


@pytest.mark.parametrize("kind", ["ns", "hinge"])
@pytest.mark.parametrize("g_stages", ["all", "first"])
def test_cr_losses_gradcheck_end_to_end(kind, g_stages):
    """From features and weights to the D and G losses, with unequal stage weights."""
    rng = np.random.default_rng(10)
    v_real, v_fake, w = rng.standard_normal((5, 4)), rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    lam = [0.5, 0.3, 0.2]

    def d_loss(vr, vf, w):
        return np.asarray(cr_d_loss_forward(cascade_forward(vr, w)[0], cascade_forward(vf, w)[0],
                                            kind, lam)[0])

    def d_grads(dout):
        sr, cr = cascade_forward(v_real, w)
        sf, cf = cascade_forward(v_fake, w)
        dsr, dsf = cr_d_loss_backward(dout, cr_d_loss_forward(sr, sf, kind, lam)[1])
        dvr, dwr = cascade_backward(dsr, cr)
        dvf, dwf = cascade_backward(dsf, cf)
        return [dvr, dvf, dwr + dwf]

    check_grad(d_loss, [v_real, v_fake, w], d_grads, rng, names=["v_real", "v_fake", "w"])

    def g_loss(vf, w):
        return np.asarray(cr_g_loss_forward(cascade_forward(vf, w)[0], kind, g_stages, lam)[0])

    def g_grads(dout):
        sf, cf = cascade_forward(v_fake, w)
        ds = cr_g_loss_backward(dout, cr_g_loss_forward(sf, kind, g_stages, lam)[1])
        if g_stages == "first":
            assert not ds[:, 1:].any(), "first-stage G loss must not reach later stages"
        return list(cascade_backward(ds, cf))

    check_grad(g_loss, [v_fake, w], g_grads, rng, names=["v_fake", "w"])


@pytest.mark.parametrize("kind", ["ns", "hinge"])
def test_n1_equals_plain_head_exactly(kind):
    rng = np.random.default_rng(11)
    v_real, v_fake, w = rng.standard_normal((8, 5)), rng.standard_normal((8, 5)), cascade_init(1, 5, rng)
    sr, cr = cascade_forward(v_real, w)
    sf, cf = cascade_forward(v_fake, w)
    plain_r, plain_f = v_real @ w[0], v_fake @ w[0]
    np.testing.assert_array_equal(sr[:, 0], plain_r, err_msg="N=1 real score")
    loss, cache = cr_d_loss_forward(sr, sf, kind)
    ploss, pcache = d_loss_forward(plain_r, plain_f, kind)
    assert loss == ploss
    dsr, dsf = cr_d_loss_backward(1.0, cache)
    pdr, pdf = d_loss_backward(1.0, pcache)
    np.testing.assert_array_equal(dsr[:, 0], pdr, err_msg="N=1 dscore real")
    np.testing.assert_array_equal(dsf[:, 0], pdf, err_msg="N=1 dscore fake")
    dv, dw = cascade_backward(dsr, cr)
    np.testing.assert_array_equal(dv, pdr[:, None] * w[0], err_msg="N=1 dv")
    np.testing.assert_array_equal(dw[0], pdr @ v_real, err_msg="N=1 dw")
    for g_stages in ("all", "first"):
        gl, gc = cr_g_loss_forward(sf, kind, g_stages)
        pl, pc = g_loss_forward(plain_f, kind)
        assert gl == pl
        np.testing.assert_array_equal(cr_g_loss_backward(1.0, gc)[:, 0], g_loss_backward(1.0, pc))


finite = st.floats(-10, 10, allow_nan=False, width=64)


@settings(max_examples=60)
@given(v=arrays(np.float64, (3, 4), elements=finite), w=arrays(np.float64, (3, 4), elements=finite))
def test_each_rejection_is_orthogonal_to_its_w(v, w):
    w = w + np.where(np.abs(w).sum(axis=1, keepdims=True) < 1e-3, 1.0, 0.0)   # no zero rows here
    _, (vs, _, wsq, scores) = cascade_forward(v, w)
    for k in range(len(vs) - 1):
        scale = np.linalg.norm(vs[k], axis=1) * np.linalg.norm(w[k]) + 1e-3   # floor for tiny v
        assert np.all(np.abs(vs[k + 1] @ w[k]) <= 1e-9 * scale), f"v_{k + 2} not orthogonal to w_{k + 1}"
        # Pythagoras: |v_k|^2 = |v_{k+1}|^2 + s_k^2 / |w_k|^2
        np.testing.assert_allclose((vs[k] ** 2).sum(1),
                                   (vs[k + 1] ** 2).sum(1) + scores[:, k] ** 2 / wsq[k],
                                   rtol=1e-9, atol=1e-9 * (vs[k] ** 2).sum(1).max())


@settings(max_examples=30)
@given(v=arrays(np.float64, (2, 5), elements=finite), seed=st.integers(0, 2 ** 16))
def test_orthogonal_weights_give_plain_projections(v, seed):
    """When the w_k are mutually orthogonal, every rejection leaves the other scores alone."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((5, 5)))
    w = q[:, :3].T * np.array([[0.5], [2.0], [1.0]])     # (3, 5), orthogonal rows
    np.testing.assert_allclose(cascade_forward(v, w)[0], v @ w.T, atol=1e-9 * (1 + np.abs(v).max()))


def test_bad_input():
    rng = np.random.default_rng(12)
    v = rng.standard_normal((4, 3))
    with pytest.raises(ValueError, match="n_stages"):
        cascade_init(0, 3, rng)
    with pytest.raises(ValueError, match="N >= 1"):
        cascade_forward(v, np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"w must have shape \(N, d\)"):
        cascade_forward(v, np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"w must have shape"):
        cascade_forward(v, np.ones(3))
    w = rng.standard_normal((3, 3))
    w[1] = 0.0
    with pytest.raises(ValueError, match=r"w\[1\] is a zero vector"):
        cascade_forward(v, w)
    with pytest.raises(ValueError, match="zero vector"):
        cascade_forward(v, np.full((1, 3), 1e-200))       # |w|^2 underflows to 0
    bad = v.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        cascade_forward(bad, rng.standard_normal((2, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        d_loss_forward(np.array([np.inf]), np.zeros(1))
    s = rng.standard_normal((4, 2))
    with pytest.raises(ValueError, match="stage_weights"):
        cr_d_loss_forward(s, s, "ns", [1.0, -1.0])
    with pytest.raises(ValueError, match="g_stages"):
        cr_g_loss_forward(s, "ns", "last")
    with pytest.raises(ValueError, match="loss kind"):
        d_loss_forward(s[:, 0], s[:, 0], "wgan")


@settings(max_examples=30)
@given(v=arrays(np.float64, (4, 5), elements=finite), seed=st.integers(0, 2 ** 16), N=st.integers(1, 6))
def test_scores_are_linear_in_v(v, seed, N):
    """scores = v @ U.T with U from w alone: the rejections act on v through one fixed linear map."""
    w = np.random.default_rng(seed).standard_normal((N, 5))
    U = cascade_effective_weights(w)
    np.testing.assert_allclose(U[0], w[0])
    np.testing.assert_allclose(cascade_forward(v, w)[0], v @ U.T, rtol=1e-9,
                               atol=1e-9 * (1 + np.abs(v).max()) * np.abs(U).max())
