"""What each step produced, and what it only planned, kept in the run folder so that later steps
(and reruns) find it.

state.json holds, per step, the ARNs and IDs it produced (and the jobs that failed, with their
reason), and under `planned` the changes shown but not made. A dry run's later steps plan against
what those changes will produce; a change that is made, or found already in place, leaves `planned`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
from pathlib import Path
from typing import Any

from . import changes
from .changes import Change, ChangeLog, NotMade
from .errors import StepFailed

# A notebook run without run_dir keeps its state in the repository's runs/ (not next to the notebooks,
# where JupyterLab's file browser would show it), wherever the kernel's working directory is.
# Outside a checkout of the repository (a plain pip install), runs/adhoc of the working directory.
REPOSITORY = Path(__file__).resolve().parents[2]
DEFAULT_RUN_DIR = (REPOSITORY if (REPOSITORY / "notebooks").is_dir() else Path()) / "runs" / "adhoc"
PLANNED = "planned"
# The command that resumes the run a step belongs to, when `runbook run` runs it (its parameter files and
# run folder): a step that stops while its job goes on names it whole.
RESUME_ENV = "RUNBOOK_RESUME"

log = logging.getLogger(__name__)


RUN_FOLDER_FILES = ("state.json", "changes.jsonl")  # what makes a folder a run folder


def make_private_folder(folder: Path) -> None:
    """Make a new folder its owner's only (0700), whatever the umask; FileExistsError when it exists."""
    folder.mkdir(mode=0o700, parents=True)
    folder.chmod(0o700)


def private_folder(folder: Path) -> None:
    """Make a run folder, its owner's only (0700): it names the accounts, keys and vaults of a run, and its
    notebooks show their policies. A run folder of the user's made before (an older runbook made them 0755),
    or an empty one made for the run (`mkdir` then `--out`), is tightened; any other existing folder keeps its
    mode."""
    if not folder.exists():
        make_private_folder(folder)
        return
    is_run_folder = any((folder / name).exists() for name in RUN_FOLDER_FILES) or not any(folder.iterdir())
    if is_run_folder and folder.stat().st_uid == os.getuid():
        folder.chmod(0o700)


class RunState:
    """state.json (what each step produced or planned) and changes.jsonl, in one run folder."""

    RUN = "run"  # where state.json keeps the run folder's ID

    def __init__(self, run_dir: str | Path = ""):
        self.directory = Path(run_dir) if run_dir else DEFAULT_RUN_DIR
        self.path = self.directory / "state.json"
        self.changes = ChangeLog(self.directory / "changes.jsonl")

    def load(self) -> dict[str, Any]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def run_id(self) -> str:
        """This run folder's ID, made once: its name's letters and digits (at most 24) and six random hex
        digits. It names what the run adds to what others share (its statements' Sids, its tags), so that
        another run's cleanup, and a person, can tell whose they are; letters and digits only, as every
        policy language takes them in a Sid."""
        state = self.load()
        made = state.get(self.RUN, {}).get("id")
        if made:
            return str(made)
        name = re.sub(r"[^A-Za-z0-9]", "", self.directory.resolve().name)[:24] or "run"
        made = f"{name}{secrets.token_hex(3)}"
        state[self.RUN] = {"id": made, "folder": str(self.directory.resolve())}
        self._write(state)
        return made

    def get(self, step: str, key: str, default: Any = None) -> Any:
        return self.load().get(step, {}).get(key, default)

    def record(self, step: str, **values: Any) -> None:
        state = self.load()
        state.setdefault(step, {}).update(values)
        self._write(state)

    def append(self, step: str, key: str, item: Any) -> list[Any]:
        """Add one item to a list the step keeps (failed jobs and their reasons)."""
        state = self.load()
        items = [*state.setdefault(step, {}).get(key, []), item]
        state[step][key] = items
        self._write(state)
        return items

    def save(self, state: dict[str, Any]) -> None:
        """Write a whole state read with `load` and changed (many values in one write)."""
        self._write(state)

    def _write(self, state: dict[str, Any]) -> None:
        """Whole or not at all: a run stopped mid-write (Ctrl-C, a timeout) leaves the previous state."""
        if not self.path.exists():
            private_folder(self.directory)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(state, indent=2, sort_keys=True, default=str))
        os.replace(temporary, self.path)

    # ----- planned, not made -------------------------------------------------------------------
    def plan(self, change: Change) -> None:
        """Keep a change that was shown but not made (planning it again replaces it, in its place)."""
        state = self.load()
        entries = state.setdefault(PLANNED, [])
        entry = {
            "key": change.key,
            **change.as_plan(),
            "time": changes.now(),
        }
        at = next((i for i, e in enumerate(entries) if e["key"] == change.key), None)
        if at is None:
            entries.append(entry)
        else:
            entries[at] = entry
        self._write(state)

    def unplan(self, change: Change) -> None:
        state = self.load()
        entries = state.get(PLANNED, [])
        kept = [e for e in entries if e["key"] != change.key]
        if len(kept) != len(entries):
            state[PLANNED] = kept
            self._write(state)

    def planned(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Changes planned but not made, in the order they were planned; only effects of `kind` if given."""
        entries = self.load().get(PLANNED, [])
        return [e for e in entries if kind is None or e.get("effect", {}).get("kind") == kind]

    def planned_effect(self, kind: str, **match: Any) -> dict[str, Any] | None:
        """The effect (and planning step) of the newest planned change of this kind that matches."""
        for entry in reversed(self.planned(kind)):
            effect = entry.get("effect", {})
            if all(effect.get(name) == value for name, value in match.items()):
                return {**effect, "step": entry["step"]}
        return None


def carry_out(change: Change, apply: bool, state: RunState, recheck: bool = False, confirmed: bool = False) -> Change:
    """Apply a needed change when `apply` is true and record it; otherwise keep it as planned. Log either.

    `recheck` (an Apply button pressed after a dry run planned the change) reads again, first, whether
    what the change depends on is there now. A change that asks for a confirmation (others may use what it
    takes back) is made only when `confirmed` (take_back_shared, `runbook run --yes`) or by its Apply
    button; otherwise it stays planned, saying so.
    """
    if not change.needed:
        state.unplan(change)
        log.info("%s", change.describe())
        return change
    if apply and (change.blocked_by or recheck):
        blocker = change.precheck() if recheck and change.precheck else change.blocked_by
        if blocker:
            raise StepFailed(
                change.step,
                f"{change.action} on {change.target} cannot be made yet: {blocker}",
                "make that first, then apply this change",
            )
    if not apply:
        state.plan(change)
        log.info("%s\n  apply is false: not changed", change.describe())
        return change
    if change.confirm and not (confirmed or recheck):
        state.plan(change)
        log.info(
            "%s\n  not changed: it waits for a confirmation (take_back_shared: true, or runbook run --yes)",
            change.describe(),
        )
        return change
    change.result = change.do()
    state.unplan(change)
    if isinstance(change.result, NotMade):
        change.needed = False
        state.changes.record(change, f"{change.result.outcome}: {change.result.detail}")
        log.info("%s", change.describe().splitlines()[0])
        return change
    change.applied = True
    state.changes.record(change, "applied")
    log.info("%s", change.describe().splitlines()[0])
    return change
