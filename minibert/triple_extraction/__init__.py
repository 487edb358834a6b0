"""Triple extraction (subject, predicate, object) with BERT, pointer heads and a conditional LayerNorm.

Read in this order: data.py, ops.py, model.py, decode.py, __main__.py (see README.md).
"""
from .data import PREDICATES, encode_example, generate_corpus, load_examples, load_schema, training_batch
from .ops import (conditional_layernorm_backward, conditional_layernorm_forward, powered_bce_backward,
                  powered_bce_forward, powered_sigmoid_backward, powered_sigmoid_forward,
                  subject_vector_backward, subject_vector_forward)
from .model import init_extractor_params, loss_backward, loss_forward
from .decode import extract, micro_prf, object_spans, subject_spans
