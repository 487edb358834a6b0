"""The shape of the code: minibert's imports form no cycle, and the plain layer holds no tuned code."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAIN_FILES = ["minibert/layers.py", "minibert/attention.py", "minibert/optim.py", "minibert/loss.py",
               "smoothing/core.py"]
TUNED_WORDS = ["ThreadPoolExecutor", "concurrent.futures", "thread_pool", "run_pieces", "row_pieces",
               "cpu_count", "os.environ", "OPENBLAS", "threading", "matmul_tall", "_BLOCK", "copy=False"]


def module_files(package):
    """{module name: path} of every .py file under package/ (a package's __init__ named by the package)."""
    out = {}
    for root, _, files in os.walk(os.path.join(ROOT, package)):
        for fn in files:
            if fn.endswith(".py"):
                path = os.path.join(root, fn)
                name = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                out[name[:-len(".__init__")] if name.endswith(".__init__") else name] = path
    return out


def imported_modules(name, path, known):
    """The modules of `known` that the file imports anywhere (top level or inside functions)."""
    package = name if path.endswith("__init__.py") else name.rsplit(".", 1)[0]
    found = set()
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:                                # relative: from .x / from ..x
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for a in node.names:
                found.add(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base)
    return {m for m in found if m in known and m != name}


def import_graph(package):
    """{module: modules it imports}; an import of a package's own __init__ from inside it is left out
    (the __init__ only re-exports what its modules define)."""
    known = module_files(package)
    graph = {m: imported_modules(m, p, known) for m, p in known.items()}
    return {m: {t for t in ts if not (known[t].endswith("__init__.py") and m.startswith(t + "."))}
            for m, ts in graph.items()}


def find_cycle(graph):
    """One import cycle as a list of modules (first == last), or None."""
    state = {}

    def visit(u, path):
        state[u] = "open"
        for v in sorted(graph[u]):
            if state.get(v) == "open":
                return path[path.index(v):] + [v]
            if v not in state:
                cycle = visit(v, path + [v])
                if cycle:
                    return cycle
        state[u] = "done"
        return None

    for m in sorted(graph):
        if m not in state:
            cycle = visit(m, [m])
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph("minibert")
    assert "minibert.params" in graph["minibert.model"], "model imports its parameter table"
    assert "minibert.ops" in graph["minibert.fast"]


def test_minibert_has_no_import_cycle():
    cycle = find_cycle(import_graph("minibert"))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("path", PLAIN_FILES)
def test_the_plain_layer_holds_no_tuned_code(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        source = f.read()
    assert not [w for w in TUNED_WORDS if w in source], f"{path} mentions tuned code"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [getattr(node, "module", None) or ""] + [a.name for a in node.names]
            assert not any(k in n for n in names for k in ("fast", "thread", "parallel")), \
                f"{path}:{node.lineno} imports tuned code"
        if isinstance(node, ast.FunctionDef):
            lines = node.end_lineno - node.lineno + 1
            assert lines <= 60, f"{path}: {node.name} is {lines} lines"
