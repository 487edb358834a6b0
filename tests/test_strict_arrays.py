"""The training steps, decoding and sampling run on arrays that refuse to mix with NumPy: CuPy's own
where a GPU is present (the `gpu` cases), and on every machine a double that refuses as CuPy's do.

The double (tests/strict_arrays.py) is an array type of its own module `strict`: implicit conversion to
a NumPy array raises TypeError, and so does any operation mixing a StrictArray with a NumPy array. A
function that creates an array with `np.zeros(...)` and then stores or combines a StrictArray into it
fails here exactly where it would fail on a GPU. Each case below runs one step twice, on NumPy arrays
and on StrictArrays (the parameters, the batch and the rng moved to `strict` at the edge, as a demo
moves them to CuPy), and expects the same numbers: the double delegates every operation to NumPy, so
the two runs agree to rounding (the NumPy run may take a threaded path that sums in another order).
On a GPU each case also runs on CuPy arrays, with an rng that draws NumPy's numbers and moves them to the
device, so that run too must give the NumPy run's numbers, to the rounding of the GPU's own sums.

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
- Convolutions: the plain and tuned conv2d / conv_transpose2d pairs in float64, and a DCGAN discriminator
  and generator update with each; the smoothing forward/backward pairs in float64.
"""
import numpy as np
import pytest

from smoothing import get_xp, log_softmax, logsumexp, softmax
from tests.strict_arrays import StrictArray, StrictGenerator, strict, to_numpy, to_strict


class Device:
    """Where the second run of each case lives: its array module and type, the explicit transfers, and an
    rng with numpy.random.Generator's draws on that device (so both runs see the same random numbers)."""

    def __init__(self, name, xp, array_type, put, get, rng):
        self.name, self.xp, self.array_type, self.put, self.get, self.rng = name, xp, array_type, put, get, rng


def _tree(fn, kinds):
    def apply(tree):
        if isinstance(tree, kinds):
            return fn(tree)
        if isinstance(tree, dict):
            return {k: apply(v) for k, v in tree.items()}
        if isinstance(tree, (list, tuple)):
            return type(tree)(apply(v) for v in tree)
        return tree
    return apply


def _cupy_device():
    try:
        import cupy as cp
        cp.zeros(1)
    except Exception as err:  # no CuPy, no driver or no device
        pytest.skip(f"CuPy with a working CUDA device is not available ({type(err).__name__})")
    to_device = _tree(cp.asarray, (np.ndarray, np.generic))

    class HostDraws:
        """numpy.random.Generator's draws, moved to the GPU (arguments moved back to the host first)."""

        def __init__(self, seed):
            self._g = np.random.default_rng(seed)

        def __getattr__(self, name):
            draw, to_host = getattr(self._g, name), _tree(cp.asnumpy, cp.ndarray)
            return lambda *args, **kw: to_device(draw(*to_host(args), **to_host(kw)))

    return Device("cupy", cp, cp.ndarray, _tree(cp.asarray, np.ndarray), _tree(cp.asnumpy, cp.ndarray), HostDraws)


@pytest.fixture(params=["strict", pytest.param("cupy", marks=pytest.mark.gpu)])
def dev(request):
    """The strict double on every machine; CuPy's own arrays where a GPU is present."""
    if request.param == "strict":
        return Device("strict", strict, StrictArray, to_strict, to_numpy, StrictGenerator)
    return _cupy_device()


def _assert_on(dev, got, want, rtol, atol, what):
    """got: arrays of dev (a dict, list or one array) equal to the NumPy run's `want`."""
    if isinstance(want, dict):
        assert got.keys() == want.keys(), f"{what}: keys differ"
        for k in want:
            _assert_on(dev, got[k], want[k], rtol, atol, f"{what}[{k!r}]")
        return
    assert isinstance(got, dev.array_type), f"{what} came back as {type(got).__name__}, not {dev.name}'s array"
    np.testing.assert_allclose(dev.get(got), want, rtol=rtol, atol=atol, err_msg=what)


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


def test_smoothing_core_on_the_double(dev):
    x = np.random.default_rng(0).standard_normal((5, 7))
    x[1] = -np.inf
    for fn in (logsumexp, softmax, log_softmax):
        _assert_on(dev, fn(dev.xp.asarray(x), axis=1), fn(x, axis=1), 1e-12, 0, fn.__name__)


