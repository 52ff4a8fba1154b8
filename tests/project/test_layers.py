"""The folders show the layers: every import points downwards, and no module graph has a cycle.

Imports are read with `ast` from every module of runbook_lib, those inside functions and under
TYPE_CHECKING included, so a lazy import cannot hide a cycle or an upward reference.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "runbook_lib"
# Lowest first. A module may import its own layer and the layers below it.
LAYERS = ("core", "aws", "troubleshooting", "steps", "display", "app")
SANDBOX = "sandbox"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The runbook_lib modules this file imports, resolved to module names (a package's name when it
    imports the package itself)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("runbook_lib"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("runbook_lib"):
                target = node.module
            else:
                continue
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(
                    candidate
                    if (PACKAGE.parent / (candidate.replace(".", "/") + ".py")).exists()
                    or (PACKAGE.parent / candidate.replace(".", "/")).is_dir()
                    else target
                )
    found.discard(name)
    return found


GRAPH = {module_name(path): imports_of(path) for path in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in (*LAYERS, SANDBOX):
        return parts[1]
    return "app"


def test_every_module_sits_in_a_layer():
    top_level = {m for m in GRAPH if m.count(".") == 1 and layer(m) == "app"}
    app = {
        "runbook_lib.cli",
        "runbook_lib.runner",
        "runbook_lib.kernels",
        "runbook_lib.kernel_forks",
        "runbook_lib.report",
    }
    assert top_level == app


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if layer(m) != SANDBOX))
def test_imports_point_downwards(module):
    own = LAYERS.index(layer(module))
    upward = sorted(i for i in GRAPH[module] if layer(i) != SANDBOX and LAYERS.index(layer(i)) > own)
    assert not upward, f"{module} ({layer(module)}) imports from a higher layer: {upward}"
    if layer(module) != "app":
        assert not [i for i in GRAPH[module] if layer(i) == SANDBOX], f"{module} imports the sandbox"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if layer(m) == SANDBOX))
def test_the_sandbox_imports_nothing_of_the_runbook_but_its_vocabulary(module):
    """The sandbox plays AWS: it may share the policy evaluator (core), never the runbook's knowledge
    of failures, checks or steps."""
    foreign = sorted(i for i in GRAPH[module] if layer(i) not in (SANDBOX, "core"))
    assert not foreign, f"{module} imports {foreign}"


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle (as a path that starts and ends at the same module), or []."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target) :] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return []


def test_no_import_cycle_anywhere():
    assert find_cycle(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_only_the_command_line_reaches_the_sandbox():
    """The library talks to the sandbox as to AWS, through profiles; only `runbook sandbox ...` starts and
    drives it (the repository's tools, outside the library, may read its tables)."""
    reaching = sorted(m for m in GRAPH if layer(m) != SANDBOX and any(layer(i) == SANDBOX for i in GRAPH[m]))
    assert reaching == ["runbook_lib.cli"]
