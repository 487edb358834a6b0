"""One argument order for every smoothing function: f(x[, k or labels], temperature, *, axis=..., ...)."""
import inspect

import numpy as np
import pytest

import smoothing
from smoothing import core, fast

REDUCTIONS = [smoothing.logsumexp, smoothing.softmax, smoothing.log_softmax, smoothing.smooth_max,
              smoothing.smooth_min, smoothing.soft_onehot_argmax, smoothing.soft_argmax_index,
              fast.logsumexp, fast.softmax, fast.log_softmax]


def _public_functions():
    for module in (smoothing, fast):
        for name in sorted(dir(module)):
            fn = getattr(module, name)
            if not name.startswith(("_", "check_", "as_")) and inspect.isfunction(fn):   # not the checks
                yield f"{module.__name__}.{name}", fn


def test_smooth_max_takes_the_temperature_second_like_logsumexp():
    x = np.array([[0.0, 1.0, 3.0], [2.0, 2.0, -np.inf]])
    np.testing.assert_array_equal(smoothing.smooth_max(x, 0.1), smoothing.logsumexp(x, 0.1))
    np.testing.assert_array_equal(smoothing.smooth_max(x, 0.1), smoothing.smooth_max(x, temperature=0.1))
    want = [3.0 + 0.1 * np.log(1 + np.exp(-20) + np.exp(-30)), 2.0 + 0.1 * np.log(2)]
    np.testing.assert_allclose(smoothing.smooth_max(x, 0.1), want, rtol=1e-14)
    np.testing.assert_array_equal(smoothing.smooth_abs(x[0], 0.1),
                                  smoothing.smooth_abs(x[0], temperature=0.1))


@pytest.mark.parametrize("fn", REDUCTIONS, ids=lambda f: f"{f.__module__}.{f.__name__}")
def test_every_reduction_reads_the_second_argument_as_the_temperature(fn):
    x = np.random.default_rng(0).standard_normal((3, 4, 5))
    np.testing.assert_array_equal(fn(x, 0.3), fn(x, temperature=0.3, axis=-1))
    np.testing.assert_array_equal(fn(x, 0.3, axis=1), fn(x, temperature=0.3, axis=1))
    # a NumPy-style positional axis is refused with the fix in the message, never read as T = 1
    with pytest.raises(ValueError, match=r"temperature must be a float, got the int 1.*axis=1"):
        fn(x, 1)
    with pytest.raises(TypeError):
        fn(x, 0.3, 1)                                         # the axis is keyword-only


def _with_axis_or_temperature():
    """The public functions that take an axis or a temperature: the ones the order rule is about."""
    out = [(name, fn) for name, fn in _public_functions()
           if {"axis", "temperature"} & set(inspect.signature(fn).parameters)]
    assert len(out) >= len(REDUCTIONS), "the signature test would check almost nothing"
    return out


@pytest.mark.parametrize("name,fn", _with_axis_or_temperature(), ids=lambda v: v if isinstance(v, str) else "")
def test_signatures_put_temperature_after_the_arrays_and_axis_by_name(name, fn):
    params = inspect.signature(fn).parameters
    if "axis" in params:
        assert params["axis"].kind is inspect.Parameter.KEYWORD_ONLY, f"{name}: axis must be keyword-only"
    if "temperature" in params:
        names = list(params)
        t = names.index("temperature")
        assert params["temperature"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, name
        assert all(params[n].default is inspect.Parameter.empty for n in names[:t]), \
            f"{name}: only the array arguments (and k) come before the temperature, got {names[:t]}"


def test_the_tuned_twins_have_the_plain_signatures():
    for name in ("logsumexp", "softmax", "log_softmax", "sigmoid"):
        assert inspect.signature(getattr(fast, name)) == inspect.signature(getattr(core, name)), name