# ---- minibert ----------------------------------------------------------------------------------------

def _bert(dtype=np.float32, dropout=0.1, heads=True):
    from minibert.config import BertConfig
    from minibert.model import init_params

    cfg = BertConfig(vocab_size=37, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=24, max_position_embeddings=24, hidden_dropout_prob=dropout,
                     attention_probs_dropout_prob=dropout)
    return cfg, init_params(cfg, np.random.default_rng(0), dtype=dtype, heads=heads)


def _adamw_both(dev, params, grads, s_params, s_grads):
    """One AdamW update of each run, then the same parameters. A step is lr m / (sqrt(v) + eps): where
    a gradient is near 0 (a sum that cancels), its rounding error, relative to itself, moves the step by
    up to lr times that error; on a GPU (other summation order) one entry in 1,536 moved by 1.5e-6, so
    the parameters are compared to 1e-3 of lr (1e-5)."""
    from minibert.optim import AdamW

    for p, g in ((params, grads), (s_params, s_grads)):
        AdamW(p, lr=1e-2, weight_decay=0.01, max_grad_norm=1.0).update(p, g)
    _assert_on(dev, s_params, params, 1e-5, 1e-5, "params after AdamW")


def test_mlm_training_step(dev):
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
    s_params = dev.put(params)
    want = mlm_forward_backward(params, cfg, *batch, np.random.default_rng(2))
    got = mlm_forward_backward(s_params, cfg, *dev.put(batch), dev.rng(2))
    assert np.isfinite(float(got[0])) and abs(float(got[0]) - want[0]) < 1e-5
    assert int(got[2]) == want[2]
    _assert_on(dev, got[3], want[3], 1e-4, 1e-6, "MLM grads")
    _adamw_both(dev, params, want[3], s_params, got[3])


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


def test_seq2seq_training_step(dev):
    from minibert.seq2seq import seq2seq_forward_backward

    cfg, params = _bert()
    batch = _seq2seq_batch(np.random.default_rng(3), cfg.vocab_size)
    s_params = dev.put(params)
    want = seq2seq_forward_backward(params, cfg, *batch, np.random.default_rng(4))
    got = seq2seq_forward_backward(s_params, cfg, *dev.put(batch), dev.rng(4))
    assert abs(float(got[0]) - want[0]) < 1e-5 and int(got[2]) == want[2]
    _assert_on(dev, got[3], want[3], 1e-4, 1e-6, "seq2seq grads")
    _adamw_both(dev, params, want[3], s_params, got[3])


def test_cached_decoding(dev):
    from minibert.decode import greedy
    from minibert.kv_cache import UniLMCache

    cfg, params = _bert(np.float64, dropout=0.0)
    rng = np.random.default_rng(5)
    ids = rng.integers(5, cfg.vocab_size, (3, 6))
    lengths = np.array([6, 4, 2])
    want_state = UniLMCache(params, cfg, ids, lengths)
    got_state = UniLMCache(dev.put(params), cfg, dev.xp.asarray(ids), dev.xp.asarray(lengths))
    _assert_on(dev, got_state.logits, want_state.logits, 1e-9, 1e-12, "first logits")
    want = greedy(want_state, end_id=7, max_len=6)
    got = greedy(got_state, end_id=7, max_len=6)
    assert [[int(t) for t in row] for row in got] == want
    _assert_on(dev, got_state.logits, want_state.logits, 1e-9, 1e-12, "last logits")


def test_reading_comprehension_training_step(dev):
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
    s_params = dev.put(params)
    want = seq2seq_forward_backward(params, cfg, *batch, np.random.default_rng(7))
    got = seq2seq_forward_backward(s_params, cfg, *dev.put(batch), dev.rng(7))
    assert abs(float(got[0]) - want[0]) < 1e-5
    _assert_on(dev, got[3], want[3], 1e-4, 1e-6, "reading comprehension grads")
    _adamw_both(dev, params, want[3], s_params, got[3])


