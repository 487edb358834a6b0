"""Shared test configuration: hypothesis profiles and the array-module fixture."""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# CI: the same examples every run and no per-example deadline (the machines are shared and noisy).
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=100)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def _cupy_or_none():
    try:
        import cupy
        if cupy.cuda.is_available():
            cupy.zeros(1)
            return cupy
    except Exception:  # no CuPy, no driver, or no device: all mean "no GPU here"
        return None
    return None


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def xp(request):
    """The array module under test: NumPy always, CuPy when a GPU is present."""
    if request.param == "numpy":
        return np
    cp = _cupy_or_none()
    if cp is None:
        pytest.skip("CuPy with a working CUDA device is not available")
    return cp
