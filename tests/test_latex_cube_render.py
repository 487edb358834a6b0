"""latex_cube in real renderers: MathJax 3 under Node, and the page in headless Chromium.

Both need tools that .ci/setup-latex_cube.sh installs (node + the npm package mathjax-full, Debian's
chromium); without them these tests skip and say what is missing.  The screenshot is kept under
artifacts/latex_cube/ (git-ignored) or $LATEX_CUBE_ARTIFACTS, and its path is printed.
"""
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from latex_cube import cube as lc
from latex_cube import renderers
from latex_cube.draw import draw_html, draw_tex, hidden_mask, layout
from latex_cube.search import classes_of, magic_cubes

NODE_MATHJAX = renderers.find_node_mathjax()
CHROMIUM = renderers.find_chromium()
needs_node = pytest.mark.skipif(NODE_MATHJAX is None, reason="node or npm mathjax-full not installed "
                                "(.ci/setup-latex_cube.sh installs them into latex_cube/.node)")
needs_chromium = pytest.mark.skipif(CHROMIUM is None or NODE_MATHJAX is None,
                                    reason="chromium or npm mathjax-full not installed "
                                    "(.ci/setup-latex_cube.sh installs both)")
POST_TEX = Path(lc.__file__).with_name("post_6534.txt")
ARTIFACTS = Path(os.environ.get("LATEX_CUBE_ARTIFACTS", Path(__file__).resolve().parents[1] / "artifacts"
                                / "latex_cube"))


def drawn_order(cube):
    """The cube's numbers in the order the array shows them (row by row), and which are red."""
    grid = layout(cube)
    hidden = hidden_mask()
    order = []
    for z, y, x in sorted(np.ndindex(3, 3, 3), key=lambda p: (5 * p[0] + 2 * p[1], 5 * p[2] - 2 * p[1])):
        order.append((int(cube[z, y, x]), bool(hidden[z, y, x])))
    assert all(str(v) in "".join(map("".join, grid)) for v, _ in order)
    return order


def one_per_class():
    classes = classes_of(magic_cubes())
    return [lc.apply_symmetry(canon, 7 * k) for k, (canon, _) in enumerate(classes)]


@needs_node
def test_tex_typesets_in_mathjax3_under_node_without_errors():
    cubes = [lc.NOTES_CUBE] + one_per_class()
    post = POST_TEX.read_text(encoding="utf-8").split("$$")[1]
    version, results = renderers.typeset_with_node(
        [draw_tex(c) for c in cubes] + [post.replace(r"\require{HTML}", r"\require{html}"),
                                        r"\begin{array}{c} 1 & \nosuchmacro \end{array}"])
    assert version.startswith("3."), version
    for c, r in zip(cubes, results):
        assert r["exception"] is None and r["errors"] == [], (r["exception"], r["errors"])
        assert "<mjx-merror" not in r["chtml"] and "data-mjx-error" not in r["chtml"]
        numbers = [(v, colour == "red") for v, colour in r["numbers"]]
        assert numbers == drawn_order(c), "all 27 numbers, in place, red exactly where hidden"
        assert sorted(v for v, _ in numbers) == list(range(1, 28))
        assert "rotate(45deg)" in r["chtml"], "the receding edges keep their CSS"
    post_fixed, undefined = results[len(cubes):]
    assert post_fixed["exception"] is None and post_fixed["errors"] == []
    assert sorted(v for v, _ in post_fixed["numbers"]) != list(range(1, 28)), "the post repeats 22 and 8"
    # the check can fail: an unknown macro is an error node
    assert any("nosuchmacro" in e for e in undefined["errors"]), undefined


@needs_node
@pytest.mark.parametrize("which", ["our drawing with the mathjax2 flag", "the post as written"])
def test_mathjax2_extension_name_fails_in_mathjax3(which):
    # one Node process each: after a failed \require MathJax's loader lets later ones pass silently
    post = POST_TEX.read_text(encoding="utf-8").split("$$")[1]
    tex = draw_tex(lc.NOTES_CUBE, mathjax2=True) if which.startswith("our") else post
    assert r"\require{HTML}" in tex
    _, (result,) = renderers.typeset_with_node([tex])
    assert result["exception"] is not None and "extensions/HTML.js" in result["exception"]


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", head[16:24])


@needs_chromium
def test_page_typesets_in_headless_chromium(tmp_path):
    page = draw_html(lc.NOTES_CUBE, caption="render test", mathjax_url="mathjax/tex-chtml.js")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "cube.png"
    if shot.exists():
        shot.unlink()
    dom = renderers.render_page(page, renderers.find_node_mathjax()[1] / "es5", tmp_path, screenshot=shot,
                                size=(900, 800))
    print(f"\nscreenshot of the rendered cube: {shot}")
    assert 'data-mathjax="typeset"' in dom[:2000], "MathJax did not finish typesetting"
    assert "<mjx-container" in dom and 'jax="CHTML"' in dom
    assert "<mjx-merror" not in dom and "data-mjx-error" not in dom
    assert dom.count("<mjx-mn") == 27
    assert renderers.rendered_numbers(dom) == drawn_order(lc.NOTES_CUBE)
    assert png_size(shot) == (900, 800) and shot.stat().st_size > 20_000
    mpl_image = pytest.importorskip("matplotlib.image", reason="matplotlib reads the screenshot's pixels")
    rgb = mpl_image.imread(shot)[..., :3]
    red = (rgb[..., 0] > 0.7) & (rgb[..., 1] < 0.35) & (rgb[..., 2] < 0.35)
    dark = rgb.max(axis=-1) < 0.3
    assert red.sum() > 300, "hidden numbers drawn in red"
    assert dark.sum() > 3000, "visible numbers and edges drawn in black"