def test_triple_extraction_training_step(dev):
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
    s_params = dev.put(params)
    want_loss, want_cache = loss_forward(params, cfg, batch, np.random.default_rng(10))
    got_loss, got_cache = loss_forward(s_params, cfg, dev.put(batch), dev.rng(10))
    assert abs(float(got_loss) - float(want_loss)) < 1e-5 * max(1.0, abs(float(want_loss)))
    want, got = loss_backward(want_cache), loss_backward(got_cache)
    _assert_on(dev, got, want, 1e-4, 1e-6, "triple extraction grads")
    _adamw_both(dev, params, want, s_params, got)


# ---- gan and ebm ---------------------------------------------------------------------------------------

def test_gan_step(dev):
    from gan.energy import energy_grid
    from gan.optim import Adam
    from gan.train import GANConfig, d_step, evaluate, g_step, init_gan

    cfg = GANConfig(n_stages=3, batch=16, hidden=12, z_dim=4, spectral_norm=True, n_eval=200)
    model = init_gan(cfg, np.random.default_rng(0))
    s_model = dev.put(model)
    runs = []
    for m, rng in ((model, np.random.default_rng(1)), (s_model, dev.rng(1))):
        opt_d, opt_g = Adam(m["D"], 1e-3), Adam(m["G"], 1e-3)
        d_loss, per_stage = d_step(m, opt_d, cfg, rng)
        g_loss = g_step(m, opt_g, cfg, rng)
        runs.append((d_loss, per_stage, g_loss, evaluate(m, cfg, rng), energy_grid(m, (-3, 3), (-3, 3), 5)))
    (d0, s0, g0, e0, grid0), (d1, s1, g1, e1, grid1) = runs
    assert isinstance(d1, float) and abs(d1 - d0) < 1e-12 and abs(g1 - g0) < 1e-12
    np.testing.assert_allclose(s1, s0, rtol=1e-12, err_msg="per-stage D losses")
    assert e1 == e0
    for name in ("G", "D", "D_state"):
        _assert_on(dev, s_model[name], model[name], 1e-12, 1e-14, f"{name} after one step")
    _assert_on(dev, grid1[2], grid0[2], 1e-12, 1e-14, "energy landscape")


def _ebm(hidden=(16, 16), spectral_norm=False):
    from ebm.neural import neural_energy_init

    return neural_energy_init(np.random.default_rng(0), 2, hidden, spectral_norm, np.float64)


@pytest.mark.parametrize("fused", [True, False], ids=["tuned-swish", "plain"])
def test_langevin_step(dev, fused):
    from ebm.neural import neural_energy
    from ebm.samplers import mala, practical_langevin

    params, state = _ebm(spectral_norm=True)
    x0 = np.random.default_rng(1).uniform(-2, 2, (300, 2))
    out = []
    for p, s, x, rng in ((params, state, x0, np.random.default_rng(2)),
                         (dev.put(params), dev.put(state), dev.xp.asarray(x0), dev.rng(2))):
        energy = neural_energy(p, s, fused=fused)
        chains = practical_langevin(energy, x, 0.01, 0.1, 3, rng, clip_grad=5.0, clamp=(-3, 3))
        out.append((chains, *mala(energy, x, 0.01, 3, rng)))
    _assert_on(dev, out[1][0], out[0][0], 1e-10, 1e-12, "practical_langevin chains")
    _assert_on(dev, out[1][1], out[0][1], 1e-10, 1e-12, "mala chains")
    assert out[1][2] == out[0][2]


def test_contrastive_divergence_step(dev):
    from ebm.buffer import ReplayBuffer
    from ebm.neural import neural_energy
    from ebm.samplers import practical_langevin
    from ebm.train import cd_loss_backward, cd_loss_forward
    from gan.optim import Adam

    params, state = _ebm()
    data = np.random.default_rng(3).standard_normal((64, 2))
    after = []
    for p, xp, rng in ((params, np, np.random.default_rng(4)),
                       (dev.put(params), dev.xp, dev.rng(4))):
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
    _assert_on(dev, after[1][1], after[0][1], 1e-10, 1e-12, "energy params after two CD updates")
    _assert_on(dev, after[1][2], after[0][2], 1e-10, 1e-12, "replay buffer")
    assert dev.get(after[1][2]).shape == (32, 2)


