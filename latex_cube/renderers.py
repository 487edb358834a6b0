"""Check the drawing in real renderers: MathJax 3 under Node, and a page in headless Chromium.

Both are optional tools found at run time (find_node_mathjax, find_chromium return None when absent):
    - Node with the npm package mathjax-full (version 3), looked for in $LATEX_CUBE_MATHJAX_FULL, then in
      latex_cube/.node/node_modules/mathjax-full (where .ci/setup-latex_cube.sh puts it);
    - Debian's chromium (or chromium-browser, google-chrome) on PATH, or $LATEX_CUBE_CHROMIUM.
"""
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from xml.etree import ElementTree

LOCAL_MATHJAX_FULL = Path(__file__).resolve().parent / ".node" / "node_modules" / "mathjax-full"

# Typesets each TeX string read from stdin (a JSON list) with MathJax 3's TeX input as the tex-chtml
# component sets it up, minus 'noundefined', so that an unknown macro is an error node, not red text.
_NODE_TYPESET = r"""
const fs = require('fs');
const items = JSON.parse(fs.readFileSync(0, 'utf8'));
require(process.argv[1] + "/es5/node-main.js").init({
  loader: {load: ['adaptors/liteDOM', 'input/tex', 'output/chtml']},
  tex: {packages: {'[-]': ['noundefined']}},
  startup: {typeset: false}
}).then(async (MathJax) => {
  const adaptor = MathJax.startup.adaptor;
  const out = [];
  for (const tex of items) {
    MathJax.texReset();
    try {
      const mathml = await MathJax.tex2mmlPromise(tex, {display: true});
      const chtml = adaptor.outerHTML(await MathJax.tex2chtmlPromise(tex, {display: true}));
      out.push({mathml, chtml, exception: null});
    } catch (err) {
      out.push({mathml: '', chtml: '', exception: String(err && err.message || err)});
    }
  }
  process.stdout.write(JSON.stringify({version: MathJax.version, results: out}));
}).catch((err) => { console.error(String(err && err.stack || err)); process.exit(1); });
"""

MATHML_NS = "{http://www.w3.org/1998/Math/MathML}"


def find_node_mathjax():
    """(node executable, mathjax-full folder) or None when either is missing."""
    node = shutil.which("node")
    folder = Path(os.environ.get("LATEX_CUBE_MATHJAX_FULL", LOCAL_MATHJAX_FULL))
    if node is None or not (folder / "package.json").is_file():
        return None
    return node, folder


def find_chromium():
    """Path of a Chromium-like browser, or None."""
    if os.environ.get("LATEX_CUBE_CHROMIUM"):
        return os.environ["LATEX_CUBE_CHROMIUM"]
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def mathml_numbers(mathml):
    """Numbers in a MathML tree with their colour: list of (int, colour or None), document order."""
    root = ElementTree.fromstring(mathml)
    found = []

    def walk(el, colour):
        colour = el.get("mathcolor", colour)
        if el.tag == MATHML_NS + "mn" or el.tag == "mn":
            found.append((int(el.text), colour))
        for child in el:
            walk(child, colour)
    walk(root, None)
    return found


def mathml_errors(mathml):
    """Text of every <merror> in a MathML string."""
    root = ElementTree.fromstring(mathml)
    return ["".join(e.itertext()) for e in root.iter() if e.tag in (MATHML_NS + "merror", "merror")]


