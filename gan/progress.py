"""Progress lines for long training loops: how far, how fast (updates per second) and how long is left.

Only the printed line depends on the clock; the training itself is counted in updates, so the same
seed and flags give the same numbers however fast the machine is.
"""
import time


def format_seconds(s):
    """A duration for a person: 42 s, 3 min 05 s, 1 h 02 min."""
    s = max(0, int(round(s)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class Progress:
    """progress.line(done) -> "step 300/2500, 215 updates/s, 10 s left" (rate over the run so far).

    total: the number of updates the run will make   word: what one update is called in the line
    """

    def __init__(self, total, word="step", clock=time.perf_counter):
        if int(total) < 1:
            raise ValueError(f"total must be >= 1 updates, got {total}")
        self.total, self.word, self.clock = int(total), word, clock
        self.start = clock()

    def line(self, done):
        elapsed = max(self.clock() - self.start, 1e-9)
        rate = done / elapsed
        left = (self.total - done) / rate if rate > 0 else float("inf")
        return (f"{self.word} {done}/{self.total}, {rate:.0f} updates/s, "
                f"{format_seconds(left) if left != float('inf') else '?'} left")
