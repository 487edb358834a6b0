"""BERT in NumPy with hand-written backward passes, matching Hugging Face to float precision.

Read in this order: config.py, params.py, layers.py, masks.py, attention.py, model.py, loss.py,
heads.py, safetensors.py, checkpoint.py (see README.md). These are the plain layers; their tuned twins
are in minibert/fast/, chosen with `ops=minibert.fast.OPS` (ops.py explains).
"""
from .config import BertConfig
from .layers import (dropout_backward, dropout_forward, erf, gelu_backward, gelu_forward,
                     layernorm_backward, layernorm_forward, linear_backward, linear_forward)
from .masks import causal_mask, padding_mask, seq2seq_mask
from .attention import attention_backward, attention_forward
from .params import TRANSPOSED, encoder_param_shapes, head_param_shapes, init_params
from .ops import PLAIN, Ops
from .model import (as_attention_mask, bert_backward, bert_forward, embeddings_backward,
                    embeddings_forward, encoder_layer_backward, encoder_layer_forward)
from .loss import masked_cross_entropy_backward, masked_cross_entropy_forward
from .heads import (mlm_head_backward, mlm_head_forward, model_backward, model_forward,
                    pooler_backward, pooler_forward)
from .safetensors import read_safetensors, write_safetensors
from .checkpoint import load_pretrained, save_pretrained
from .tokenizer import Tokenizer
# training and generation: optimizers, checkpoints that resume exactly, MLM, UniLM seq2seq, decoding
from .optim import EMA, AdamW, GradientAccumulator, clip_by_global_norm, warmup_linear_decay
from .train_state import load_train_state, save_train_state
from .mlm import line_to_pieces, mlm_forward_backward, pack_lines, whole_word_mask
from .seq2seq import generate, seq2seq_batch, seq2seq_forward_backward
from .decode import beam_search, greedy, sample
from .kv_cache import FullRecompute, UniLMCache
