"""latex_cube: the model, the 48 symmetries, the search, the drawing <-> parser round trip, the checker."""
import functools
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from latex_cube import cube as lc
from latex_cube.__main__ import main
from latex_cube.draw import draw_html, draw_tex, hidden_mask, position, tex_snippet
from latex_cube.parse import parse_drawing
from latex_cube.search import enumerate_all, magic_cubes

POST_TEX = Path(lc.__file__).with_name("post_6534.txt")
# the posts' text (the blog excerpts) is kept beside the repository, not in it
SEED_EXCERPTS = Path(__file__).resolve().parents[2] / "shared" / "seed" / "blog_excerpts.txt"
# the post's numbers as read by hand from its page (reference notes, section 4)
POST_CUBE = [[[4, 25, 11], [14, 22, 7], [24, 1, 18]],
             [[13, 27, 5], [8, 12, 22], [15, 3, 21]],
             [[9, 26, 6], [16, 8, 17], [23, 2, 19]]]


@functools.lru_cache(maxsize=1)
def found():
    cubes, classes, seconds = enumerate_all()
    return cubes, classes, seconds


def cube_ids():
    return st.integers(0, 191)


# ------------------------------------------------------------------------------------------------ model

def test_lines_are_9_rows_9_columns_9_pillars_4_diagonals():
    kinds = Counter(ln.kind for ln in lc.LINES)
    assert kinds == {"row": 9, "column": 9, "pillar": 9, "diagonal": 4}
    assert len({frozenset(ln.cells) for ln in lc.LINES}) == 31
    per_cell = Counter(p for ln in lc.LINES if ln.kind != "diagonal" for p in ln.cells)
    assert set(per_cell.values()) == {3}, "every cell lies on one row, one column and one pillar"
    for ln in lc.LINES:
        if ln.kind == "diagonal":
            assert (1, 1, 1) in ln.cells
            assert all(c in (0, 2) for p in (ln.cells[0], ln.cells[2]) for c in p), ln.name


def test_notes_cube_is_magic_and_post_cube_is_not():
    assert lc.verify(lc.NOTES_CUBE).is_magic
    report = lc.verify(POST_CUBE)
    assert set(report.duplicates) == {8, 22}
    assert report.missing == [10, 20]
    assert len(lc.LINES) - len(report.failing) == 6         # 5 axis lines and 1 space diagonal
    assert sum(ln.kind != "diagonal" for ln in report.failing) == 22
    assert "NOT MAGIC" in report.summary()


def test_symmetries_form_the_group_of_the_cube():
    maps = lc.SYMMETRIES
    assert maps.shape == (48, 27)
    assert len({tuple(m) for m in maps}) == 48
    assert (maps[0] == np.arange(27)).all()
    as_set = {tuple(m) for m in maps}
    for a in maps:
        assert sorted(a) == list(range(27))
        for b in maps[::7]:
            assert tuple(a[b]) in as_set, "closed under composition"
    lines = {frozenset(ln.cells) for ln in lc.LINES}
    flat = [frozenset(z * 9 + y * 3 + x for z, y, x in ln.cells) for ln in lc.LINES]
    for m in maps:
        images = {frozenset(int(m[i]) for i in ln) for ln in flat}
        assert len(images) == len(lines) and images == set(flat), "lines map onto lines"
        assert m[13] == 13, "the centre stays"


@given(cube_ids(), st.integers(0, 47))
def test_every_symmetry_of_a_magic_cube_is_magic(i, k):
    cubes, _, _ = found()
    image = lc.apply_symmetry(cubes[i], k)
    assert lc.is_magic(image)
    assert any((image == c).all() for c in cubes), "the image is one of the 192"
    canon_a, _ = lc.canonical_form(cubes[i])
    canon_b, _ = lc.canonical_form(image)
    assert (canon_a == canon_b).all(), "canonical form does not depend on the symmetry"
    assert lc.symmetry_to(cubes[i], image) is not None


@given(cube_ids(), st.integers(0, 26), st.integers(1, 26))
def test_two_swapped_entries_fail_exactly_the_lines_that_changed(i, a, step):
    cubes, _, _ = found()
    b = (a + step) % 27
    broken = cubes[i].reshape(-1).copy()
    broken[a], broken[b] = broken[b], broken[a]
    report = lc.verify(broken.reshape(3, 3, 3))
    pa, pb = np.unravel_index(a, (3, 3, 3)), np.unravel_index(b, (3, 3, 3))
    # a line's sum moves by +-(value difference) when it holds exactly one of the two cells
    changed = {ln.name for ln in lc.LINES if (pa in ln.cells) != (pb in ln.cells)}
    assert {ln.name for ln in report.failing} == changed
    assert changed, "every cell is on some line, so a swap always breaks something"
    assert not report.duplicates and not report.missing


