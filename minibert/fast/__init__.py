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

OPS = Ops(name="fast",
          linear_forward=layers.linear_forward, linear_backward=layers.linear_backward,
          layernorm_forward=layers.layernorm_forward, layernorm_backward=layers.layernorm_backward,
          gelu_forward=layers.gelu_forward, gelu_backward=layers.gelu_backward,
          attention_forward=attention.attention_forward,
          attention_backward=attention.attention_backward,
          matmul=layers.matmul, scatter_add_rows=layers.scatter_add_rows,
          cross_entropy_forward=loss.cross_entropy_forward,
          cross_entropy_backward=loss.cross_entropy_backward,
          adamw_steps=optim.adamw_steps)
