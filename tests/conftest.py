"""Shared test configuration: the hypothesis profiles."""
import os

from hypothesis import HealthCheck, settings

# CI: the same examples every run and no per-example deadline (the machines are shared and noisy).
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=100)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

