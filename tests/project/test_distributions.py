"""Two distributions: the runbook (runbook_lib and runbook_policy) and its sandbox (sandbox/). Installing
the runbook alone does not pull moto; `runbook sandbox ...` then says how to install the sandbox.

Read from the installed distributions' metadata (as pip wrote it from each pyproject.toml, which make
reinstalls when it changes): what pip would pull, requirement by requirement."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def requirements(distribution: str) -> list[Requirement]:
    """What installing the distribution (without extras) requires."""
    found = [Requirement(text) for text in metadata.requires(distribution) or []]
    return [r for r in found if r.marker is None or r.marker.evaluate({"extra": ""})]


def pulled(roots: list[Requirement]) -> set[str]:
    """Every distribution that installing these requirements pulls, as installed here (markers of this
    Python, no extras but those asked for)."""
    seen: set[str] = set()
    todo = [(r, frozenset(r.extras)) for r in roots]
    while todo:
        requirement, extras = todo.pop()
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if name in seen:
            continue
        seen.add(name)
        for text in metadata.requires(requirement.name) or []:
            needed = Requirement(text)
            environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if needed.marker is None or any(needed.marker.evaluate(e) for e in environments):
                todo.append((needed, frozenset(needed.extras)))
    return seen


def test_installing_the_runbook_does_not_pull_moto():
    runbook = pulled(requirements("runbook-lib"))
    assert "moto" not in runbook
    assert {"boto3", "papermill", "jupyterlab", "ipywidgets", "pandas"} <= runbook


def test_the_sandbox_pulls_moto_and_the_runbook():
    names = {r.name for r in requirements("runbook-sandbox")}
    assert names == {"runbook-lib", "moto"}
    assert "moto" in pulled(requirements("runbook-sandbox"))


def test_the_runbook_ships_the_policy_evaluator_and_not_the_sandbox():
    assert metadata.distribution("runbook-lib").read_text("top_level.txt").split() == ["runbook_lib", "runbook_policy"]
    assert metadata.distribution("runbook-sandbox").read_text("top_level.txt").split() == ["runbook_sandbox"]


def test_without_the_sandbox_runbook_sandbox_says_how_to_install_it():
    """As where only the runbook is installed: runbook_sandbox is not found."""
    code = (
        "import sys\n"
        "class NotInstalled:\n"
        "    def find_spec(name, path=None, target=None):\n"
        "        if name == 'runbook_sandbox':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NotInstalled)\n"
        "from runbook_lib.app import cli\n"
        "sys.exit(cli.main(['sandbox', 'start', '--dir', 'x']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "runbook: the sandbox is not installed; from the repository's root: pip install ./sandbox "
        "(make demo, make lab and make test install it)"
    )
    assert done.stdout == ""
    listed = subprocess.run(
        [sys.executable, "-c", code.replace("'sandbox', 'start', '--dir', 'x'", "'--help'")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert re.search(r"sandbox +the local AWS sandbox \(not installed\)", listed.stdout)
    helped = subprocess.run(
        [sys.executable, "-c", code.replace("'start', '--dir', 'x'", "'--help'")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert "The sandbox is not installed; from the repository's root: pip install ./sandbox" in " ".join(
        helped.stdout.split()
    )
