"""Argument types for the command lines of gan and ebm: numbers refused by argparse before any work.

argparse turns the ArgumentTypeError into one error line and exit status 2, naming the flag.
"""
import argparse
import math
import os


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


def png_path(parser, args):
    """The picture's path from --png / --out / --name (None for --png ""), its folder created and checked
    before any training: a folder that cannot be written is a command-line error (exit status 2)."""
    if args.png == "":
        return None
    path = args.png or os.path.join(args.out, (args.name or args.data + ("-quick" if args.quick else ""))
                                    + ".png")
    folder = os.path.dirname(path) or "."
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        parser.error(f"cannot create the output folder {folder}: {err.strerror}")
    if not os.access(folder, os.W_OK):
        parser.error(f"the output folder {folder} is not writable")
    return path
