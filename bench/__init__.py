"""Benchmarks: `python -m bench <name> [--quick] [--threads N]`, ours against the reference in one run."""
