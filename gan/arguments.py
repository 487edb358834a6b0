"""Argument types for the command lines of gan and ebm: numbers refused by argparse before any work.

argparse turns the ArgumentTypeError into one error line and exit status 2, naming the flag.
"""
import argparse
import math


def number_type(kind, low, strict=True):
    """An argparse type: a finite number of `kind` above `low` (or at least `low`)."""
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not math.isfinite(v) or (v <= low if strict else v < low):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {low}, got {text}")
        return v
    return parse


positive_int = number_type(int, 0)
positive_float = number_type(float, 0)
natural = number_type(int, 0, strict=False)
