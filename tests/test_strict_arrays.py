"""The training steps, decoding and sampling run on arrays that refuse to mix with NumPy, as CuPy's do.

The double (tests/strict_arrays.py) is an array type of its own module `strict`: implicit conversion to
a NumPy array raises TypeError, and so does any operation mixing a StrictArray with a NumPy array. A
function that creates an array with `np.zeros(...)` and then stores or combines a StrictArray into it
fails here exactly where it would fail on a GPU. Each case below runs one step twice, on NumPy arrays
and on StrictArrays (the parameters, the batch and the rng moved to `strict` at the edge, as a demo
moves them to CuPy), and expects the same numbers: the double delegates every operation to NumPy, so
the two runs agree to rounding (the NumPy run may take a threaded path that sums in another order).

What each case expects of the library:
- MLM and seq2seq training steps: `mlm_forward_backward` / `seq2seq_forward_backward` and one AdamW
  update take StrictArray params, ids, masks and a strict rng for dropout, and return a float loss and
  StrictArray gradients with the keys and shapes of the params.
- Cached decoding: `UniLMCache` built on StrictArray params and source ids, driven by `greedy`, gives
  the tokens of the NumPy run; its logits are StrictArrays.
- Reading comprehension and triple extraction: a batch made by the task's own encoders, moved to
  `strict`, goes through the task's loss, backward and AdamW update.
- GAN: a discriminator and a generator update (Cascading Rejection head, spectral norm), the mode
  metrics of generated samples, and the energy landscape of D.
- Langevin: the plain and the tuned (row-blocked Swish) neural energies under practical Langevin, MALA,
  and one contrastive-divergence update with the replay buffer.
"""
import numpy as np
import pytest

from smoothing import get_xp, log_softmax, logsumexp, softmax
from tests.strict_arrays import StrictArray, StrictGenerator, strict, to_numpy, to_strict


def _assert_strict_like(got, want, rtol, atol, what):
    """got: StrictArrays (a dict, list or one array) equal to the NumPy run's `want`."""
    if isinstance(want, dict):
        assert got.keys() == want.keys(), f"{what}: keys differ"
        for k in want:
            _assert_strict_like(got[k], want[k], rtol, atol, f"{what}[{k!r}]")
        return
    assert isinstance(got, StrictArray), f"{what} came back as {type(got).__name__}, not a StrictArray"
    np.testing.assert_allclose(got.get(), want, rtol=rtol, atol=atol, err_msg=what)


# ---- the double itself ----------------------------------------------------------------------------

def _mixes(a, host):
    """Every way of mixing a StrictArray `a` with a NumPy array `host` (same shape) that must raise."""
    def store():
        host[:] = a
    return {
        "numpy.asarray": lambda: np.asarray(a),
        "numpy.array": lambda: np.array(a),
        "strict + numpy": lambda: a + host,
        "numpy + strict": lambda: host + a,
        "numpy ufunc": lambda: np.maximum(a, host),
        "in-place into numpy": lambda: host.__iadd__(a),
        "store into numpy": store,
        "store numpy into strict": lambda: a.__setitem__(slice(None), host),
        "numpy.concatenate": lambda: np.concatenate([a, host]),
        "strict module on numpy": lambda: strict.exp(host),
        "matmul": lambda: a @ host.T,
    }


@pytest.mark.parametrize("case", sorted(_mixes(None, None)))
def test_the_double_refuses_to_mix_with_numpy(case):
    a = strict.asarray(np.arange(6.0).reshape(2, 3))
    host = np.ones((2, 3))
    with pytest.raises(TypeError, match="StrictArray"):
        _mixes(a, host)[case]()
    np.testing.assert_array_equal(host, np.ones((2, 3)), err_msg="a refused mix still wrote into numpy")


def test_the_double_allows_what_cupy_allows():
    a = strict.asarray(np.arange(6.0).reshape(2, 3))
    b = a * 2.0 + np.float32(1.0) - a[np.array([1, 0])]          # scalars, a numpy index array
    assert isinstance(b, StrictArray) and isinstance(np.exp(b), StrictArray)
    assert isinstance(np.concatenate([a, b]), StrictArray)        # numpy's dispatch, strict arrays only
    np.testing.assert_array_equal(b.get(), [[-2.0, -1.0, 0.0], [7.0, 8.0, 9.0]])
    assert float(a.sum()) == 15.0 and isinstance(a.sum(), StrictArray)
    assert isinstance(StrictGenerator(0).standard_normal((2, 2)), StrictArray)


