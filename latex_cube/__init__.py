"""The 3x3x3 magic cube: verified, all 192 found by a pruned search, drawn for MathJax, read back from TeX.

Reading order: cube.py (array, lines, verifier, symmetries), search.py, draw.py, parse.py, renderers.py,
__main__.py.
"""
from .cube import (LINES, MAGIC, NOTES_CUBE, SYMMETRIES, Line, Report, all_images, apply_symmetry, as_cube,
                   canonical_form, is_magic, line_sums, symmetry_to, verify)
from .draw import draw_html, draw_tex, hidden_mask, tex_snippet
from .parse import Drawing, parse_drawing
from .search import classes_of, enumerate_all, magic_cubes
