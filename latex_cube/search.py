"""Find every magic cube of order 3 by backtracking that prunes on partial line sums.

The search fills the 27 cells in a fixed order.  Each of the 31 lines keeps a running sum and a count of
filled cells; a value v may go into a cell only if, for every line through it,
    - the line is now full and its sum is exactly 42, or
    - the line now has one empty cell and the number it needs, 42 - sum, is in 1..27 and still unused, or
    - the line now has two empty cells and 42 - sum can still be made from two numbers in 1..27 (3..53).
A cell that closes a line has its value forced (42 - sum), so only a few cells are ever tried with many values.
Nothing about the answer (centre 14, opposite pairs 28) is assumed: it is checked on what the search returns.
"""
import time

import numpy as np

from .cube import CELLS, LINE_INDEX, MAGIC, N, canonical_form

SMALLEST_PAIR, LARGEST_PAIR = 1 + 2, (CELLS - 1) + CELLS          # 3 and 53


def fill_order():
    """An order of the 27 flat cell ids that closes lines as early as possible (greedy, fixed)."""
    lines_of = [[li for li in range(len(LINE_INDEX)) if c in LINE_INDEX[li]] for c in range(CELLS)]
    filled, order = set(), []
    while len(order) < CELLS:
        def score(c):
            # lines this cell would close, then lines it would bring to one empty cell, then most lines
            after = [sum(1 for d in LINE_INDEX[li] if d in filled or d == c) for li in lines_of[c]]
            return (after.count(3), after.count(2), len(lines_of[c]), -c)
        best = max((c for c in range(CELLS) if c not in filled), key=score)
        order.append(best)
        filled.add(best)
    return order


def magic_cubes(stats=None):
    """All magic cubes of order 3, as a list of (3, 3, 3) int64 arrays in the order the search meets them.

    stats: optional dict; gets 'placements', the number of values the search put into a cell.
    """
    order = fill_order()
    lines_of = [[li for li in range(len(LINE_INDEX)) if c in LINE_INDEX[li]] for c in range(CELLS)]
    sums = [0] * len(LINE_INDEX)            # running sum of each line
    empty = [N] * len(LINE_INDEX)           # empty cells left in each line
    used = [False] * (CELLS + 2)            # used[v] for v in 1..27 (index 0 and 28 stay False)
    grid = [0] * CELLS
    found = []
    placements = 0

    def fits(cell, v):
        for li in lines_of[cell]:
            need = MAGIC - sums[li] - v     # what the rest of the line must add up to
            left = empty[li] - 1
            if left == 0 and need != 0:
                return False
            if left == 1 and not (1 <= need <= CELLS and not used[need] and need != v):
                return False
            if left == 2 and not SMALLEST_PAIR <= need <= LARGEST_PAIR:
                return False
        return True

    def place(cell, v, sign):
        used[v] = sign > 0
        grid[cell] = v if sign > 0 else 0
        for li in lines_of[cell]:
            sums[li] += sign * v
            empty[li] -= sign

    def forced_value(cell):
        """42 - sum of a line through this cell that has only this cell empty, else None."""
        for li in lines_of[cell]:
            if empty[li] == 1:
                return MAGIC - sums[li]
        return None

    def extend(depth):
        nonlocal placements
        if depth == CELLS:
            found.append(np.array(grid, dtype=np.int64).reshape(N, N, N))
            return
        cell = order[depth]
        forced = forced_value(cell)
        candidates = [forced] if forced is not None else range(1, CELLS + 1)
        for v in candidates:
            if 1 <= v <= CELLS and not used[v] and fits(cell, v):
                placements += 1
                place(cell, v, +1)
                extend(depth + 1)
                place(cell, v, -1)

    extend(0)
    if stats is not None:
        stats["placements"] = placements
    return found


def classes_of(cubes):
    """Group cubes by canonical form.

    cubes: list of (3, 3, 3) arrays
    returns a list of (canonical (3, 3, 3) array, [indices into cubes]) sorted by canonical form, so
    class k is the k-th smallest canonical form.
    """
    groups = {}
    for i, cube in enumerate(cubes):
        canon, _ = canonical_form(cube)
        groups.setdefault(tuple(canon.reshape(-1)), []).append(i)
    return [(np.array(key, dtype=np.int64).reshape(N, N, N), members)
            for key, members in sorted(groups.items())]


def enumerate_all():
    """Run the search and group the results.  Returns (cubes, classes, seconds)."""
    t0 = time.perf_counter()
    cubes = magic_cubes()
    classes = classes_of(cubes)
    return cubes, classes, time.perf_counter() - t0