@pytest.mark.parametrize("bad, fragment", [
    (np.ones((3, 3)), "shape (3, 3, 3), got (3, 3)"),
    (np.arange(27), "shape (3, 3, 3), got (27,)"),
    (np.where(np.arange(27) == 14, 0, np.arange(1, 28)).reshape(3, 3, 3), "layer 1, row 1, column 2"),
    (np.where(np.arange(27) == 26, 28, np.arange(1, 28)).reshape(3, 3, 3), "layer 2, row 2, column 2"),
    (np.arange(1, 28).reshape(3, 3, 3) + 0.5, "layer 0, row 0, column 0"),
    (np.full((3, 3, 3), "a"), "dtype"),
])
def test_bad_cubes_raise_and_name_the_position(bad, fragment):
    with pytest.raises(ValueError, match="cube"):
        lc.as_cube(bad)
    with pytest.raises(ValueError) as err:
        lc.as_cube(bad)
    assert fragment in str(err.value)


def test_repeats_raise_naming_both_positions_but_verify_reports_them():
    cube = lc.NOTES_CUBE.copy()
    cube[2, 2, 2] = cube[0, 0, 0]
    with pytest.raises(ValueError, match=r"8 is repeated, at \[layer 0, row 0, column 0\] and "
                                         r"\[layer 2, row 2, column 2\]"):
        lc.as_cube(cube)
    with pytest.raises(ValueError, match="symmetry"):
        lc.apply_symmetry(cube, 48)
    report = lc.verify(cube)
    assert report.duplicates == {8: [(0, 0, 0), (2, 2, 2)]} and report.missing == [20]


# ------------------------------------------------------------------------------------------------ search

def test_search_finds_192_cubes_in_4_classes_quickly():
    stats = {}
    cubes = magic_cubes(stats)
    all_cubes, classes, seconds = found()
    assert len(cubes) == 192 and len({tuple(c.reshape(-1)) for c in cubes}) == 192
    assert seconds < 30, f"search took {seconds:.1f} s"
    assert stats["placements"] < 1_000_000, "pruning keeps the tree small"
    assert all(lc.is_magic(c) for c in cubes)
    assert all(c[1, 1, 1] == 14 for c in cubes)
    assert all((c + c[::-1, ::-1, ::-1] == 28).all() for c in cubes), "pairs through the centre sum to 28"
    assert [len(m) for _, m in classes] == [48, 48, 48, 48]
    for canon, members in classes:
        # each class is the full orbit of its canonical form: 48 distinct images
        orbit = {tuple(img.reshape(-1)) for img in lc.all_images(canon)}
        assert orbit == {tuple(all_cubes[i].reshape(-1)) for i in members}
    assert any((c == lc.NOTES_CUBE).all() for c in cubes)


# ------------------------------------------------------------------------------------------------ drawing

def test_draw_parse_round_trip_for_all_192():
    cubes, _, _ = found()
    for c in cubes:
        drawing = parse_drawing(draw_tex(c))
        assert (drawing.cube == c).all()
        assert (drawing.red == hidden_mask()).all() and not drawing.colour_mistakes()


@settings(max_examples=30)
@given(cube_ids(), st.integers(0, 47), st.booleans())
def test_round_trip_through_snippet_and_page(i, k, mathjax2):
    import html
    cubes, _, _ = found()
    c = lc.apply_symmetry(cubes[i], k)
    assert (parse_drawing(tex_snippet(c, mathjax2)).cube == c).all()
    assert (parse_drawing(html.unescape(draw_html(c, mathjax2=mathjax2))).cube == c).all()


def test_tex_uses_the_html_extension_by_its_mathjax3_name():
    tex = draw_tex(lc.NOTES_CUBE)
    assert tex.startswith(r"\require{html}") and r"\require{HTML}" not in tex
    assert draw_tex(lc.NOTES_CUBE, mathjax2=True).startswith(r"\require{HTML}")
    assert tex.count(r"\color{red}{") - tex.count(r"{\color{red}{\vdots}}") - tex.count(
        r"{\color{red}{\cdots}}") == 8, "eight hidden numbers"
    rows = tex.split("\n")[2:-1]
    assert len(rows) == 15 and rows[0].split(" & ")[4] == "8" and rows[-1].split(" & ")[-1] == "20 \\\\"