def test_get_xp_asks_the_arrays_for_their_module():
    a = strict.zeros(3)
    assert get_xp(a) is strict
    assert get_xp(np.zeros(3), a) is strict                       # the first non-numpy array decides
    assert get_xp(np.zeros(3), 1.0) is np and get_xp() is np


def test_code_that_creates_numpy_arrays_fails_on_the_double():
    """The check can fail: the old, numpy-only way of writing a scatter raises on StrictArrays."""
    def scatter_rows_numpy_only(rows, values, n):
        out = np.zeros((n, values.shape[1]))
        out[rows] = values
        return out

    def scatter_rows(rows, values, n):
        out = get_xp(values).zeros((n, values.shape[1]))
        out[rows] = values
        return out

    values = strict.asarray(np.ones((2, 3)))
    with pytest.raises(TypeError):
        scatter_rows_numpy_only(np.array([0, 2]), values, 4)
    got = scatter_rows(np.array([0, 2]), values, 4)
    assert isinstance(got, StrictArray) and float(got.sum()) == 6.0


def test_smoothing_core_on_the_double():
    x = np.random.default_rng(0).standard_normal((5, 7))
    x[1] = -np.inf
    for fn in (logsumexp, softmax, log_softmax):
        _assert_strict_like(fn(strict.asarray(x), axis=1), fn(x, axis=1), 1e-12, 0, fn.__name__)


# ---- minibert ----------------------------------------------------------------------------------------

def _bert(dtype=np.float32, dropout=0.1, heads=True):
    from minibert.config import BertConfig
    from minibert.model import init_params

    cfg = BertConfig(vocab_size=37, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=24, max_position_embeddings=24, hidden_dropout_prob=dropout,
                     attention_probs_dropout_prob=dropout)
    return cfg, init_params(cfg, np.random.default_rng(0), dtype=dtype, heads=heads)


def _adamw_both(params, grads, s_params, s_grads):
    from minibert.optim import AdamW

    for p, g in ((params, grads), (s_params, s_grads)):
        AdamW(p, lr=1e-2, weight_decay=0.01, max_grad_norm=1.0).update(p, g)


def test_mlm_training_step():
    from minibert.mlm import mlm_forward_backward

    cfg, params = _bert()
    rng = np.random.default_rng(1)
    B, T = 3, 9
    labels = rng.integers(5, cfg.vocab_size, (B, T))
    real = np.ones((B, T), bool)
    real[2, 6:] = False
    is_masked = (rng.random((B, T)) < 0.3) & real
    is_masked[0, 1] = True
    inputs = np.where(is_masked, 4, labels)
    batch = (inputs, is_masked, labels, real)
    s_params = to_strict(params)
    want = mlm_forward_backward(params, cfg, *batch, np.random.default_rng(2))
    got = mlm_forward_backward(s_params, cfg, *to_strict(batch), StrictGenerator(2))
    assert np.isfinite(float(got[0])) and abs(float(got[0]) - want[0]) < 1e-5
    assert int(got[2]) == want[2]
    _assert_strict_like(got[3], want[3], 1e-4, 1e-6, "MLM grads")
    _adamw_both(params, want[3], s_params, got[3])
    _assert_strict_like(s_params, params, 1e-5, 1e-6, "params after AdamW")


def _seq2seq_batch(rng, V, lengths=((4, 3), (3, 5), (5, 2))):
    """[CLS] source [SEP] target [SEP] rows, right-padded: token_ids, segment_ids, real (B, T)."""
    T = max(s + t for s, t in lengths)
    ids = np.zeros((len(lengths), T), np.int64)
    seg = np.zeros((len(lengths), T), np.int64)
    real = np.zeros((len(lengths), T), np.int64)
    for b, (s, t) in enumerate(lengths):
        ids[b, :s + t] = rng.integers(5, V, s + t)
        seg[b, s:s + t] = 1
        real[b, :s + t] = 1
    return ids, seg, real


def test_seq2seq_training_step():
    from minibert.seq2seq import seq2seq_forward_backward

    cfg, params = _bert()
    batch = _seq2seq_batch(np.random.default_rng(3), cfg.vocab_size)
    s_params = to_strict(params)
    want = seq2seq_forward_backward(params, cfg, *batch, np.random.default_rng(4))
    got = seq2seq_forward_backward(s_params, cfg, *to_strict(batch), StrictGenerator(4))
    assert abs(float(got[0]) - want[0]) < 1e-5 and int(got[2]) == want[2]
    _assert_strict_like(got[3], want[3], 1e-4, 1e-6, "seq2seq grads")
    _adamw_both(params, want[3], s_params, got[3])
    _assert_strict_like(s_params, params, 1e-5, 1e-6, "params after AdamW")


