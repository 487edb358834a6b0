"""BERT encoder forward at BERT-base shape, ours (NumPy) against transformers' BertModel (eager).

    python -m bench bert_forward [--quick] [--plain]

12 layers, hidden 768, 12 heads, 3072, batch 8, length 128, float32, no dropout; both sides use the
same weights and the same thread count, neither keeping anything for a backward pass (torch.no_grad,
keep_cache=False). --quick runs 2 layers. Reports GFLOP/s counted from the
matmuls (the elementwise work is not counted). Ours runs the tuned layer (minibert.fast.OPS);
--plain times the plain layer instead (minibert/ops.py).
"""
import sys

import numpy as np

import minibert as mb
from bench.harness import result, set_torch_threads, time_pair
from minibert.fast import OPS as FAST


def minibert_ops(args):
    """The ops table the minibert benchmarks run: the tuned twins, or the plain layer with --plain."""
    return mb.PLAIN if getattr(args, "plain", False) else FAST


def bert_base(layers):
    return mb.BertConfig(num_hidden_layers=layers, hidden_dropout_prob=0.0,
                         attention_probs_dropout_prob=0.0)


def matmul_flops(cfg, B, T):
    """Multiply-adds x 2 of one encoder forward: projections, FFN, q k^T and A v."""
    N, C, F = B * T, cfg.hidden_size, cfg.intermediate_size
    per_layer = 2 * N * C * C * 4 + 2 * N * C * F * 2 + 2 * 2 * B * T * T * C
    return cfg.num_hidden_layers * per_layer


def torch_model(torch, cfg, params, mlm=False):
    """transformers model (eager attention) holding exactly our params."""
    import transformers
    hc = transformers.BertConfig(**cfg.to_dict(), attn_implementation="eager")
    model = (transformers.BertForMaskedLM(hc) if mlm
             else transformers.BertModel(hc, add_pooling_layer=False))
    state = {}
    for name, a in params.items():
        hf = name if (name.startswith("cls.") or not mlm) else "bert." + name
        state[hf] = torch.from_numpy(np.ascontiguousarray(a.T if name.endswith(mb.TRANSPOSED) else a))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if "position_ids" not in k and "decoder" not in k]:
        raise RuntimeError(f"weights did not load: missing {missing}, unexpected {unexpected}")
    return model


def run(args):
    layers = 2 if args.quick else 12
    repeats = args.repeats or (3 if args.quick else 5)
    B, T = 8, 128
    cfg = bert_base(layers)
    torch = set_torch_threads(args.threads)
    rng = np.random.default_rng(0)
    params = mb.init_params(cfg, rng, np.float32, heads=False)
    ids = rng.integers(1, cfg.vocab_size, (B, T))
    ops = minibert_ops(args)
    print(f"bert_forward: {layers} layers, B={B}, T={T}, float32, {args.threads} thread(s), "
          f"{ops.name} layer, {repeats} runs each", file=sys.stderr)
    # no gradient on either side: keep_cache=False is our torch.no_grad()
    ours = lambda: mb.bert_forward(params, cfg, ids, keep_cache=False, ops=ops)  # noqa: E731
    ref, err = None, None
    if torch is not None:
        model = torch_model(torch, cfg, params).eval()
        tids = torch.from_numpy(ids)

        def torch_forward():
            with torch.no_grad():
                return model(input_ids=tids).last_hidden_state
        ref = torch_forward

        err = float(np.abs(ours()[0] - ref().numpy()).max())
    else:
        print("torch is not installed: timing ours only", file=sys.stderr)
    t_ours, t_ref = time_pair(ours, ref, repeats, label="bert_forward")
    flops = matmul_flops(cfg, B, T)
    return result("bert_forward", t_ours, t_ref, args.threads, layer=ops.name, layers=layers, batch=B, length=T,
                  gflop=round(flops / 1e9, 2), ours_gflops=round(flops / t_ours / 1e9, 1),
                  reference_gflops=None if t_ref is None else round(flops / t_ref / 1e9, 1),
                  max_abs_diff=err)
