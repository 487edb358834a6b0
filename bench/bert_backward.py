"""Forward + backward of the MLM loss at BERT-base shape, ours against torch autograd (eager).

    python -m bench bert_backward [--quick] [--plain]

Same shapes as bert_forward, plus the tied MLM head over the 30522-word vocabulary with 15% of
positions labelled; every parameter's gradient is computed on both sides. --quick runs 2 layers.
Ours runs the tuned layer (minibert.fast.OPS); --plain times the plain layer instead.
"""
import sys

import numpy as np

import minibert as mb
from bench.bert_forward import bert_base, matmul_flops, minibert_ops, torch_model
from bench.harness import result, set_torch_threads, time_pair


def run(args):
    layers = 2 if args.quick else 12
    repeats = args.repeats or (2 if args.quick else 5)
    B, T = 8, 128
    cfg = bert_base(layers)
    torch = set_torch_threads(args.threads)
    rng = np.random.default_rng(0)
    params = mb.init_params(cfg, rng, np.float32, heads=True)
    del params["pooler.dense.weight"], params["pooler.dense.bias"]      # BertForMaskedLM has none
    ids = rng.integers(1, cfg.vocab_size, (B, T))
    labels = np.where(rng.random((B, T)) < 0.15, ids, -100)
    ops = minibert_ops(args)
    print(f"bert_backward: {layers} layers, B={B}, T={T}, float32, {args.threads} thread(s), "
          f"{ops.name} layer, {repeats} runs each", file=sys.stderr)

    def ours():
        out, cache = mb.model_forward(params, cfg, ids, labels=labels, ops=ops)
        return out["loss"], mb.model_backward(cache)

    ref, err = None, None
    if torch is not None:
        model = torch_model(torch, cfg, params, mlm=True).train()
        tids, tlab = torch.from_numpy(ids), torch.from_numpy(labels)

        def torch_step():
            model.zero_grad(set_to_none=True)
            loss = model(input_ids=tids, labels=tlab).loss
            loss.backward()
            return loss
        ref = torch_step

        loss_ours, grads = ours()
        loss_ref = ref()
        w = model.bert.encoder.layer[0].intermediate.dense.weight.grad.numpy().T
        err = {"loss": abs(float(loss_ours) - float(loss_ref.detach())),
               "dW_layer0_intermediate": float(np.abs(grads["encoder.layer.0.intermediate.dense.weight"] - w).max())}
    t_ours, t_ref = time_pair(ours, ref, repeats, label="bert_backward")
    N, C, V = B * T, cfg.hidden_size, cfg.vocab_size
    flops = 3 * (matmul_flops(cfg, B, T) + 2 * N * C * C + 2 * N * C * V)   # backward = 2x forward
    return result("bert_backward", t_ours, t_ref, args.threads, layer=ops.name, layers=layers, batch=B,
                  length=T,
                  gflop=round(flops / 1e9, 2), ours_gflops=round(flops / t_ours / 1e9, 1),
                  reference_gflops=None if t_ref is None else round(flops / t_ref / 1e9, 1),
                  max_abs_diff=err)
