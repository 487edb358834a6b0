"""Two layers of every core op, and how a caller chooses: the ops table.

Every op of the numeric core exists twice, with one signature:
  plain  minibert/layers.py, attention.py, optim.py, loss.py    the formula as written, one variable per
                                                       gradient: what a reader opens to learn the op
  tuned  minibert/fast/layers.py, attention.py, optim.py, loss.py    the same op computed for speed on a CPU
                                                       (blocks in cache, threads, in-place passes, a
                                                       fitted erf); tests/test_fast_equals_plain.py
                                                       checks that it gives the plain op's numbers
An ops table (`Ops`) names one version of each op. `PLAIN` (here) holds the plain ones,
`minibert.fast.OPS` the tuned ones. Functions that run ops take the table as a keyword argument
whose default is `PLAIN`, and pass it down:

    bert_forward(params, config, ids, ..., ops=PLAIN)       model.py, and everything built on it:
    model_forward, mlm_forward_backward, seq2seq_forward_backward, UniLMCache, FullRecompute
    AdamW(params, ops=None, ...)                            None: optim.py's own plain step

A backward pass uses the table its forward pass was given (the caches carry it), so the two always
match. The choice is made once, at the edge, by the caller: the benchmarks (`python -m bench
bert_forward`, `--plain` to time the plain layer) and the demos' training steps pass
`ops=minibert.fast.OPS`; library code never chooses for itself (no global flag, no environment
variable), so a reader who follows bert_forward from its first line reaches the plain ops.
"""
from dataclasses import dataclass
from typing import Callable

from . import attention, layers, loss, optim


@dataclass(frozen=True)
class Ops:
    """One version of each core op; see the module docstring."""
    name: str
    linear_forward: Callable
    linear_backward: Callable
    layernorm_forward: Callable
    layernorm_backward: Callable
    gelu_forward: Callable
    gelu_backward: Callable
    attention_forward: Callable
    attention_backward: Callable
    matmul: Callable                      # a @ b, 2-D: the MLM decoder's products
    scatter_add_rows: Callable            # the gradient of an embedding lookup
    cross_entropy_forward: Callable       # the MLM head's loss on the scored rows
    cross_entropy_backward: Callable
    adamw_steps: Callable                 # the optimizer's elementwise step over every tensor

    @classmethod
    def from_modules(cls, name, layers, attention, loss, optim):
        """The table of the ops that four modules (a layer's layers, attention, loss, optim) define."""
        return cls(name=name,
                   linear_forward=layers.linear_forward, linear_backward=layers.linear_backward,
                   layernorm_forward=layers.layernorm_forward, layernorm_backward=layers.layernorm_backward,
                   gelu_forward=layers.gelu_forward, gelu_backward=layers.gelu_backward,
                   attention_forward=attention.attention_forward,
                   attention_backward=attention.attention_backward,
                   matmul=layers.matmul, scatter_add_rows=layers.scatter_add_rows,
                   cross_entropy_forward=loss.cross_entropy_forward,
                   cross_entropy_backward=loss.cross_entropy_backward,
                   adamw_steps=optim.adamw_steps)


PLAIN = Ops.from_modules("plain", layers, attention, loss, optim)
