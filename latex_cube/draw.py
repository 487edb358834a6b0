"""Draw a 3x3x3 cube for MathJax as one TeX array, in the style of kexue.fm/archives/6534.

Oblique projection onto a 15 x 15 array of cells.  Cell (z, y, x) of the cube (layer, row back->front,
column) sits at
    array row    = 5 z + 2 y          (layers 5 rows apart, each step to the front 2 rows down)
    array column = 5 x + 4 - 2 y      (columns 5 apart, each step to the front 2 columns left)
so the front face is an upright 3x3 grid and the back leans up and to the right.  Between neighbours:
    along x: 4 cells of dashes        along z: 4 cells of bars        along y: 1 cell, a bar turned 45 degrees
A cell is visible when it lies on the front (y = 2), top (z = 0) or right (x = 2) face; an edge is visible
when both its ends are.  Hidden numbers are red; hidden edges are red dots at half opacity.  Where edges
cross, a number beats a visible edge, which beats a hidden one.

The turned bar needs MathJax's `html` extension for \\style.  MathJax 3 and 4 load it with \\require{html};
MathJax 2 called the same extension HTML, and \\require{HTML} fails in 3 and 4, hence the mathjax2 flag.
"""
import html

import numpy as np

from .cube import MAGIC, N, as_cube, verify

SIZE = 5 * (N - 1) + 2 * (N - 1) + 1           # 15 rows and 15 columns

DASH = "—"
BAR = "|"
SLANT = r"\style{display: inline-block; transform: rotate(45deg)}{|}"
HIDDEN_DASH = r"\style{display: inline-block; opacity: 0.5}{\color{red}{\cdots}}"
HIDDEN_BAR = r"\style{display: inline-block; opacity: 0.5}{\color{red}{\vdots}}"
HIDDEN_SLANT = r"\style{display: inline-block; transform: rotate(45deg); opacity: 0.5}{\color{red}{\vdots}}"

MATHJAX3_CDN = "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"
MATHJAX2_CDN = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.9/MathJax.js?config=TeX-AMS_CHTML"


def position(z, y, x):
    """Array (row, column) of cube cell (z, y, x)."""
    return 5 * z + 2 * y, 5 * x + 4 - 2 * y


def is_visible(z, y, x):
    """On the top, front or right face."""
    return z == 0 or y == N - 1 or x == N - 1


def hidden_mask():
    """(3, 3, 3) bool, True for the 8 cells behind the three drawn faces."""
    return np.array([[[not is_visible(z, y, x) for x in range(N)] for y in range(N)] for z in range(N)])


def _edges():
    """Every edge between neighbouring cells: (cells of the array it covers, axis, visible)."""
    for z in range(N):
        for y in range(N):
            for x in range(N):
                (r, c), here = position(z, y, x), is_visible(z, y, x)
                if x + 1 < N:       # to the right: 4 cells on the same array row
                    yield [(r, c + i) for i in range(1, 5)], "x", here and is_visible(z, y, x + 1)
                if z + 1 < N:       # downwards: 4 cells in the same array column
                    yield [(r + i, c) for i in range(1, 5)], "z", here and is_visible(z + 1, y, x)
                if y + 1 < N:       # to the front: 1 cell, down one row and left one column
                    yield [(r + 1, c - 1)], "y", here and is_visible(z, y + 1, x)


def layout(cube):
    """The drawing as a (15, 15) grid of TeX cell strings ('' for empty cells)."""
    grid = [["" for _ in range(SIZE)] for _ in range(SIZE)]
    rank = [[0] * SIZE for _ in range(SIZE)]       # 3 number, 2 visible edge, 1 hidden edge, 0 empty
    symbol = {("x", True): DASH, ("z", True): BAR, ("y", True): SLANT,
              ("x", False): HIDDEN_DASH, ("z", False): HIDDEN_BAR, ("y", False): HIDDEN_SLANT}
    for cells, axis, visible in _edges():
        for r, c in cells:
            if rank[r][c] < 1 + visible:
                grid[r][c], rank[r][c] = symbol[axis, visible], 1 + visible
    for z, y, x in np.ndindex(N, N, N):
        r, c = position(z, y, x)
        v = int(cube[z, y, x])
        grid[r][c] = str(v) if is_visible(z, y, x) else rf"\color{{red}}{{{v}}}"
        rank[r][c] = 3
    return grid


