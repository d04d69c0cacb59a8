"""The package's imports go one way, with no cycles (parsed with ``ast``, nothing imported).

Layers, lowest first: world -> sim -> gt -> data -> models -> train -> eval -> viz.  A layer imports
only the layers before it.  ``vlwm/io/`` and the top-level shared modules (``labels.py`` ...) stand
beside the layers: every layer may import them, and they import no layer.  The orchestrators
(``cli.py``, ``demo.py``, ``benchmark/``, and every ``cli.py`` / ``*_cli.py`` module) may import anything below them;
no layer imports an orchestrator.  Inside ``vlwm/sim/`` the core data path never imports the optional
integrations (``sim/mavlink/``, ``sim/gazebo/``).  Every import counts, including those inside
functions: a lazy import hides a cycle, it does not break it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vlwm"
LAYERS = ("world", "sim", "gt", "data", "models", "train", "eval", "viz")
ORCHESTRATORS = ("cli", "demo", "benchmark")
OPTIONAL_SIM = ("vlwm.sim.mavlink", "vlwm.sim.gazebo")


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return mods


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every ``vlwm`` module that ``name`` imports (resolving relative and ``from pkg import mod``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            targets = [target] + [f"{target}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:           # `import vlwm.a.b.c` names the module vlwm.a.b.c
                t = t.rpartition(".")[0]
            if t.startswith("vlwm") and t != name:
                found.add(t)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _role(module: str) -> tuple[str, int]:
    """('layer', rank) | ('orchestrator', 99) | ('shared', -1) for io and top-level shared modules."""
    parts = module.split(".")
    if len(parts) == 1:
        return "package", 100
    top = parts[1]
    if top in ORCHESTRATORS or parts[-1] == "cli" or parts[-1].endswith("_cli"):
        return "orchestrator", 99
    if top in LAYERS:
        return "layer", LAYERS.index(top)
    return "shared", -1


def test_the_graph_is_read():
    assert len(MODULES) > 100 and sum(len(v) for v in GRAPH.values()) > 200


def test_layers_import_only_earlier_layers_and_shared_modules():
    bad = []
    for mod, deps in GRAPH.items():
        kind, rank = _role(mod)
        for dep in deps:
            dkind, drank = _role(dep)
            if dkind == "package":
                continue
            if kind == "shared" and dkind != "shared":
                bad.append(f"{mod} (shared) imports {dep}")
            elif kind == "layer" and (dkind == "orchestrator" or (dkind == "layer" and drank > rank)):
                bad.append(f"{mod} imports {dep}, a later layer or an orchestrator")
    assert not bad, "imports against the layering:\n" + "\n".join(sorted(bad))


def test_sim_core_does_not_import_optional_integrations():
    bad = [f"{m} imports {d}" for m, deps in GRAPH.items() for d in deps
           if m.startswith("vlwm.sim.") and not m.startswith(OPTIONAL_SIM) and m != "vlwm.sim.cli"
           and d.startswith(OPTIONAL_SIM)]
    assert not bad, "\n".join(sorted(bad))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]; counter[0] += 1
        stack.append(root); on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in graph:
                    continue
                if w not in index:
                    index[w] = low[w] = counter[0]; counter[0] += 1
                    stack.append(w); on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop(); on_stack.discard(w); comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_no_import_cycles():
    # package __init__ files re-export their modules; an edge into a package is an edge into its
    # __init__, which is a cycle only if the __init__ imports back.
    cycles = _cycles(GRAPH)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_cycle_finder(graph, expected):
    assert _cycles(graph) == expected
