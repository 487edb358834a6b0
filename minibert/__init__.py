"""BERT in NumPy with hand-written backward passes, matching Hugging Face to float precision.

Read in this order: config.py, layers.py, masks.py, attention.py, model.py, heads.py,
safetensors.py, checkpoint.py (see README.md).
"""
from .config import BertConfig
from .layers import (dropout_backward, dropout_forward, erf, gelu_backward, gelu_forward,
                     layernorm_backward, layernorm_forward, linear_backward, linear_forward)
from .masks import causal_mask, padding_mask, seq2seq_mask
from .attention import attention_backward, attention_forward, merge_heads, split_heads
from .model import (as_attention_mask, bert_backward, bert_forward, embeddings_backward,
                    embeddings_forward, encoder_layer_backward, encoder_layer_forward,
                    encoder_param_shapes, init_params)
from .heads import (head_param_shapes, masked_cross_entropy_backward, masked_cross_entropy_forward,
                    mlm_head_backward, mlm_head_forward, model_backward, model_forward,
                    pooler_backward, pooler_forward)
from .safetensors import read_safetensors, write_safetensors
from .checkpoint import TRANSPOSED, load_pretrained, save_pretrained
from .tokenizer import Tokenizer
# training and generation: optimizers, checkpoints that resume exactly, MLM, UniLM seq2seq, decoding
from .optim import EMA, AdamW, GradientAccumulator, clip_by_global_norm, warmup_linear_decay
from .train_state import load_train_state, save_train_state
from .mlm import line_to_pieces, mlm_forward_backward, pack_lines, whole_word_mask
from .seq2seq import generate, seq2seq_batch, seq2seq_forward_backward
from .decode import beam_search, greedy, sample
from .kv_cache import FullRecompute, UniLMCache