def test_cached_decoding():
    from minibert.decode import greedy
    from minibert.kv_cache import UniLMCache

    cfg, params = _bert(np.float64, dropout=0.0)
    rng = np.random.default_rng(5)
    ids = rng.integers(5, cfg.vocab_size, (3, 6))
    lengths = np.array([6, 4, 2])
    want_state = UniLMCache(params, cfg, ids, lengths)
    got_state = UniLMCache(to_strict(params), cfg, strict.asarray(ids), strict.asarray(lengths))
    _assert_strict_like(got_state.logits, want_state.logits, 1e-9, 1e-12, "first logits")
    want = greedy(want_state, end_id=7, max_len=6)
    got = greedy(got_state, end_id=7, max_len=6)
    assert [[int(t) for t in row] for row in got] == want
    _assert_strict_like(got_state.logits, want_state.logits, 1e-9, 1e-12, "last logits")


def test_reading_comprehension_training_step():
    from minibert.reading_comprehension.train import encode_example, pad_examples, small_config, vocab_tokens
    from minibert.model import init_params
    from minibert.seq2seq import seq2seq_forward_backward
    from minibert.tokenizer import Tokenizer

    chars = "甲乙丙丁戊己庚辛壬癸是的在哪里。？"
    tok = Tokenizer(vocab_tokens(chars))
    cfg = small_config(len(tok.id_to_token), layers=1, hidden=16, heads=2, intermediate=24,
                       max_positions=48, dropout=0.1)
    params = init_params(cfg, np.random.default_rng(6), dtype=np.float32)
    examples = [encode_example(tok, "甲在乙。丙在丁。", "甲在哪里？", "乙", 20, 8, 4)[:2],
                encode_example(tok, "戊是己的。", "戊是谁的？", "己", 20, 8, 4)[:2],
                encode_example(tok, "庚在辛。", "壬在哪里？", "", 20, 8, 4)[:2]]
    batch = pad_examples(examples, tok.pad_id)
    s_params = to_strict(params)
    want = seq2seq_forward_backward(params, cfg, *batch, np.random.default_rng(7))
    got = seq2seq_forward_backward(s_params, cfg, *to_strict(batch), StrictGenerator(7))
    assert abs(float(got[0]) - want[0]) < 1e-5
    _assert_strict_like(got[3], want[3], 1e-4, 1e-6, "reading comprehension grads")
    _adamw_both(params, want[3], s_params, got[3])
    _assert_strict_like(s_params, params, 1e-5, 1e-6, "params after AdamW")


