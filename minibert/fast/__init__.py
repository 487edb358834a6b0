"""The tuned twins of minibert's core ops, and their table OPS (see minibert/ops.py for the mechanism).

    from minibert.fast import OPS
    hidden, cache = bert_forward(params, config, ids, ops=OPS)

layers.py     linear, LayerNorm, GELU, the lookup gradient: blocks, threads, in place, a fitted erf
attention.py  one fused q/k/v product, heads in cached pieces over threads
optim.py      AdamW's step in blocks over threads
loss.py       the cross-entropy's forward and gradient fused, in place
"""
from ..ops import Ops
from . import attention, layers, loss, optim

OPS = Ops.from_modules("fast", layers, attention, loss, optim)