@pytest.mark.parametrize("kind", ["conv", "transpose"])
def test_convolution_pairs(dev, kind):
    """gan/conv.py and its tuned twin gan/conv_fast.py, forward and backward, in float64."""
    from gan import conv, conv_fast

    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 4, 7, 6))
    w = rng.standard_normal((5, 4, 3, 3) if kind == "conv" else (4, 5, 3, 3))
    b = rng.standard_normal(5)
    for module in (conv, conv_fast):
        fwd, bwd = ((module.conv2d_forward, module.conv2d_backward) if kind == "conv" else
                    (module.conv_transpose2d_forward, module.conv_transpose2d_backward))
        out, cache = fwd(x, w, b, 2, 1)
        dout = np.random.default_rng(12).standard_normal(out.shape)
        got_out, got_cache = fwd(*dev.put((x, w, b)), 2, 1)
        _assert_on(dev, got_out, out, 1e-12, 1e-12, f"{module.__name__} {kind} forward")
        for name, got, want in zip(("dx", "dw", "db"), bwd(dev.put(dout), got_cache), bwd(dout, cache)):
            _assert_on(dev, got, want, 1e-12, 1e-12, f"{module.__name__} {kind} {name}")


def test_smoothing_pairs(dev):
    """Every forward/backward pair of `smoothing` that takes one array, in float64."""
    import smoothing as sm

    x = np.random.default_rng(13).standard_normal((4, 9)) * 2
    pairs = [(sm.smooth_max_forward, sm.smooth_max_backward, ()), (sm.smooth_min_forward, sm.smooth_min_backward, ()),
             (sm.soft_onehot_argmax_forward, sm.soft_onehot_argmax_backward, ()),
             (sm.soft_argmax_index_forward, sm.soft_argmax_index_backward, ())]
    pairs += [(getattr(sm, f"{n}_forward"), getattr(sm, f"{n}_backward"), ())
              for n in ("smooth_abs", "smooth_relu", "smooth_sign", "smooth_step", "smooth_floor", "smooth_round",
                        "swish", "gelu")]
    pairs += [(getattr(sm, f"soft_topk_{n}_forward"), getattr(sm, f"soft_topk_{n}_backward"), (3,))
              for n in ("recursive", "sigmoid", "exp")]
    for fwd, bwd, args in pairs:
        out, cache = fwd(x, *args)
        dout = np.random.default_rng(14).standard_normal(np.shape(out))
        got_out, got_cache = fwd(dev.xp.asarray(x), *args)
        _assert_on(dev, got_out, out, 1e-10, 1e-12, f"{fwd.__name__}")
        _assert_on(dev, bwd(dev.xp.asarray(dout), got_cache), bwd(dout, cache), 1e-10, 1e-12,
                   f"{bwd.__name__}")


@pytest.mark.parametrize("conv_name", ["plain", "tuned"])
def test_dcgan_step(dev, conv_name):
    """A DCGAN discriminator and generator update (Cascading Rejection, spectral norm, minibatch stddev)."""
    from gan import conv_fast
    from gan import dcgan as dc
    from gan.optim import Adam

    conv = dc.plain_conv if conv_name == "plain" else conv_fast
    cfg = dc.DCGANConfig(width=2, batch=4, n_stages=2, spectral_norm=True, mbstd_group=2)
    model = dc.init_dcgan(cfg, np.random.default_rng(15))
    real = np.random.default_rng(16).uniform(-1, 1, (4, 1, 28, 28)).astype(np.float32)
    s_model = dev.put(model)
    losses = []
    for m, x, rng in ((model, real, np.random.default_rng(17)), (s_model, dev.put(real), dev.rng(17))):
        opt_d, opt_g = Adam(m["D"], 2e-4, betas=(0.5, 0.999)), Adam(m["G"], 2e-4, betas=(0.5, 0.999))
        losses.append((dc.d_step(m, opt_d, cfg, x, rng, conv), dc.g_step(m, opt_g, cfg, rng, conv)))
    (d0, stages0), g0 = losses[0]
    (d1, stages1), g1 = losses[1]
    assert isinstance(d1, float) and abs(d1 - d0) < 1e-5 and abs(g1 - g0) < 1e-5
    np.testing.assert_allclose(stages1, stages0, rtol=1e-4, err_msg="per-stage D losses")
    for name in ("G", "D"):
        _assert_on(dev, s_model[name], model[name], 1e-4, 1e-6, f"{name} after one step")
