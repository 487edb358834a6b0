"""Read a drawing in the style of draw.py (and of the post it follows) back into a cube.

Only positions matter: the array is split into rows at top-level \\\\ and cells at top-level &, and a cell
holding a number at array (row, column) is cube cell (z, y, x) with row = 5 z + 2 y, column = 5 x + 4 - 2 y
(see draw.py).  A number wrapped in \\color{red} counts as hidden.  Edges and other decoration are ignored.
"""
import re
from dataclasses import dataclass

import numpy as np

from .cube import CELLS, N, where
from .draw import SIZE, hidden_mask, position

_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|[{}&]|%[^\n]*|[^\\{}&%]+", re.S)


@dataclass
class Drawing:
    """A parsed drawing: the numbers by position, which were red, and where each sat in the array."""
    cube: np.ndarray            # (3, 3, 3) int64, repeats allowed (the checker reports them)
    red: np.ndarray             # (3, 3, 3) bool, True where the number was \color{red}
    cells: dict                 # (z, y, x) -> (array row, array column)

    def colour_mistakes(self):
        """Cells drawn red but on a visible face, or black but hidden behind it."""
        wrong = np.argwhere(self.red != hidden_mask())
        return [tuple(int(i) for i in p) for p in wrong]


def array_body(tex):
    """The text between \\begin{array}{spec} and \\end{array}.  Raises ValueError when there is none."""
    begin = re.search(r"\\begin\s*\{array\}\s*\{[^{}]*\}", tex)
    if begin is None:
        raise ValueError("tex: expected \\begin{array}{...} with a column spec, found none")
    end = tex.find(r"\end{array}", begin.end())
    if end < 0:
        raise ValueError(f"tex: \\begin{{array}} at character {begin.start()} has no \\end{{array}}")
    return tex[begin.end():end]


def split_cells(body):
    """Split an array body into rows of cells (lists of token lists), honouring braces.

    Raises ValueError naming the array row and column of an unbalanced brace.
    """
    rows, row, cell, depth = [], [], [], 0
    for tok in _TOKEN.findall(body):
        if tok.startswith("%"):
            continue                                     # TeX comment
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
            if depth < 0:
                raise ValueError(f"tex: unmatched '}}' at array row {len(rows)}, column {len(row)}")
        if depth == 0 and tok == "&":
            row.append(cell)
            cell = []
        elif depth == 0 and tok == "\\\\":
            rows.append(row + [cell])
            row, cell = [], []
        else:
            cell.append(tok)
    if depth != 0:
        raise ValueError(f"tex: unclosed '{{' in array row {len(rows)}, column {len(row)}")
    last = row + [cell]
    if any("".join(c).strip() for c in last):
        rows.append(last)
    return rows


def _group(tokens, i):
    """The brace group starting at tokens[i] (skipping spaces): (its tokens, index after it), or (None, i)."""
    while i < len(tokens) and tokens[i].isspace():
        i += 1
    if i >= len(tokens) or tokens[i] != "{":
        return None, i
    depth, j = 0, i
    while j < len(tokens):
        depth += {"{": 1, "}": -1}.get(tokens[j], 0)
        if depth == 0:
            return tokens[i + 1:j], j + 1
        j += 1
    return None, i


def read_cell(tokens, where_text):
    """The number in one cell and whether it is red: (int or None, bool).

    \\require{..} and the CSS argument of \\style{..} are dropped, \\color{c} is recorded; what is left must be
    digits only (a number), or hold no digit at all (an edge, dots, or nothing).
    """
    kept, red, i = [], False, 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in (r"\require", r"\style", r"\color"):
            arg, i = _group(tokens, i + 1)
            if arg is None:
                raise ValueError(f"tex: {tok} without a {{...}} argument at {where_text}")
            if tok == r"\color":
                red = red or "".join(arg).strip().lower() == "red"
            continue
        kept.append(tok)
        i += 1
    text = "".join(t for t in kept if t not in "{}").strip()
    if not re.search(r"\d", text):
        return None, red
    if not re.fullmatch(r"\d+", text.replace(" ", "")):
        raise ValueError(f"tex: cannot read a number from {text!r} at {where_text}")
    return int(text.replace(" ", "")), red


def lattice_point(r, c):
    """Cube cell (z, y, x) drawn at array (r, c), or None when no cube cell goes there."""
    z, rem = divmod(r, 5)
    if rem % 2 or z >= N:
        return None
    y = rem // 2
    x, off = divmod(c - 4 + 2 * y, 5)
    return (z, y, x) if off == 0 and 0 <= x < N else None


def parse_drawing(tex):
    """Read the cube back from the TeX of a drawing.  Returns a Drawing.

    Raises ValueError for: no array, unbalanced braces, a cell that is not a plain number, a number outside
    1..27, a number where no cube cell is drawn, or a cube cell with no number.
    """
    rows = split_cells(array_body(tex))
    if len(rows) > SIZE:
        raise ValueError(f"tex: expected at most {SIZE} array rows, got {len(rows)}")
    cube = np.zeros((N, N, N), dtype=np.int64)
    red = np.zeros((N, N, N), dtype=bool)
    cells = {}
    for r, row in enumerate(rows):
        for c, tokens in enumerate(row):
            at = f"array row {r}, column {c}"
            value, is_red = read_cell(tokens, at)
            if value is None:
                continue
            point = lattice_point(r, c)
            if point is None:
                raise ValueError(f"tex: number {value} at {at} is not where a cube cell is drawn")
            if not 1 <= value <= CELLS:
                raise ValueError(f"tex: expected a number in 1..27 at {at} ({where(point)}), got {value}")
            cube[point], red[point], cells[point] = value, is_red, (r, c)
    for point in np.ndindex(N, N, N):
        if point not in cells:
            r, c = position(*point)
            raise ValueError(f"tex: no number at array row {r}, column {c}, where cell [{where(point)}] "
                             f"should be drawn")
    return Drawing(cube, red, cells)
