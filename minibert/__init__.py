"""BERT in NumPy with hand-written backward passes (work in progress: see the project's issues)."""
