"""Smooth approximations of non-differentiable functions, with gradients and error bounds.

Also the numeric base of the project: `get_xp`, `logsumexp`, `softmax`, `log_softmax`, `sigmoid`
and `softplus` live here and are imported by `minibert` and `gan`.
"""
from .core import (as_float_array, check_axis, check_positive, get_xp, log_softmax,
                   log_softmax_backward, logsumexp, sigmoid, softmax, softmax_backward, softplus,
                   softplus_backward)
