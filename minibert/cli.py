"""What the task demos' command lines share: one-line errors and checked numbers.

A bad command line gets one line on stderr naming the flag, and exit status 2 (argparse's own
convention), never the whole usage text or a traceback.
"""
import argparse


class Parser(argparse.ArgumentParser):
    """argparse with one line on stderr for a bad command line (exit status 2), not the whole usage."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (--help lists the flags)\n")


def in_range(low, kind=int, high=None):
    """An argparse type: a number of `kind` with low <= value (< high, when given); NaN is refused."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not (value >= low and (high is None or value < high)):        # also refuses nan
            limit = f"in [{low}, {high})" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"expected a value {limit}, got {text!r}")
        return value
    return parse
