"""Energy-based models sampled by Langevin dynamics (work in progress: see the project's issues)."""
