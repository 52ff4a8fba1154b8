"""What the notebooks show: tables (tables.py), plans and Apply buttons (plans.py), pickers for accounts
and vaults, and job progress.

Everything here works headless too (papermill): widgets render as their text, and nothing waits
for a click; in batch the `apply` parameter does what the Apply button does in JupyterLab.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as w
from botocore.exceptions import BotoCoreError, ClientError
from IPython.display import display

from ..aws import clients, facts, jobs, keys
from ..aws.context import selection
from ..core import params
from ..steps import fleet
from ..steps import walkthrough as rb
from ..steps.walkthrough import Run, recovery_points_table
from ..troubleshooting import checks, diagnose, registry
from . import plans as plans
from .console import show_messages as show_messages
from .plans import first_line
from .plans import plan as plan
from .tables import Evidence, Table


class WorldBanner:
    """Which world a notebook talks to, at its top: the sandbox, or real accounts with their IDs (in red)."""

    SANDBOX_STYLE = "background:#dafbe1;border:1px solid #1a7f37"
    REAL_STYLE = "background:#ffebe9;border:2px solid #cf222e"

    def __init__(self, run: Run):
        self.world = run.world()

    def __repr__(self) -> str:
        return self.world.headline()

    def _repr_html_(self) -> str:
        style = self.SANDBOX_STYLE if self.world.sandbox else self.REAL_STYLE
        return (
            f"<div class='runbook-world' style='{style};padding:6px 10px;margin:2px 0'>"
            f"<b>{html.escape(self.world.headline())}</b></div>"
        )


def world_banner(run: Run) -> None:
    """Show the notebook's world before anything else it shows."""
    display(WorldBanner(run))


def table(rows: list[dict[str, Any]], empty: str = "(none)") -> Table:
    return Table(rows, empty)


def keys_frame(profile: str, region: str) -> Table:
    return Table(keys.keys_table(profile, region), f"No KMS key with an alias in {profile}, {region}.")


def recovery_points_frame(profile: str, region: str, vault: str) -> Table:
    return Table(recovery_points_table(profile, region, vault), f"No recovery point in {vault} ({profile}, {region}).")


def encryption_frame(found: dict[str, Any]) -> Table:
    return Table([{"what": k.replace("_", " "), "value": v} for k, v in found.items()])


def checks_frame(findings: list[checks.Finding]) -> Table:
    """The preflight table: check ID, status, finding and, for a failure, the fix."""
    return Table([f.row() for f in findings])


def preflight_frame(run: Run) -> Table:
    """The checks before a copy, as the run's plans will leave AWS: for many resources, the run's checks once
    and each resource's as counts per outcome (its rows say which resource)."""
    if len(selection(run)) > 1:
        return Table(fleet.checks_rows(run))
    return checks_frame(checks.run_checks(run, as_planned=True))


def second_hop_progress(run: Run) -> JobProgress:
    """The second hop's progress; at rest for a run that copies every resource in one job."""
    progress = JobProgress("second hop")
    return progress if run.copies_in_two_hops() else progress.at_rest("one copy job: no second hop")


def results_frame(run: Run) -> Table:
    """One row per resource: recovery point, copy, destination key and how it ended."""
    return Table(rb.results(run), "No resource selected.")


def known_failures_frame() -> Table:
    """The registry of known failures: each check, the cause it names, and AWS's message."""
    return Table(
        [
            {
                "check": f.id,
                "cause": f.cause,
                "AWS's message": f.aws_message,
                "runbook fix": "yes" if f.fixable else "",
            }
            for f in registry.FAILURES
        ]
    )


def diagnoses_frame(diagnoses: list[diagnose.Diagnosis]) -> Table:
    """One row per failed job: its message and the known failure it matches."""
    return Table([d.row() for d in diagnoses], "No failed copy or backup job: nothing to diagnose, nothing to fix.")


def evidence_frame(diagnoses: list[diagnose.Diagnosis]) -> Evidence:
    """What each diagnosis rests on, the policy statements that decide it marked."""
    return Evidence(diagnoses)


def _vault_names(profile: str, region: str) -> list[str]:
    backup = clients.client(profile, "backup", region)
    return [
        v["BackupVaultName"]
        for page in backup.get_paginator("list_backup_vaults").paginate()
        for v in page["BackupVaultList"]
    ]


