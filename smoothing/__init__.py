"""Smooth approximations of non-differentiable functions, with gradients and error bounds.

Reading order: core (logsumexp, softmax, softplus), maxes, elementwise, classification, topk,
multilabel. Also the numeric base of the project: `get_xp`, `logsumexp`, `softmax`, `log_softmax`, `sigmoid`,
`softplus` and `erf` live here and are imported by `minibert` and `gan`.
"""
from .core import (as_float_array, check_axis, check_positive, check_temperature, erf, erf_series, get_xp,
                   log_softmax, log_softmax_backward, logsumexp, sigmoid, softmax, softmax_backward, softplus,
                   softplus_backward)
from .classification import (PRF_EPS, hard_accuracy, hard_prf, soft_accuracy, soft_accuracy_backward,
                             soft_accuracy_forward, soft_prf, soft_prf_backward, soft_prf_forward)
from .elementwise import (GELU_GAP, SWISH_GAP, gelu, gelu_backward, gelu_forward, smooth_abs,
                          smooth_abs_backward, smooth_abs_forward, smooth_floor, smooth_floor_backward,
                          smooth_floor_forward, smooth_relu, smooth_relu_backward, smooth_relu_forward,
                          smooth_round, smooth_round_backward, smooth_round_forward, smooth_sign,
                          smooth_sign_backward, smooth_sign_forward, smooth_step, smooth_step_backward,
                          smooth_step_forward, swish, swish_backward, swish_forward)
from .maxes import (smooth_max, smooth_max_backward, smooth_max_forward, smooth_min, smooth_min_backward,
                    smooth_min_forward, soft_argmax_index, soft_argmax_index_backward,
                    soft_argmax_index_forward, soft_onehot_argmax, soft_onehot_argmax_backward,
                    soft_onehot_argmax_forward)
from .multilabel import (multilabel_hinge, multilabel_softmax_ce, multilabel_softmax_ce_backward,
                         multilabel_softmax_ce_forward)
from .topk import (hard_topk, soft_topk_exp, soft_topk_exp_backward, soft_topk_exp_forward,
                   soft_topk_recursive, soft_topk_recursive_backward, soft_topk_recursive_forward,
                   soft_topk_sigmoid, soft_topk_sigmoid_backward, soft_topk_sigmoid_forward)
