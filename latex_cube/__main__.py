"""Command line: find every 3x3x3 magic cube and draw one; or check the numbers in a drawing.

    python -m latex_cube [--class K --symmetry S] [--out DIR] [--mathjax-url URL] [--mathjax2] [--quick]
    python -m latex_cube check FILE

The first form searches, groups the cubes into classes, writes NAME.tex and NAME.html for the chosen cube
(NAME: cube for the notes' cube, classK-symmetryS for another; in out/latex_cube/ unless --out says),
prints its verification and ends with one JSON line.  Without --quick it also checks that all 48 images of
all 192 cubes are magic and that every cube survives draw -> parse.  `check` reads the first TeX array in
FILE as a drawing, prints repeated and missing numbers and failing lines, ends with one JSON line, and exits
with status 1 when the cube is not magic.  A bad argument or an unreadable FILE (missing, not UTF-8, no
drawing in it) is one line on stderr and exit status 2; --debug shows the traceback instead.
"""
import argparse
import html
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from .cube import LINES, NOTES_CUBE, all_images, apply_symmetry, is_magic, symmetry_to, verify, where
from .draw import draw_html, draw_tex, hidden_mask, tex_snippet
from .parse import parse_drawing
from .search import enumerate_all


SUBCOMMANDS = """subcommands:
  check FILE    read the cube drawing in FILE (TeX, or a page written by this program) and report
                repeated and missing numbers and failing lines (python -m latex_cube check --help)"""