def typeset_with_node(texs, timeout=60):
    """Typeset TeX strings (display mode) with MathJax 3 under Node, all in one MathJax instance.

    Like equations on one page, the strings share MathJax's loader: after a \\require that fails, a later
    \\require of the same name passes silently, so test failing inputs in calls of their own.
    texs: list of TeX strings
    returns (MathJax version, list of dicts with 'mathml', 'chtml', 'exception', 'errors', 'numbers')
    """
    found = find_node_mathjax()
    if found is None:
        raise FileNotFoundError("node or mathjax-full not found (run .ci/setup-latex_cube.sh)")
    node, folder = found
    proc = subprocess.run([node, "-e", _NODE_TYPESET, str(folder)], input=json.dumps(list(texs)),
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"node failed: {proc.stderr.strip()[-2000:]}")
    data = json.loads(proc.stdout)
    for r in data["results"]:
        r["errors"] = mathml_errors(r["mathml"]) if r["mathml"] else []
        r["numbers"] = mathml_numbers(r["mathml"]) if r["mathml"] else []
    return data["version"], data["results"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(folder):
    """Serve a folder on 127.0.0.1 at a free port in a daemon thread.  Returns (server, base url)."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def chromium_args(profile_dir):
    """Flags for a quiet, offline, throw-away headless run."""
    return ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-default-apps", "--mute-audio",
            "--hide-scrollbars", f"--user-data-dir={profile_dir}"]


def run_chromium(url, extra, timeout=60):
    """Run headless Chromium on a URL with a fresh profile; returns (stdout, stderr)."""
    browser = find_chromium()
    if browser is None:
        raise FileNotFoundError("chromium not found (run .ci/setup-latex_cube.sh)")
    with tempfile.TemporaryDirectory(prefix="latex_cube_chromium_") as profile:
        proc = subprocess.run([browser, *chromium_args(profile), *extra, url],
                              capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited with {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return proc.stdout, proc.stderr


def rendered_numbers(dom):
    """Numbers CHTML drew, read from the dumped DOM: each <mjx-mn> holds one <mjx-c class="mjx-cXX"> per
    character, XX being the hex code point.  Returns list of (int, red?) in document order."""
    numbers = []
    for m in re.finditer(r"<mjx-mn\b[^>]*>(.*?)</mjx-mn>", dom, flags=re.S):
        digits = "".join(chr(int(h, 16)) for h in re.findall(r'class="mjx-c([0-9A-F]+)', m.group(1)))
        start = dom.rfind("<mjx-math", 0, m.start())
        # colour: the nearest enclosing element with a color style, found by looking back to the mjx-math
        red = _inside_red(dom[start:m.start()])
        numbers.append((int(digits), red))
    return numbers


def _inside_red(prefix):
    """True when the innermost open element carrying a colour in prefix is red."""
    stack = []
    for tag in re.finditer(r"<(/?)(mjx-[a-z]+)([^>]*)>", prefix):
        closing, name, attrs = tag.groups()
        if closing:
            while stack and stack.pop()[0] != name:
                pass
        elif not attrs.rstrip().endswith("/"):
            stack.append((name, "color: red" in attrs))
    return any(red for _, red in stack)


def render_page(page_html, mathjax_es5, workdir, screenshot=None, size=(900, 820), budget_ms=15000):
    """Open a page in headless Chromium with MathJax served from a local copy; return the final DOM.

    page_html: the page text; it must load MathJax from "mathjax/tex-chtml.js" (relative)
    mathjax_es5: folder holding MathJax's es5 build (mathjax-full/es5)
    workdir: folder to write the page into (served over http on 127.0.0.1)
    screenshot: optional path of a PNG to save
    """
    workdir = Path(workdir)
    (workdir / "cube.html").write_text(page_html, encoding="utf-8")
    link = workdir / "mathjax"
    if not link.exists():
        link.symlink_to(Path(mathjax_es5).resolve(), target_is_directory=True)
    server, base = serve(workdir)
    try:
        # one launch: --virtual-time-budget lets MathJax finish before the DOM is dumped and the shot taken
        flags = ["--dump-dom", f"--virtual-time-budget={budget_ms}", "--run-all-compositor-stages-before-draw"]
        if screenshot is not None:
            flags += [f"--screenshot={screenshot}", f"--window-size={size[0]},{size[1]}"]
        dom, _ = run_chromium(base + "cube.html", flags)
    finally:
        server.shutdown()
        server.server_close()
    return dom