def draw_tex(values, mathjax2=False):
    """The TeX of the drawing (without $$ delimiters).  values: (3, 3, 3) numbers 1..27, no repeats."""
    cube = as_cube(values)
    lines = [r"\require{HTML}" if mathjax2 else r"\require{html}",
             r"\begin{array}{" + "c" * SIZE + "}"]
    for row in layout(cube):
        while row and row[-1] == "":            # trailing empty cells add nothing
            row = row[:-1]
        lines.append(" & ".join(row) + r" \\")
    lines.append(r"\end{array}")
    return "\n".join(lines)


def tex_snippet(values, mathjax2=False):
    """The drawing as a display-math block ready to paste into a page that runs MathJax."""
    return "$$\n" + draw_tex(values, mathjax2) + "\n$$\n"


_MATHJAX3_CONFIG = """<script>
window.MathJax = {
  startup: {
    pageReady: () => MathJax.startup.defaultPageReady().then(
      () => document.documentElement.setAttribute('data-mathjax', 'typeset'))
  }
};
</script>
<script id="MathJax-script" async src="%s"></script>"""

_MATHJAX2_CONFIG = """<script type="text/x-mathjax-config">
MathJax.Hub.Queue(function () {
  document.documentElement.setAttribute('data-mathjax', 'typeset');
});
</script>
<script async src="%s"></script>"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>A 3x3x3 magic cube</title>
<style>
  body {{ font-family: sans-serif; max-width: 44em; margin: 2em auto; color: #222; }}
  .drawing {{ font-size: 120%; }}
  table.layers td {{ padding: 0.1em 0.5em; text-align: right; font-family: monospace; }}
  table.layers {{ border-collapse: collapse; display: inline-table; margin-right: 1.5em; }}
  table.layers caption {{ font-size: 85%; color: #555; }}
</style>
{config}
</head>
<body>
<h1>A 3&times;3&times;3 magic cube</h1>
<p>{caption}</p>
<div class="drawing">
$$
{tex}
$$
</div>
<p>Front, top and right faces are drawn in black; the eight numbers behind them are red.</p>
{layers}
<p>{summary}</p>
</body>
</html>
"""


def _layer_tables(cube):
    names = ("top", "middle", "bottom")
    out = []
    for z in range(N):
        rows = "".join("<tr>" + "".join(f"<td>{int(v)}</td>" for v in cube[z, y]) + "</tr>\n" for y in range(N))
        out.append(f'<table class="layers"><caption>{names[z]} layer, back to front</caption>\n{rows}</table>')
    return "\n".join(out)


def draw_html(values, caption="", mathjax_url=None, mathjax2=False):
    """A self-contained page showing the drawing with MathJax (CHTML output).

    values: (3, 3, 3) numbers 1..27, no repeats
    mathjax_url: where the page loads MathJax from; default the jsDelivr CDN copy of MathJax 3
                 (tex-chtml.js), or of MathJax 2 (config TeX-AMS_CHTML) when mathjax2 is set.
    The page sets data-mathjax="typeset" on <html> once MathJax has finished.
    """
    cube = as_cube(values)
    url = mathjax_url or (MATHJAX2_CDN if mathjax2 else MATHJAX3_CDN)
    config = (_MATHJAX2_CONFIG if mathjax2 else _MATHJAX3_CONFIG) % html.escape(url)
    report = verify(cube)
    summary = (f"All {len(report.sums)} lines (9 rows, 9 columns, 9 pillars, 4 space diagonals) sum to {MAGIC}."
               if report.is_magic else html.escape(report.summary()))
    return _PAGE.format(config=config, caption=html.escape(caption), tex=html.escape(draw_tex(cube, mathjax2)),
                        layers=_layer_tables(cube), summary=summary)
