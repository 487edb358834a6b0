"""The 3x3x3 magic cube: the array, its 31 lines, a verifier, the 48 symmetries and a canonical form.

Indexing used everywhere in this package: cube[z, y, x] with
    z = layer,  0 top    .. 2 bottom
    y = row,    0 back   .. 2 front
    x = column, 0 left   .. 2 right
A magic cube of order 3 holds 1..27 once each, and every row, column, pillar and space diagonal sums to
    M = 3 * (27 + 1) / 2 = 42      (the sum 1 + ... + 27 = 378 spread over 9 parallel lines).
"""
from dataclasses import dataclass
from itertools import permutations, product

import numpy as np

N = 3
CELLS = N ** 3                       # 27
MAGIC = N * (CELLS + 1) // 2         # 42
AXES = ("layer", "row", "column")

# The cube printed in the notes (reference section 4): layers top -> bottom, rows back -> front.
NOTES_CUBE = np.array([
    [[8, 24, 10], [12, 7, 23], [22, 11, 9]],
    [[15, 1, 26], [25, 14, 3], [2, 27, 13]],
    [[19, 17, 6], [5, 21, 16], [18, 4, 20]],
], dtype=np.int64)


def where(pos):
    """Human name of a cell: (z, y, x) -> 'layer 1, row 2, column 0' (all 0-based)."""
    return ", ".join(f"{axis} {int(i)}" for axis, i in zip(AXES, pos))


def as_cube(values, name="cube", allow_repeats=False):
    """Check and convert to a (3, 3, 3) int64 array of numbers in 1..27.

    values: anything np.asarray turns into shape (3, 3, 3) with integral entries.
    allow_repeats: the checker reads broken drawings and reports repeats instead of raising.
    Raises ValueError naming the first offending position.
    """
    arr = np.asarray(values)
    if arr.shape != (N, N, N):
        raise ValueError(f"{name}: expected shape (3, 3, 3), got {arr.shape}")
    if arr.dtype == bool or arr.dtype.kind not in "iuf":
        raise ValueError(f"{name}: expected integers 1..27, got dtype {arr.dtype}")
    for pos in np.ndindex(arr.shape):
        v = arr[pos]
        if arr.dtype.kind == "f" and not (np.isfinite(v) and float(v).is_integer()):
            raise ValueError(f"{name}[{where(pos)}]: expected an integer 1..27, got {v!r}")
        if not 1 <= v <= CELLS:
            raise ValueError(f"{name}[{where(pos)}]: expected a number in 1..27, got {int(v)}")
    arr = arr.astype(np.int64)
    if not allow_repeats:
        first = {}
        for pos in np.ndindex(arr.shape):
            v = int(arr[pos])
            if v in first:
                raise ValueError(f"{name}: {v} is repeated, at [{where(first[v])}] and [{where(pos)}]")
            first[v] = pos
    return arr


# ---------------------------------------------------------------------------------------------- lines

@dataclass(frozen=True)
class Line:
    """One of the 31 lines: kind is 'row', 'column', 'pillar' or 'diagonal'; cells are three (z, y, x)."""
    kind: str
    name: str
    cells: tuple


def _make_lines():
    lines = []
    r = range(N)
    # a row runs left -> right (x varies), a column back -> front (y varies), a pillar top -> bottom (z varies)
    lines += [Line("row", f"row z={z} y={y}", tuple((z, y, x) for x in r)) for z in r for y in r]
    lines += [Line("column", f"column z={z} x={x}", tuple((z, y, x) for y in r)) for z in r for x in r]
    lines += [Line("pillar", f"pillar y={y} x={x}", tuple((z, y, x) for z in r)) for y in r for x in r]
    # space diagonals: from each top corner through the centre to the opposite bottom corner
    for y0, x0 in ((0, 0), (0, 2), (2, 0), (2, 2)):
        dy, dx = (1 if y0 == 0 else -1), (1 if x0 == 0 else -1)
        cells = tuple((t, y0 + dy * t, x0 + dx * t) for t in r)
        lines.append(Line("diagonal", f"diagonal from top {'back' if y0 == 0 else 'front'}-"
                                      f"{'left' if x0 == 0 else 'right'}", cells))
    return tuple(lines)


LINES = _make_lines()      # 27 axis lines (9 rows, 9 columns, 9 pillars) + 4 space diagonals = 31
LINE_INDEX = np.array([[z * 9 + y * 3 + x for z, y, x in ln.cells] for ln in LINES])  # (31, 3) flat ids


