"""smoothing.classification and smoothing.multilabel: soft accuracy, soft P/R/F1, multi-label loss."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import smoothing as S
from tests.gradcheck import check_grad

finite = st.floats(-1e4, 1e4, allow_nan=False, width=64)


@st.composite
def logits_and_labels(draw, max_n=8, max_c=5):
    n, c = draw(st.integers(1, max_n)), draw(st.integers(2, max_c))
    z = draw(arrays(np.float64, (n, c), elements=finite))
    y = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), dtype=np.int64)
    return z, y


@settings(max_examples=60)
@given(logits_and_labels(), st.sampled_from([1e-3, 0.1, 1.0, 10.0]))
def test_soft_accuracy_bounds(zy, t):
    z, y = zy
    soft, hard = S.soft_accuracy(z, y, temperature=t), S.hard_accuracy(z, y)
    C = z.shape[1]
    assert 0.0 <= soft <= 1.0
    assert hard >= 2 * soft - 1 - 1e-12, "p_y > 1/2 forces a correct argmax"
    assert soft >= hard / C - 1e-12
    s = np.sort(z, axis=1)
    gap = (s[:, -1] - s[:, -2]).min()
    if gap > 0:
        assert abs(soft - hard) <= (C - 1) * math.exp(-gap / t) + 1e-12


@settings(max_examples=60)
@given(logits_and_labels(), st.data())
def test_soft_prf_tends_to_hard(zy, data):
    z, y = zy
    s = np.sort(z, axis=1)
    if (s[:, -1] - s[:, -2]).min() < 1e-2:
        return                                                     # ties: no limit to check
    soft = S.soft_prf(z, y, temperature=1e-4, average="macro")
    np.testing.assert_allclose(soft, S.hard_prf(z, y, average="macro"), atol=1e-9, err_msg="macro P,R,F1")
    scores = z[:, 0] - z[:, 1]
    tb = data.draw(arrays(np.int64, scores.shape, elements=st.integers(0, 1)), label="binary targets")
    if np.abs(scores).min() < 1e-2:
        return
    soft_b = S.soft_prf(scores, tb, temperature=1e-4)
    np.testing.assert_allclose(soft_b, S.hard_prf(scores, tb), atol=1e-9, err_msg="binary P,R,F1")
    for v in soft + soft_b:
        assert 0.0 <= v <= 1.0


def test_article_f1_caveat():
    """Correct but unconfident predictions: hard F1 is 1, soft F1 is below it (6620's bias caveat)."""
    scores = np.array([1.0, 2.0, -1.0, -0.5])
    targets = np.array([1, 1, 0, 0])
    assert S.hard_prf(scores, targets)[2] == pytest.approx(1.0)
    assert S.soft_prf(scores, targets)[2] < 0.8


@pytest.mark.parametrize("average", ["binary", "macro"])
def test_prf_gradients(average):
    rng = np.random.default_rng(0)
    if average == "binary":
        scores, targets, axis = rng.standard_normal((3, 4)), rng.integers(0, 2, (3, 4)), -1
    else:
        scores, targets, axis = rng.standard_normal((5, 3, 2)), rng.integers(0, 3, (5, 2)), 1
    for which in range(3):
        for t in (1.0, 0.5):
            _, cache = S.soft_prf_forward(scores, targets, t, average, axis=axis)
            check_grad(lambda a: np.array(S.soft_prf(a, targets, t, average, axis=axis)[which]), [scores],
                       lambda d: [S.soft_prf_backward(*[float(d) if i == which else 0.0 for i in range(3)],
                                                      cache)],
                       rng, names=[f"scores ({average}, metric {which})"])


def test_accuracy_gradient_and_axis():
    rng = np.random.default_rng(1)
    z, y = rng.standard_normal((4, 3, 5)), rng.integers(0, 3, (4, 5))
    _, cache = S.soft_accuracy_forward(z, y, axis=1, temperature=0.7)
    check_grad(lambda a: np.array(S.soft_accuracy(a, y, axis=1, temperature=0.7)), [z],
               lambda d: [S.soft_accuracy_backward(float(d), cache)], rng, names=["logits"])
    moved = np.moveaxis(z, 1, -1)
    assert S.soft_accuracy(z, y, axis=1) == pytest.approx(S.soft_accuracy(moved, y))


@settings(max_examples=60)
@given(st.integers(1, 4), st.integers(2, 7), st.sampled_from([1e-3, 0.1, 1.0, 5.0]), st.data())
def test_multilabel_bound_and_limit(B, C, t, data):
    s = data.draw(arrays(np.float64, (B, C), elements=finite), label="scores")
    tg = data.draw(arrays(np.int64, (B, C), elements=st.integers(0, 1)), label="targets")
    s = np.where((tg == 0) & data.draw(arrays(bool, (B, C)), label="ruled out"), -np.inf, s)
    loss = S.multilabel_softmax_ce(s, tg, temperature=t)
    hinge = S.multilabel_hinge(s, tg)
    n_pos = tg.sum(axis=1)
    assert loss.shape == (B,) and np.isfinite(loss).all()
    d = loss - hinge
    slack = 1e-12 * (1 + np.abs(hinge))
    assert np.all(d >= -slack)
    assert np.all(d <= t * (np.log1p(C - n_pos) + np.log1p(n_pos)) + slack)


def test_multilabel_matches_post_formula_and_torch():
    torch = pytest.importorskip("torch", reason="comparison with PyTorch needs torch")
    rng = np.random.default_rng(2)
    s, tg = rng.standard_normal((3, 4, 6)) * 3, rng.integers(0, 2, (3, 4, 6))
    ts = torch.tensor(s, requires_grad=True)
    tt = torch.tensor(tg, dtype=torch.float64)
    # the post's formulation: append a zero score to each side, mask with -1e12, logsumexp
    sp = (1 - 2 * tt) * ts
    neg = sp - tt * 1e12
    pos = sp - (1 - tt) * 1e12
    zero = torch.zeros_like(sp[..., :1])
    ref = torch.logsumexp(torch.cat([neg, zero], -1), -1) + torch.logsumexp(torch.cat([pos, zero], -1), -1)
    d = rng.standard_normal(ref.shape)
    (ref * torch.tensor(d)).sum().backward()
    loss, cache = S.multilabel_softmax_ce_forward(s, tg)
    np.testing.assert_allclose(loss, ref.detach().numpy(), rtol=1e-12, err_msg="loss")
    np.testing.assert_allclose(S.multilabel_softmax_ce_backward(d, cache), ts.grad.numpy(), rtol=1e-10,
                               atol=1e-14, err_msg="dscores")
    for axis, t in ((1, 0.6), (0, 2.0)):
        _, cache = S.multilabel_softmax_ce_forward(s, tg, t, axis=axis)
        check_grad(lambda a: S.multilabel_softmax_ce(a, tg, t, axis=axis), [s],
                   lambda d: [S.multilabel_softmax_ce_backward(d, cache)], rng, names=["scores"])


def test_bad_arguments():
    z, y = np.zeros((3, 4)), np.array([0, 1, 2])
    with pytest.raises(ValueError, match="labels must be an integer"):
        S.soft_accuracy(z, y.astype(float))
    with pytest.raises(ValueError, match="labels must have shape"):
        S.soft_accuracy(z, np.array([0, 1]))
    with pytest.raises(ValueError, match="labels must lie in"):
        S.soft_accuracy(z, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match="logits must be a floating-point"):
        S.soft_accuracy(np.zeros((3, 4), dtype=int), y)
    with pytest.raises(ValueError, match="temperature"):
        S.soft_accuracy(z, y, temperature=-1)
    with pytest.raises(ValueError, match="targets must have the scores' shape"):
        S.soft_prf(np.zeros(3), np.array([0, 1]))
    with pytest.raises(ValueError, match="targets must hold only 0 and 1"):
        S.soft_prf(np.zeros(3), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="targets must have shape"):
        S.soft_prf(z, np.array([0, 1]), average="macro")
    with pytest.raises(ValueError, match="average"):
        S.soft_prf(z, y, average="micro")
    with pytest.raises(ValueError, match="targets must have the scores' shape"):
        S.multilabel_softmax_ce(z, np.zeros((3, 3), dtype=int))
    with pytest.raises(ValueError, match="scores must be a floating-point"):
        S.multilabel_softmax_ce(np.zeros((3, 4), dtype=int), np.zeros((3, 4), dtype=int))
    with pytest.raises(ValueError, match="positive class cannot be -inf"):
        S.multilabel_softmax_ce(np.array([[-np.inf, 0.0]]), np.array([[1, 0]]))
    with pytest.raises(ValueError, match="temperature"):
        S.multilabel_softmax_ce(z, np.zeros((3, 4), dtype=int), temperature=0)