class UsageError(Exception):
    """A bad argument or input file: one line on stderr, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message} (see --help)")


def int_in(low, high):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected an int in {low}..{high}, got {text!r}")
        return value
    return parse


def check_out(folder):
    """Create --out and write a file there now, so that a missing permission shows before the search."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UsageError(f"--out {folder} exists and is not a folder")
    try:
        os.makedirs(folder, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe-")
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        raise UsageError(f"--out {folder}: cannot write there ({err.strerror or err})") from None


def read_drawing_text(path):
    """The text of FILE, HTML-unescaped for a page; UsageError naming the file when it cannot be read."""
    if not path.is_file():
        raise UsageError(f"FILE {path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(f"FILE {path}: not UTF-8 text (byte {err.start}: {err.reason})") from None
    except OSError as err:
        raise UsageError(f"FILE {path}: cannot read it ({err.strerror or err})") from None
    if path.suffix.lower() in (".html", ".htm"):
        text = html.unescape(text)              # a page written by draw_html holds the TeX HTML-escaped
    return text


def choose(classes, cls, sym):
    """The cube to draw and its (class, symmetry): the notes' cube unless both are given."""
    if cls is None and sym is None:
        for k, (canon, _) in enumerate(classes):
            s = symmetry_to(canon, NOTES_CUBE)
            if s is not None:
                return NOTES_CUBE.copy(), k, s
        raise RuntimeError("the cube from the notes is in no class found by the search")
    cls = 0 if cls is None else cls
    sym = 0 if sym is None else sym
    if not 0 <= cls < len(classes):
        raise ValueError(f"--class: expected 0..{len(classes) - 1}, got {cls}")
    if not 0 <= sym < 48:
        raise ValueError(f"--symmetry: expected 0..47, got {sym}")
    return apply_symmetry(classes[cls][0], sym), cls, sym


def self_check(cubes):
    """Every image of every cube is magic, and every cube comes back from its drawing unchanged."""
    images_magic = all(is_magic(img) for cube in cubes for img in all_images(cube))
    round_trip = all((parse_drawing(draw_tex(c)).cube == c).all() for c in cubes)
    return images_magic, round_trip


def run_demo(args):
    t0 = time.perf_counter()
    cubes, classes, search_s = enumerate_all()
    print(f"search: {len(cubes)} magic cubes in {search_s:.2f} s, {len(classes)} classes of sizes "
          f"{[len(m) for _, m in classes]}", file=sys.stderr)
    centre = all(c[1, 1, 1] == 14 for c in cubes)
    opposite = all((c + c[::-1, ::-1, ::-1] == 28).all() for c in cubes)
    for k, (canon, members) in enumerate(classes):
        print(f"class {k}: {len(members)} cubes, canonical form layers {canon.tolist()}")

    cube, cls, sym = choose(classes, args.cls, args.symmetry)
    print(f"\ndrawing class {cls}, symmetry {sym}: layers top->bottom, rows back->front")
    for z in range(3):
        print("   " + "   ".join(" ".join(f"{v:2d}" for v in row) for row in cube[z]))
    report = verify(cube)
    print("\n".join(report.lines_text()))
    print(report.summary())

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "cube" if args.cls is None and args.symmetry is None else f"class{cls}-symmetry{sym}"
    (out / f"{name}.tex").write_text(tex_snippet(cube, args.mathjax2), encoding="utf-8")
    caption = f"Class {cls} of {len(classes)}, symmetry {sym} of 48."
    page = draw_html(cube, caption, mathjax_url=args.mathjax_url, mathjax2=args.mathjax2)
    (out / f"{name}.html").write_text(page, encoding="utf-8")
    print(f"wrote {out / (name + '.tex')} and {out / (name + '.html')}")

    result = {"cubes_found": len(cubes), "classes": len(classes), "class_sizes": [len(m) for _, m in classes],
              "centre_14": bool(centre), "opposite_pairs_28": bool(opposite), "class": cls, "symmetry": sym,
              "drawn_cube_magic": report.is_magic, "search_seconds": round(search_s, 3)}
    if not args.quick:
        print("checking 48 images of every cube and draw -> parse for all of them", file=sys.stderr)
        result["all_images_magic"], result["all_round_trips"] = (bool(b) for b in self_check(cubes))
    result["seconds"] = round(time.perf_counter() - t0, 3)
    print(json.dumps(result))
    return 0


def run_check(args):
    path = Path(args.file)
    text = read_drawing_text(path)
    try:
        drawing = parse_drawing(text)
    except ValueError as err:
        raise UsageError(f"FILE {path}: {err}") from None
    report = verify(drawing.cube)
    print(f"{path}: layers top->bottom, rows back->front")
    for z in range(3):
        print("   " + "   ".join(" ".join(f"{v:2d}" for v in row) for row in drawing.cube[z]))
    for v, places in report.duplicates.items():
        print(f"repeated {v}: " + "; ".join(f"[{where(p)}] at array {drawing.cells[p]}" for p in places))
    if report.missing:
        print("missing: " + ", ".join(map(str, report.missing)))
    print("\n".join(report.lines_text()))
    colour = drawing.colour_mistakes()
    for p in colour:
        print(f"colour: [{where(p)}] is {'red' if drawing.red[p] else 'black'} but "
              f"{'hidden' if hidden_mask()[p] else 'on a visible face'}")
    print(report.summary())
    print(json.dumps({"file": str(path), "magic": report.is_magic,
                      "lines_ok": len(LINES) - len(report.failing), "lines": len(LINES),
                      "failing_lines": [ln.name for ln in report.failing],
                      "duplicates": {str(v): len(p) for v, p in report.duplicates.items()},
                      "missing": report.missing, "colour_mistakes": len(colour),
                      "centre": int(drawing.cube[1, 1, 1])}))
    return 0 if report.is_magic else 1


def build_parsers():
    """(the demo's parser, the check subcommand's parser)."""
    check = Parser(prog="python -m latex_cube check",
                   description="Read a cube drawing in TeX and check its numbers.")
    check.add_argument("file", help="a file holding the drawing's \\begin{array}...\\end{array}")
    check.add_argument("--debug", action="store_true", help="show the traceback of an error")
    p = Parser(prog="python -m latex_cube", description=__doc__.split("\n")[0], epilog=SUBCOMMANDS,
               usage="%(prog)s [options]\n       %(prog)s check FILE",
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--class", dest="cls", type=int_in(0, 3), default=None, help="class 0..3 (by canonical form)")
    p.add_argument("--symmetry", type=int_in(0, 47), default=None, help="symmetry 0..47 applied to the class's "
                   "canonical form; default (neither given): the cube in the notes")
    p.add_argument("--out", default="out/latex_cube",
                   help="folder for NAME.tex and NAME.html (NAME: cube, or classK-symmetryS)")
    p.add_argument("--mathjax-url", default=None, help="where the page loads MathJax from (default: CDN)")
    p.add_argument("--mathjax2", action="store_true", help="emit \\require{HTML} and load MathJax 2")
    p.add_argument("--quick", action="store_true", help="skip the check over all images and round trips")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return p, check


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    demo, check = build_parsers()
    debug = "--debug" in argv
    try:
        if argv[:1] == ["check"]:
            return run_check(check.parse_args(argv[1:]))
        args = demo.parse_args(argv)
        check_out(args.out)
        return run_demo(args)
    except (UsageError, ValueError, OSError) as err:
        if debug:
            raise
        message = (str(err).splitlines() or [repr(err)])[0]
        prog = check.prog if argv[:1] == ["check"] else demo.prog
        print(message if message.startswith(prog) else f"{prog}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