def line_sums(cube):
    """Sum along every line.  cube: (3, 3, 3) -> (31,) int64, in the order of LINES."""
    return np.asarray(cube).reshape(-1)[LINE_INDEX].sum(axis=1)


@dataclass
class Report:
    """What the verifier found: each line with its sum, failing lines, repeated and missing numbers."""
    cube: np.ndarray            # (3, 3, 3) the numbers checked
    sums: np.ndarray            # (31,) sum of each line in LINES
    duplicates: dict            # number -> list of (z, y, x) where it appears (only numbers seen twice+)
    missing: list               # numbers of 1..27 that do not appear

    @property
    def failing(self):
        return [ln for ln, s in zip(LINES, self.sums) if s != MAGIC]

    @property
    def is_magic(self):
        return not self.failing and not self.duplicates and not self.missing

    def lines_text(self):
        """One text line per cube line: 'row z=0 y=0     8 + 24 + 10 =  42  ok'."""
        out = []
        for ln, s in zip(LINES, self.sums):
            terms = " + ".join(f"{int(self.cube[p]):2d}" for p in ln.cells)
            out.append(f"{ln.name:<30} {terms} = {s:3d}  {'ok' if s == MAGIC else 'FAIL'}")
        return out

    def summary(self):
        n_ok = len(LINES) - len(self.failing)
        parts = [f"{n_ok} of {len(LINES)} lines sum to {MAGIC}"]
        if self.duplicates:
            parts.append("repeated: " + ", ".join(
                f"{v} at " + " and ".join(f"[{where(p)}]" for p in ps) for v, ps in self.duplicates.items()))
        if self.missing:
            parts.append("missing: " + ", ".join(str(v) for v in self.missing))
        parts.append("MAGIC" if self.is_magic else "NOT MAGIC")
        return "; ".join(parts)


def verify(values, allow_repeats=True):
    """Check every line of a cube.  values: (3, 3, 3) numbers in 1..27 (repeats reported, not raised)."""
    cube = as_cube(values, allow_repeats=allow_repeats)
    seen = {}
    for pos in np.ndindex(cube.shape):
        seen.setdefault(int(cube[pos]), []).append(pos)
    duplicates = {v: ps for v, ps in sorted(seen.items()) if len(ps) > 1}
    missing = [v for v in range(1, CELLS + 1) if v not in seen]
    return Report(cube, line_sums(cube), duplicates, missing)


def is_magic(values):
    return verify(values).is_magic


# ---------------------------------------------------------------------------------------------- symmetries

def _make_symmetries():
    """The 48 symmetries of the cube (6 axis orders x 8 reflections) as flat index maps.

    Map k is an int array perm of shape (27,) with  image.flat[i] = cube.flat[perm[i]].
    Map 0 is the identity.
    """
    idx = np.arange(CELLS).reshape(N, N, N)
    maps = []
    for order in permutations(range(3)):
        for flips in product((False, True), repeat=3):
            t = idx.transpose(order)
            for axis, flip in enumerate(flips):
                if flip:
                    t = np.flip(t, axis=axis)
            maps.append(t.reshape(-1).copy())
    return np.stack(maps)                                    # (48, 27)


SYMMETRIES = _make_symmetries()
SYMMETRIES.setflags(write=False)


def apply_symmetry(cube, k):
    """Image of a cube under symmetry k in 0..47.  cube: (3, 3, 3) -> (3, 3, 3)."""
    if not 0 <= int(k) < len(SYMMETRIES) or int(k) != k:
        raise ValueError(f"symmetry: expected an integer in 0..47, got {k!r}")
    return np.asarray(cube).reshape(-1)[SYMMETRIES[int(k)]].reshape(N, N, N)


def all_images(cube):
    """All 48 images.  cube: (3, 3, 3) -> (48, 3, 3, 3)."""
    return np.asarray(cube).reshape(-1)[SYMMETRIES].reshape(-1, N, N, N)


def canonical_form(cube):
    """The lexicographically smallest of the 48 images (read flat), and the symmetry k that gives it.

    Two cubes are the same up to rotation and reflection exactly when their canonical forms are equal.
    """
    flat = np.asarray(cube).reshape(-1)[SYMMETRIES]          # (48, 27)
    k = min(range(len(flat)), key=lambda i: tuple(flat[i]))
    return flat[k].reshape(N, N, N), k


def symmetry_to(src, dst):
    """The k with apply_symmetry(src, k) == dst, or None when dst is not an image of src."""
    images = all_images(src)
    hits = np.flatnonzero((images == np.asarray(dst)).all(axis=(1, 2, 3)))
    return int(hits[0]) if len(hits) else None
