"""One numbering of the steps, 00 to 09, wherever a person reads one: notebooks, library, docs, README."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# "step 2", "Step 1c", "steps 1, 3": a step numbered other than by its two digits.
OTHER_NUMBERING = re.compile(r"\b[Ss]teps? (?!0\d\b)\d{1,2}[a-c]?\b")
READ = [
    *sorted((ROOT / "notebooks").glob("*.ipynb")),
    *sorted((ROOT / "runbook_lib").rglob("*.py")),
    *sorted((ROOT / "docs").rglob("*.md")),
    *sorted((ROOT / "sandbox" / "docs").rglob("*.md")),
    *sorted((ROOT / "sandbox" / "runbook_sandbox").rglob("*.py")),
    *sorted((ROOT / "sandbox" / "benchmarks").glob("*.py")),
    *sorted((ROOT / "tools").glob("*.py")),
    *sorted((ROOT / "benchmarks").glob("*.py")),
    *sorted((ROOT / "parameters").rglob("*.yaml")),
    ROOT / "README.md",
    ROOT / "Makefile",
]
# A notebook's title: "# Step 05: prove the copy is encrypted with the destination key".
TITLE = re.compile(r"# Step (\d\d): \S")


def test_every_step_is_numbered_00_to_09():
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}"
        for path in READ
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if OTHER_NUMBERING.search(line)
    ]
    assert found == []


def test_the_check_finds_the_old_numbering():
    assert OTHER_NUMBERING.search("# Step 1c: which key encrypts the backup?")
    assert OTHER_NUMBERING.search("That is why step 2 shares the volume's key")
    assert not OTHER_NUMBERING.search("step 03 shares the key; steps 02 and 05 verify")


def test_every_notebooks_title_names_its_step_by_its_number():
    titles = {}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        titles[path.name] = "".join(next(c for c in cells if c["cell_type"] == "markdown")["source"]).split("\n")[0]
    assert {name: title for name, title in titles.items() if TITLE.match(title) is None} == {}
    assert {name: title for name, title in titles.items() if TITLE.match(title).group(1) != name[:2]} == {}
