"""One MLM training step (forward, backward, AdamW update), ours against PyTorch, same shapes and threads.

    python -m bench train_step [--quick] [--plain]

4 layers, hidden 256, 4 heads, intermediate 1024, vocabulary 30522, batch 16, length 128, float32,
dropout 0.1, 15% of positions masked. Both sides run the MLM head on the masked positions only
(ours: minibert.mlm.mlm_forward_backward; PyTorch: BertForMaskedLM's encoder, then its head on the
gathered rows) and update with AdamW (decay 0.01, none on LayerNorm weights and biases).
--quick runs 2 layers, batch 8. Ours runs the tuned layer (minibert.fast.OPS, in the training step and
in AdamW); --plain times the plain layer instead.
"""
import sys

import numpy as np

import minibert as mb
from bench.bert_forward import minibert_ops, torch_model
from bench.harness import result, set_torch_threads, time_pair
from minibert.mlm import mlm_forward_backward
from minibert.optim import AdamW, skips_weight_decay


def run(args):
    layers, B = (2, 8) if args.quick else (4, 16)
    T, repeats = 128, args.repeats or (3 if args.quick else 7)
    cfg = mb.BertConfig(hidden_size=256, num_hidden_layers=layers, num_attention_heads=4,
                        intermediate_size=1024, max_position_embeddings=512)
    torch = set_torch_threads(args.threads)
    rng = np.random.default_rng(0)
    params = mb.init_params(cfg, rng, np.float32, heads=True)
    del params["pooler.dense.weight"], params["pooler.dense.bias"]      # BertForMaskedLM has none
    ids = rng.integers(5, cfg.vocab_size, (B, T))
    masked = rng.random((B, T)) < 0.15
    inputs = np.where(masked, 103, ids)
    real = np.ones((B, T), bool)
    ops = minibert_ops(args)
    print(f"train_step: {layers} layers, hidden 256, B={B}, T={T}, {int(masked.sum())} masked, float32, "
          f"{args.threads} thread(s), {ops.name} layer, {repeats} runs each", file=sys.stderr)
    opt_options = {"lr": 1e-4, "weight_decay": 0.01, "betas": (0.9, 0.999), "eps": 1e-6}
    ours_params = {k: v.copy() for k, v in params.items()}
    opt = AdamW(ours_params, ops=ops, **opt_options)
    drop_rng = np.random.default_rng(1)

    def ours():
        loss, acc, n, grads = mlm_forward_backward(ours_params, cfg, inputs, masked, ids, real, drop_rng, ops=ops)
        opt.update(ours_params, grads)
        return loss

    ref = None
    if torch is not None:
        model = torch_model(torch, cfg, params, mlm=True).train()
        named = list(model.named_parameters())
        groups = [{"params": [p for n, p in named if not skips_weight_decay(n)], "weight_decay": 0.01},
                  {"params": [p for n, p in named if skips_weight_decay(n)], "weight_decay": 0.0}]
        topt = torch.optim.AdamW(groups, lr=1e-4, betas=(0.9, 0.999), eps=1e-6)
        t_in, t_mask = torch.from_numpy(inputs), torch.from_numpy(masked)
        t_lab = torch.from_numpy(ids[masked])

        def torch_step():
            topt.zero_grad(set_to_none=True)
            hidden = model.bert(input_ids=t_in).last_hidden_state              # (B, T, C)
            logits = model.cls(hidden[t_mask])                                 # (N, V)
            loss = torch.nn.functional.cross_entropy(logits, t_lab)
            loss.backward()
            topt.step()
            return loss
        ref = torch_step

    t_ours, t_ref = time_pair(ours, ref, repeats, label="train_step")
    n_params = sum(p.size for p in params.values())
    return result("train_step", t_ours, t_ref, args.threads, layer=ops.name, layers=layers, hidden=256,
                  batch=B, length=T,
                  vocab=cfg.vocab_size, parameters=int(n_params), masked=int(masked.sum()))
