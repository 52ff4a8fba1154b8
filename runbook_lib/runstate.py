"""What each step produced, kept in the run folder so that later steps (and reruns) find it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .changes import ChangeLog

DEFAULT_RUN_DIR = "runs/adhoc"


class RunState:
    """state.json (the ARNs and IDs each step produced) and changes.jsonl, in one run folder."""

    def __init__(self, run_dir: str | Path = ""):
        self.directory = Path(run_dir or DEFAULT_RUN_DIR)
        self.path = self.directory / "state.json"
        self.changes = ChangeLog(self.directory / "changes.jsonl")

    def load(self) -> dict[str, dict[str, Any]]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def get(self, step: str, key: str, default: Any = None) -> Any:
        return self.load().get(step, {}).get(key, default)

    def record(self, step: str, **values: Any) -> None:
        state = self.load()
        state.setdefault(step, {}).update(values)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(state, indent=2, sort_keys=True, default=str))
