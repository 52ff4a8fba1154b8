"""The folders show the layers: every import points downwards, and no module graph has a cycle.

Three packages: runbook_policy (the IAM policy evaluator, at the bottom), runbook_lib (the runbook, in
layers, its app on top) and runbook_sandbox (sandbox/, its own distribution, which may use the runbook's
vocabulary in runbook_lib.core and the evaluator, nothing else). Imports are read with `ast` from every
module, those inside functions and under TYPE_CHECKING included, so a lazy import cannot hide a cycle or
an upward reference.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"runbook_policy": ROOT, "runbook_lib": ROOT, "runbook_sandbox": ROOT / "sandbox"}
# Lowest first. A module may import its own layer and the layers below it.
LAYERS = ("policy", "core", "aws", "troubleshooting", "steps", "display", "app")
SANDBOX = "sandbox"


def module_name(path: Path) -> str:
    parts = path.with_suffix("").parts
    parts = parts[next(i for i, part in enumerate(parts) if part in PACKAGES) :]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source(module: str) -> Path:
    """Where a module's file (or package folder, without its suffix) would be."""
    return PACKAGES[module.split(".")[0]] / module.replace(".", "/")


def imports_of(path: Path) -> set[str]:
    """The runbook_lib modules this file imports, resolved to module names (a package's name when it
    imports the package itself)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] in PACKAGES)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] in PACKAGES:
                target = node.module
            else:
                continue
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(
                    candidate if source(candidate).with_suffix(".py").exists() or source(candidate).is_dir() else target
                )
    found.discard(name)
    return found


GRAPH = {
    module_name(path): imports_of(path)
    for package, parent in PACKAGES.items()
    for path in sorted((parent / package).rglob("*.py"))
}


def layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "runbook_policy":
        return "policy"
    if parts[0] == "runbook_sandbox":
        return SANDBOX
    return parts[1] if len(parts) > 1 else "core"


def test_every_module_sits_in_a_layer():
    """No module of the runbook sits loose beside the layer folders: the app has its own."""
    loose = {m for m in GRAPH if m.startswith("runbook_lib.") and layer(m) not in LAYERS}
    assert not loose
    assert {m for m in GRAPH if layer(m) == "app"} >= {
        "runbook_lib.app.cli",
        "runbook_lib.app.runner",
        "runbook_lib.app.kernels",
        "runbook_lib.app.kernel_forks",
        "runbook_lib.app.report",
    }


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if layer(m) != SANDBOX))
def test_imports_point_downwards(module):
    own = LAYERS.index(layer(module))
    upward = sorted(i for i in GRAPH[module] if layer(i) != SANDBOX and LAYERS.index(layer(i)) > own)
    assert not upward, f"{module} ({layer(module)}) imports from a higher layer: {upward}"
    if layer(module) != "app":
        assert not [i for i in GRAPH[module] if layer(i) == SANDBOX], f"{module} imports the sandbox"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if layer(m) == SANDBOX))
def test_the_sandbox_imports_nothing_of_the_runbook_but_its_vocabulary(module):
    """The sandbox plays AWS: it may share the policy evaluator and the runbook's vocabulary (core), never
    the runbook's knowledge of failures, checks or steps."""
    foreign = sorted(i for i in GRAPH[module] if layer(i) not in (SANDBOX, "core", "policy"))
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


def test_the_runbook_imports_nothing_of_the_sandbox():
    """The runbook talks to the sandbox as to AWS, through profiles; `runbook sandbox ...` is the sandbox's
    own command line, which cli.py adds by name when the sandbox is installed (the repository's tools,
    outside both, may read its tables)."""
    reaching = sorted(m for m in GRAPH if layer(m) != SANDBOX and any(layer(i) == SANDBOX for i in GRAPH[m]))
    assert reaching == []
