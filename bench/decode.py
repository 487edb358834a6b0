"""UniLM generation with the key/value cache against full recomputation (the bert4keras way), same run.

    python -m bench decode [--quick] [--plain]

A random BERT-base-size model (12 layers, hidden 768, 12 heads, 3072, vocabulary 21128, float32)
generates 32 tokens greedily after a 256-token source ([CLS] ... [SEP]). The cached decoder encodes the
source once and then runs one row per step; the full decoder re-encodes source + prefix at every step.
Both must produce the same tokens (checked). min_len = max_len = 32, so both always do 32 steps.
--quick: 4 layers, hidden 256, a 64-token source, 16 tokens. Both decoders run the tuned layer
(minibert.fast.OPS); --plain runs both on the plain layer.
"""
import sys

import numpy as np

import minibert as mb
from bench.bert_forward import minibert_ops
from bench.harness import result, time_pair
from minibert.decode import greedy
from minibert.kv_cache import FullRecompute, UniLMCache


def run(args):
    if args.quick:
        cfg = mb.BertConfig(vocab_size=21128, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                            intermediate_size=1024)
        S, n_new, repeats = 64, 16, args.repeats or 3
    else:
        cfg = mb.BertConfig(vocab_size=21128)
        S, n_new, repeats = 256, 32, args.repeats or 3
    rng = np.random.default_rng(0)
    params = mb.init_params(cfg, rng, np.float32, heads=True)
    src = rng.integers(5, cfg.vocab_size, (1, S))
    src[0, 0], src[0, -1] = 101, 102
    print(f"decode: {cfg.num_hidden_layers} layers, hidden {cfg.hidden_size}, source {S}, {n_new} new tokens, "
          f"{args.threads} thread(s), {repeats} runs each", file=sys.stderr)
    outputs, ops = {}, minibert_ops(args)

    def cached():
        outputs["cached"] = greedy(UniLMCache(params, cfg, src, ops=ops), 102, n_new, min_len=n_new)[0]

    def full():
        outputs["full"] = greedy(FullRecompute(params, cfg, src, ops=ops), 102, n_new, min_len=n_new)[0]

    t_cached, t_full = time_pair(cached, full, repeats, warmup=0, label="decode")
    same = outputs["cached"] == outputs["full"]
    if not same:
        print("warning: cached and full decoding produced different tokens", file=sys.stderr)
    r = result("decode", t_cached, t_full, args.threads, layer=ops.name, layers=cfg.num_hidden_layers,
               hidden=cfg.hidden_size, source_tokens=S, new_tokens=n_new, tokens_equal=same,
               speedup=round(t_full / t_cached, 2), cached_ms_per_token=round(1e3 * t_cached / n_new, 1))
    r["reference"] = "full recomputation at every step (ours, the bert4keras way)"
    return r