def test_page_loads_mathjax3_chtml_from_cdn_or_given_path():
    page = draw_html(lc.NOTES_CUBE, caption="x")
    assert "cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js" in page and "&amp;" in page
    assert 'src="local/mj/tex-chtml.js"' in draw_html(lc.NOTES_CUBE, mathjax_url="local/mj/tex-chtml.js")
    assert "MathJax.js?config=TeX-AMS_CHTML" in draw_html(lc.NOTES_CUBE, mathjax2=True)


def test_parser_reads_the_posts_own_drawing():
    drawing = parse_drawing(POST_TEX.read_text(encoding="utf-8"))
    assert drawing.cube.tolist() == POST_CUBE
    assert not drawing.colour_mistakes(), "the post colours exactly the 8 hidden numbers red"


def test_packaged_post_tex_matches_the_seed_excerpt():
    if not SEED_EXCERPTS.is_file():
        pytest.skip("the seed excerpts are not in this checkout")
    ours = POST_TEX.read_text(encoding="utf-8").split("\n", 2)[2].strip()
    assert ours in SEED_EXCERPTS.read_text(encoding="utf-8")


def _replace_cell(tex, row, col, new):
    lines = tex.split("\n")
    cells = lines[2 + row].split(" & ")
    cells[col] = new
    lines[2 + row] = " & ".join(cells)
    return "\n".join(lines)


@pytest.mark.parametrize("edit, fragment", [
    (lambda t: t.replace(r"\begin{array}", r"\begin{matrix}"), "expected \\begin{array}"),
    (lambda t: t.replace(r"\end{array}", ""), "no \\end{array}"),
    (lambda t: _replace_cell(t, 4, 5, "{11"), "array row 4, column 5"),
    (lambda t: _replace_cell(t, 4, 5, "11a"), "array row 4, column 5"),
    (lambda t: _replace_cell(t, 4, 5, "28"), "array row 4, column 5"),
    (lambda t: _replace_cell(t, 4, 5, "—"), "array row 4, column 5"),
    (lambda t: _replace_cell(t, 4, 6, "3"), "array row 4, column 6"),
    (lambda t: _replace_cell(t, 4, 5, r"\color 11"), "array row 4, column 5"),
])
def test_bad_tex_raises_and_names_the_position(edit, fragment):
    tex = edit(draw_tex(lc.NOTES_CUBE))
    with pytest.raises(ValueError) as err:
        parse_drawing(tex)
    assert fragment in str(err.value)
    assert position(0, 2, 1) == (4, 5)


# ------------------------------------------------------------------------------------------------ CLI

def test_check_reports_the_posts_mistakes(capsys):
    assert main(["check", str(POST_TEX)]) == 1
    out = capsys.readouterr().out.strip().split("\n")
    result = json.loads(out[-1])
    assert result["magic"] is False and result["centre"] == 12
    assert result["duplicates"] == {"8": 2, "22": 2} and result["missing"] == [10, 20]
    assert result["lines_ok"] == 6 and len(result["failing_lines"]) == 25
    assert any(line.startswith("repeated 22:") for line in out)
    assert "missing: 10, 20" in out
    assert "row z=0 y=0                     4 + 25 + 11 =  40  FAIL" in out


def test_demo_quick_writes_files_and_ends_with_json(tmp_path, capsys):
    assert main(["--quick", "--out", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out.strip().split("\n")[-1])
    assert result["cubes_found"] == 192 and result["classes"] == 4 and result["drawn_cube_magic"]
    assert result["centre_14"] and result["opposite_pairs_28"]
    drawn = parse_drawing((tmp_path / "cube.tex").read_text(encoding="utf-8")).cube
    assert (drawn == lc.NOTES_CUBE).all(), "the default is the cube in the notes"
    assert main(["check", str(tmp_path / "cube.html")]) == 0
    capsys.readouterr()

    _, classes, _ = found()
    assert main(["--quick", "--out", str(tmp_path), "--class", "2", "--symmetry", "5", "--mathjax2"]) == 0
    result = json.loads(capsys.readouterr().out.strip().split("\n")[-1])
    assert (result["class"], result["symmetry"]) == (2, 5)
    tex = (tmp_path / "class2-symmetry5.tex").read_text(encoding="utf-8")      # a run of its own name
    assert r"\require{HTML}" in tex and (tmp_path / "class2-symmetry5.html").is_file()
    assert r"\require{HTML}" not in (tmp_path / "cube.tex").read_text(encoding="utf-8")   # the first kept
    assert (parse_drawing(tex).cube == lc.apply_symmetry(classes[2][0], 5)).all()
    capsys.readouterr()
    assert main(["--quick", "--out", str(tmp_path), "--class", "4"]) == 2
    err = capsys.readouterr().err
    assert "argument --class: expected an int in 0..3, got '4'" in err and len(err.splitlines()) == 1