class Choices(w.VBox):
    """Pickers for the accounts (profiles) and vaults of a run; a change re-validates the run's values."""

    def __init__(self, run: Run):
        self.run = run
        profiles = sorted(clients.session(run.source_profile).available_profiles)
        self.source_profile = w.Dropdown(options=profiles, value=run.source_profile, description="Source")
        self.target_profile = w.Dropdown(options=profiles, value=run.target_profile, description="Target")
        self.source_vault = w.Combobox(
            value=run.source_vault_name,
            description="Source vault",
            continuous_update=False,
            options=_vault_names(run.source_profile, run.source_region),
        )
        self.target_vault = w.Combobox(
            value=run.target_vault_name,
            description="Target vault",
            continuous_update=False,
            options=_vault_names(run.target_profile, run.target_region),
        )
        self.message = w.HTML()
        self.reverting = False
        for picker in self._pickers().values():
            picker.observe(self._changed, names="value")
        super().__init__([*self._pickers().values(), self.message])

    def _pickers(self) -> dict[str, Any]:
        return {
            "source_profile": self.source_profile,
            "target_profile": self.target_profile,
            "source_vault_name": self.source_vault,
            "target_vault_name": self.target_vault,
        }

    def _changed(self, _: Any) -> None:
        if self.reverting:
            return
        wanted = {**self.run.as_dict(), **{name: picker.value for name, picker in self._pickers().items()}}
        try:
            chosen = params.validate(wanted)
            try:
                refusal = checks.refusal_of_choices(Run(self.run.step, chosen))
            finally:
                facts.activate(self.run.facts)  # the choice's reads are its own until it is saved
        except params.ParameterError as error:
            self._refuse(html.escape(str(error)))
            return
        except (ClientError, BotoCoreError) as error:  # an expired profile, access denied: one line here
            self._refuse(f"AWS refused reading what the choice needs: {html.escape(first_line(error))}")
            return
        if refusal is not None:
            self._refuse(f"[{refusal.check_id}] {html.escape(refusal.finding)}. Fix: {html.escape(refusal.fix)}")
            return
        self.run.use(chosen)
        self.message.value = "Saved: run the next cells again to plan with these choices."

    def _refuse(self, why: str) -> None:
        """Say why, and put the pickers back to the run's values (which stay as they were)."""
        self.message.value = f"<b>Not saved</b>: {why}"
        self.reverting = True
        try:
            for name, picker in self._pickers().items():
                picker.value = getattr(self.run, name)
        finally:
            self.reverting = False


# A bar that moves without a percentage: copy jobs report none, and a bar held at 0 % looks stuck.
MOVING_BAR = """<div style="width:16em;height:1em;border:1px solid #9ab;border-radius:3px;
background:repeating-linear-gradient(-45deg,#cde 0 10px,#9bd 10px 20px);background-size:28px 28px;
animation:runbook-moving 1s linear infinite"></div>
<style>@keyframes runbook-moving{from{background-position:0 0}to{background-position:28px 0}}</style>"""


def _elapsed(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


class JobProgress(w.HBox):
    """A job followed by the waiter's polls: its PercentDone as a bar when AWS reports one (backups),
    otherwise a moving bar; always its state, the time since the wait began and the polls so far."""

    def __init__(self, label: str, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.began = clock()
        self.polls = 0
        self.bar = w.FloatProgress(min=0, max=100, description=label, layout=w.Layout(display="none"))
        self.moving = w.HTML(MOVING_BAR, description=label)
        self.state = w.Label("waiting for the first poll")
        super().__init__([self.bar, self.moving, self.state])

    def at_rest(self, why: str) -> JobProgress:
        """No job to follow (say why): the bars are hidden."""
        self.moving.layout.display = "none"
        self.state.value = why
        return self

    def __call__(self, job: dict[str, Any]) -> None:
        self.polls += 1
        state = jobs.job_state(job) or ""
        percent = job.get("PercentDone")
        ended = state in ("COMPLETED", "FAILED", "ABORTED", "EXPIRED", "PARTIAL")
        if ended:
            self.bar.value = 100.0
            self.bar.bar_style = "success" if state == "COMPLETED" else "danger"
        elif percent not in (None, ""):
            self.bar.value = float(percent)
        shows_bar = ended or percent not in (None, "")
        self.bar.layout.display = None if shows_bar else "none"
        self.moving.layout.display = "none" if shows_bar else None
        polls = f"{self.polls} poll{'s' if self.polls != 1 else ''}"
        message = f": {job['StatusMessage']}" if job.get("StatusMessage") else ""
        self.state.value = f"{state}{message} · {_elapsed(self.clock() - self.began)} · {polls}"
