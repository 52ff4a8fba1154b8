"""The example diffs kept in tests/fixtures/: each shows that adding a concept is one record plus its code.
A test applies one to a copy of the working files and checks what the new record does."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


def touched(diff: Path) -> list[str]:
    """The files the diff changes, sorted."""
    return sorted({line[len("+++ b/") :] for line in diff.read_text().splitlines() if line.startswith("+++ ")})


def applied(diff: Path, folder: Path, names: tuple[str, ...]) -> None:
    """Copy these top-level folders of the working tree into folder, and apply the diff there."""
    for name in names:
        shutil.copytree(ROOT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    done = subprocess.run(["git", "apply", str(diff)], cwd=folder, capture_output=True, text=True)
    assert done.returncode == 0, f"{diff.name} no longer applies: {done.stderr}"