def test_triple_extraction_training_step():
    from minibert.config import BertConfig
    from minibert.tokenizer import Tokenizer
    from minibert.triple_extraction.data import encode_example, generate_corpus, training_batch
    from minibert.triple_extraction.model import init_extractor_params, loss_backward, loss_forward
    from minibert.vocab import build_vocab

    train, _ = generate_corpus(4, 0, seed=0)
    predicates = sorted({p for ex in train for _, p, _ in ex["spo_list"]})
    tok = Tokenizer(build_vocab([ex["text"] for ex in train], 300))
    cfg = BertConfig(vocab_size=len(tok.id_to_token), hidden_size=16, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=24, max_position_embeddings=96,
                     hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    params = init_extractor_params(cfg, len(predicates), np.random.default_rng(8))
    encoded = [encode_example(tok, ex, predicates, 96) for ex in train]
    batch = training_batch(encoded, len(predicates), tok.pad_id, np.random.default_rng(9))
    s_params = to_strict(params)
    want_loss, want_cache = loss_forward(params, cfg, batch, np.random.default_rng(10))
    got_loss, got_cache = loss_forward(s_params, cfg, to_strict(batch), StrictGenerator(10))
    assert abs(float(got_loss) - float(want_loss)) < 1e-5 * max(1.0, abs(float(want_loss)))
    want, got = loss_backward(want_cache), loss_backward(got_cache)
    _assert_strict_like(got, want, 1e-4, 1e-6, "triple extraction grads")
    _adamw_both(params, want, s_params, got)
    _assert_strict_like(s_params, params, 1e-5, 1e-6, "params after AdamW")


# ---- gan and ebm ---------------------------------------------------------------------------------------

def test_gan_step():
    from gan.energy import energy_grid
    from gan.optim import Adam
    from gan.train import GANConfig, d_step, evaluate, g_step, init_gan

    cfg = GANConfig(n_stages=3, batch=16, hidden=12, z_dim=4, spectral_norm=True, n_eval=200)
    model = init_gan(cfg, np.random.default_rng(0))
    s_model = to_strict(model)
    runs = []
    for m, rng in ((model, np.random.default_rng(1)), (s_model, StrictGenerator(1))):
        opt_d, opt_g = Adam(m["D"], 1e-3), Adam(m["G"], 1e-3)
        d_loss, per_stage = d_step(m, opt_d, cfg, rng)
        g_loss = g_step(m, opt_g, cfg, rng)
        runs.append((d_loss, per_stage, g_loss, evaluate(m, cfg, rng), energy_grid(m, (-3, 3), (-3, 3), 5)))
    (d0, s0, g0, e0, grid0), (d1, s1, g1, e1, grid1) = runs
    assert isinstance(d1, float) and abs(d1 - d0) < 1e-12 and abs(g1 - g0) < 1e-12
    np.testing.assert_allclose(s1, s0, rtol=1e-12, err_msg="per-stage D losses")
    assert e1 == e0
    for name in ("G", "D", "D_state"):
        _assert_strict_like(s_model[name], model[name], 1e-12, 1e-14, f"{name} after one step")
    _assert_strict_like(grid1[2], grid0[2], 1e-12, 1e-14, "energy landscape")


def _ebm(hidden=(16, 16), spectral_norm=False):
    from ebm.neural import neural_energy_init

    return neural_energy_init(np.random.default_rng(0), 2, hidden, spectral_norm, np.float64)


@pytest.mark.parametrize("fused", [True, False], ids=["tuned-swish", "plain"])
def test_langevin_step(fused):
    from ebm.neural import neural_energy
    from ebm.samplers import mala, practical_langevin

    params, state = _ebm(spectral_norm=True)
    x0 = np.random.default_rng(1).uniform(-2, 2, (300, 2))
    out = []
    for p, s, x, rng in ((params, state, x0, np.random.default_rng(2)),
                         (to_strict(params), to_strict(state), strict.asarray(x0), StrictGenerator(2))):
        energy = neural_energy(p, s, fused=fused)
        chains = practical_langevin(energy, x, 0.01, 0.1, 3, rng, clip_grad=5.0, clamp=(-3, 3))
        out.append((chains, *mala(energy, x, 0.01, 3, rng)))
    _assert_strict_like(out[1][0], out[0][0], 1e-10, 1e-12, "practical_langevin chains")
    _assert_strict_like(out[1][1], out[0][1], 1e-10, 1e-12, "mala chains")
    assert out[1][2] == out[0][2]


def test_contrastive_divergence_step():
    from ebm.buffer import ReplayBuffer
    from ebm.neural import neural_energy
    from ebm.samplers import practical_langevin
    from ebm.train import cd_loss_backward, cd_loss_forward
    from gan.optim import Adam

    params, state = _ebm()
    data = np.random.default_rng(3).standard_normal((64, 2))
    after = []
    for p, xp, rng in ((params, np, np.random.default_rng(4)),
                       (to_strict(params), strict, StrictGenerator(4))):
        buffer = ReplayBuffer(100, 2, -3.0, 3.0, xp=xp)
        opt = Adam(p, 1e-3, betas=(0.0, 0.999))
        for _ in range(2):
            x_pos = xp.asarray(data)[rng.integers(0, 64, 16)]
            x_neg = practical_langevin(neural_energy(p), buffer.sample(16, rng), 0.005, 0.1, 3, rng)
            buffer.push(x_neg)
            loss, cache = cd_loss_forward(p, x_pos, x_neg, 0.01)
            grads, _ = cd_loss_backward(cache)
            opt.step(p, grads)
        after.append((loss, p, buffer.data[:buffer.size]))
    assert abs(after[1][0] - after[0][0]) < 1e-12
    _assert_strict_like(after[1][1], after[0][1], 1e-10, 1e-12, "energy params after two CD updates")
    _assert_strict_like(after[1][2], after[0][2], 1e-10, 1e-12, "replay buffer")
    assert to_numpy(after[1][2]).shape == (32, 2)
