"""medlib's modules form layers: no import cycle (counting imports inside functions), and the modules that show
results (figures, tables, prose) never reach the ones that compute them."""

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "medlib"
SHOWING = {"plots", "tables", "prose"}
COMPUTING = {"adapt", "pretrain", "experiment", "store", "jobs", "plan", "study", "decision", "domain",
             "corruptions", "explain", "speed", "runner", "cli", "archive", "step"}


def imports() -> dict[str, set[str]]:
    """``{module: the medlib modules it imports}``, top-level names (``methods.base`` counts as ``methods``)."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = parts[0] if parts[0] != "__init__" else "__init__"
        inside = len(parts) > 1  # a module of a subpackage (medlib.methods.*): `from ..x` reaches medlib.x
        found = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                top = node.level == 1 + inside
                if top and node.module:
                    found.add(node.module.split(".")[0])
                elif top:
                    found.update(alias.name for alias in node.names)
        found.discard(name)
    return graph


def test_modules_import_each_other_without_a_cycle():
    graph = imports()
    assert {"plots", "experiment", "methods", "cli"} <= set(graph) and graph["experiment"] >= {"pretrain", "adapt"}
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as e:
        raise AssertionError(f"import cycle: {' -> '.join(e.args[1])}") from None


def test_figures_tables_and_prose_never_reach_the_modules_that_compute():
    graph = imports()
    reached = {}
    for module in SHOWING:
        seen, todo = set(), [module]
        while todo:
            for dep in graph.get(todo.pop(), ()):
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        reached[module] = sorted(seen & COMPUTING)
    assert reached == {module: [] for module in SHOWING}
