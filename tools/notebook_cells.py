"""Write each step notebook's title and parameters cell from the step's record (runbook_lib/core/steps.py).

A notebook is given only the parameters its cell declares, so a cell that forgets one silently runs with
the default. The record lists the step's parameters; this writes them into the cell, each with its
default from params.py's schema, and the record's title into the first line of the first markdown cell.
No other cell, nor any other line of the title's cell, is touched, and the file keeps nbformat's layout.

    python -m tools.notebook_cells           # rewrite the notebooks that differ
    python -m tools.notebook_cells --check   # only say what differs (exit 1 when anything does)

tests/project/test_step_records.py fails while a notebook differs from what this would write.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runbook_lib.core import params, steps
from runbook_lib.core.steps import Step

PARAMETERS_TAG = "parameters"


def parameters_source(step: Step) -> str:
    """The parameters cell of the step: one `name = default` line per parameter of its record."""
    return "\n".join(f"{name} = {params.DEFAULTS[name]!r}" for name in step.parameters)


def _lines(text: str) -> list[str]:
    """A cell's source as nbformat stores it: its lines, each with its line end."""
    return text.splitlines(keepends=True)


def _parameters_cell(notebook: dict[str, Any]) -> dict[str, Any]:
    found = [cell for cell in notebook["cells"] if PARAMETERS_TAG in cell.get("metadata", {}).get("tags", [])]
    if len(found) != 1:
        raise ValueError(f"{len(found)} cells tagged {PARAMETERS_TAG!r}; a step notebook has one")
    return found[0]


def _title_cell(notebook: dict[str, Any]) -> dict[str, Any]:
    return next(cell for cell in notebook["cells"] if cell["cell_type"] == "markdown")


def written(step: Step, notebook: dict[str, Any]) -> dict[str, Any]:
    """The notebook with its title and parameters cell as the record has them; everything else as it was."""
    result = json.loads(json.dumps(notebook))
    _parameters_cell(result)["source"] = _lines(parameters_source(step))
    title = _title_cell(result)
    rest = "".join(title["source"]).partition("\n")[2]
    title["source"] = _lines(f"{step.heading}\n{rest}" if rest else step.heading)
    return result


def differences(step: Step, notebook: dict[str, Any]) -> list[str]:
    """What the notebook's title and parameters cell say otherwise than the record, one line each."""
    found = []
    title = "".join(_title_cell(notebook)["source"]).partition("\n")[0]
    if title != step.heading:
        found.append(f"title {title!r}, the record's is {step.heading!r}")
    have = "".join(_parameters_cell(notebook)["source"]).splitlines()
    want = parameters_source(step).splitlines()
    names = [line.split(" = ", 1)[0] for line in have]
    missing = [name for name in step.parameters if name not in names]
    extra = [name for name in names if name not in step.parameters]
    if missing:
        found.append(f"parameters cell lacks {', '.join(missing)}")
    if extra:
        found.append(f"parameters cell declares {', '.join(extra)}, which the record does not list")
    if not missing and not extra and have != want:
        changed = [f"{line!r} (written: {expected!r})" for line, expected in zip(have, want) if line != expected]
        found.append(f"parameters cell has {'; '.join(changed) or 'another order'}")
    return found


def read(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def text(notebook: dict[str, Any]) -> str:
    """The notebook as nbformat writes it (sorted keys, one-space indent, UTF-8, a final line end)."""
    return json.dumps(notebook, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.notebook_cells", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only say what differs; exit 1 when anything does")
    args = parser.parse_args(argv)
    differing = 0
    for step in steps.STEPS:
        notebook = read(step.notebook)
        found = differences(step, notebook)
        if not found:
            continue
        differing += 1
        print(f"{step.notebook.name}: {'; '.join(found)}")
        if not args.check:
            step.notebook.write_text(text(written(step, notebook)))
    return 1 if args.check and differing else 0


if __name__ == "__main__":
    sys.exit(main())
