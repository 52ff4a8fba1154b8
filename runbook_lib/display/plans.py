"""Plans and Apply panels: each change shown once, as ordinary cell output, with its Apply button.

A change's plan (what it will do, its notes, its policy diff in colour) is ordinary output, text and
HTML, so that an executed notebook read without a widget manager (GitHub, nbviewer, VS Code,
`jupyter nbconvert --to html` offline) shows every plan, diff and outcome. In JupyterLab the plan is
shown under a display ID: the Apply button beneath it updates it in place to what was done, and
says in its own line what happened, an AWS refusal included, never as a traceback in the log console.

Where changes depend on each other (cleanup deletes a vault's recovery points before the vault), the
plans are numbered, a heading gives the order, and a button that cannot succeed yet is disabled and
says which change comes first.

Under the plan of a step that makes what AWS bills for (a backup, a copy, the restore drill's volume, the
backup plan), the estimate of what it creates and costs (core/costs.py) shows too; under cleanup's, the
run's whole estimate and what cleanup removes. The sizes it prices are noted in the run's state, so that
report.html and the dry run's summary price the same ones.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ipywidgets as w
from botocore.exceptions import BotoCoreError, ClientError
from IPython.display import DisplayHandle, display

from ..aws import world as worlds
from ..aws.context import Run, described, selection
from ..core import cost_facts, cost_rows, costs, resource_kinds
from ..core.changes import Change
from ..core.errors import RunbookError
from ..core.runstate import PLANNED, carry_out
from ..core.steps import ALL, AUTOMATE, CLEANUP, COPY_TO_TARGET, CREATE_BACKUP, RESTORE_DRILL
from .tables import Table

log = logging.getLogger(__name__)


def first_line(error: BaseException) -> str:
    """An error in one line (its first), or its type when it says nothing."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


COLOURS = {"changed": "#1a7f37", "will change": "#9a6700", "failed": "#cf222e", "blocked": "#6e7781"}
DIFF_LINE = {"+": "background:#dafbe1", "-": "background:#ffebe9", "@": "color:#6e7781"}


def _badge(change: Change, failure: str) -> tuple[str, str]:
    if failure:
        return "failed", COLOURS["failed"]
    text = change.state_text()
    colour = COLOURS.get(text) or (COLOURS["blocked"] if text.startswith("blocked") else "#57606a")
    return text, colour


def diff_html(diff: str) -> str:
    """A unified diff with its added and removed lines coloured."""
    lines = []
    for line in diff.splitlines():
        style = "" if line.startswith(("+++", "---")) else DIFF_LINE.get(line[:1], "")
        lines.append(f"<span style='{style}'>{html.escape(line)}</span>" if style else html.escape(line))
    return "<pre style='margin:.3em 0;line-height:1.3'>" + "\n".join(lines) + "</pre>"


class PlanView:
    """One change as ordinary output: text for any viewer, HTML (coloured state and diff) where HTML shows."""

    def __init__(self, change: Change, number: int | None = None):
        self.change = change
        self.number = number
        self.failure = ""

    def _shows_diff(self) -> bool:
        return bool(self.change.diff) and (self.change.applied or self.change.needed)

    def __repr__(self) -> str:
        lines = [f"{self.number}. " * bool(self.number) + self.change.describe().split("\n\n", 1)[0]]
        if self._shows_diff():
            lines += ["", self.change.diff]
        if self.failure:
            lines.append(f"  failed: {self.failure}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        change = self.change
        state, colour = _badge(change, self.failure)
        number = f"<b>{self.number}.</b> " if self.number else ""
        parts = [
            f"<div style='border-left:4px solid {colour};padding:.2em .6em;margin:.3em 0'>",
            f"{number}<span style='color:#fff;background:{colour};border-radius:3px;padding:0 .4em'>"
            f"{html.escape(state)}</span> <code>{html.escape(change.action)}</code> on "
            f"<code style='word-break:break-all'>{html.escape(change.target)}</code> "
            f"<span style='color:#57606a'>({html.escape(change.profile)}, {html.escape(change.region)})</span>",
            f"<div>{html.escape(change.summary)}</div>",
        ]
        parts += [f"<div style='color:#57606a'>note: {html.escape(note)}</div>" for note in change.notes]
        if self.failure:
            parts.append(f"<div style='color:{COLOURS['failed']}'>failed: {html.escape(self.failure)}</div>")
        if self._shows_diff():
            parts.append(diff_html(change.diff))
        return "".join(parts) + "</div>"


@contextmanager
def _told_here() -> Iterator[None]:
    """The plan view tells what carrying out a change logs; in a cell it would say it twice."""
    logger = logging.getLogger("runbook_lib.core.runstate")
    before = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(before)


def apply_label(run: Run, change: Change) -> str:
    """The Apply button's words: on real accounts it names the account it changes (pressing it is the
    confirmation the guard asks for)."""
    found = run.world(worlds.sides_of_changes(run, [change]))
    if found.sandbox:
        return "Apply"
    return f"Apply to real account {', '.join(found.accounts)}"


class ApplyPanel(w.HBox):
    """The Apply button of one planned change and, beside it, what happened when it was pressed."""

    def __init__(self, run: Run, view: PlanView, group: list[ApplyPanel]):
        self.run = run
        self.view = view
        self.change = view.change
        self.handle: DisplayHandle | None = None
        self.group = group
        self.button = w.Button(
            description=apply_label(run, self.change), button_style="warning", layout=w.Layout(width="auto")
        )
        self.status = w.HTML()
        self.button.on_click(self._apply)
        super().__init__([self.button, self.status])
        self.refresh()

    def _first(self) -> list[ApplyPanel]:
        """The panels of changes that must be made before this one, not made yet."""
        return [p for p in self.group if p.change.key in self.change.after and not p.change.applied]

    def refresh(self) -> None:
        change = self.change
        first = self._first()
        if change.applied:
            self.button.disabled, text = True, "<b style='color:#1a7f37'>applied</b>"
        elif not change.needed:
            self.button.disabled, text = True, html.escape(change.state_text())
        elif first:
            numbers = " and ".join(str(p.view.number) for p in first)
            self.button.disabled, text = True, f"apply {numbers} first"
        elif change.blocked_by and not change.after:
            self.button.disabled = True
            text = f"blocked until {html.escape(change.blocked_by)}: do that, then run this cell again"
        else:
            self.button.disabled, text = False, "waiting for Apply"
        if self.view.failure and not change.applied:
            text = f"<span style='color:{COLOURS['failed']}'>failed: {html.escape(self.view.failure)}</span>"
        self.status.value = text

    def _apply(self, _: Any) -> None:
        self.button.disabled = True
        self.status.value = "applying…"
        try:
            with _told_here():
                carry_out(self.change, True, self.run.state, recheck=True)
            self.view.failure = ""
        except (RunbookError, ClientError, BotoCoreError) as error:  # one line in the panel, the notebook goes on
            self.view.failure = first_line(error)
        finally:  # whatever happened, the panels say where things stand (never stuck at "applying…")
            if self.handle is not None:
                self.handle.update(self.view)
            for panel in self.group:
                panel.refresh()


ORDER_NOTE = "Apply in this order: a numbered change waits for those it names."
NOTHING_TO_CHANGE = "Nothing to change."


class Plan:
    """The changes of one cell: each shown once as ordinary output, with an Apply button under each
    one still to make, and the estimate of what they create (if any). Shown when it is the cell's value
    (IPython calls _ipython_display_)."""

    def __init__(self, run: Run, changes: list[Change], estimate: CostView | None = None):
        ordered = any(change.after for change in changes)
        self.views = [PlanView(change, number if ordered else None) for number, change in enumerate(changes, 1)]
        self.panels: list[ApplyPanel] = []
        for view in self.views:
            if view.change.needed and not view.change.applied:
                self.panels.append(ApplyPanel(run, view, self.panels))
        for panel in self.panels:
            panel.refresh()
        self.ordered = ordered
        self.estimate = estimate

    def panel(self, change: Change) -> ApplyPanel | None:
        return next((p for p in self.panels if p.change is change), None)

    def __repr__(self) -> str:
        estimate = [f"\n{self.estimate!r}"] if self.estimate is not None else []
        if not self.views:
            return "\n".join([NOTHING_TO_CHANGE, *estimate])
        lines = [ORDER_NOTE] if self.ordered else []
        return "\n".join([*lines, *(repr(view) for view in self.views), *estimate])

    def _ipython_display_(self) -> None:
        if not self.views:
            display(PlainText(NOTHING_TO_CHANGE))
        if self.ordered:
            display(PlainText(ORDER_NOTE))
        for view in self.views:
            handle = display(view, display_id=True)
            panel = self.panel(view.change)
            if panel is not None:
                panel.handle = handle
                display(panel)
        if self.estimate is not None:
            display(self.estimate)


def plan(run: Run, changes: list[Change]) -> Plan:
    """Carry out the changes when `apply` is true (else keep them as planned); the Plan shows them, with
    the estimate of what they create."""
    with _told_here():
        run.carry_out(changes)
    return Plan(run, changes, step_estimate(run, changes))


# ----- what a plan creates, and what it costs ----------------------------------------------------------

# The steps whose plans make what AWS bills for, by the changes that make it; cleanup's plan shows the run's
# whole estimate, with what it removes.
PRICED = {
    CREATE_BACKUP: ("backup:StartBackupJob",),
    COPY_TO_TARGET: ("backup:StartCopyJob",),
    RESTORE_DRILL: ("backup:StartRestoreJob",),
    AUTOMATE: ("backup:CreateBackupPlan", "backup:UpdateBackupPlan"),
}
STEP_HEADING = "What this step creates and what it costs (estimate)"
CLEANUP_HEADING = "What this run made, what it costs, and what cleanup removes (estimate)"


def costs_html(rows: list[cost_rows.Cost], links: bool = True) -> str:
    """The estimate as HTML: the rows, the total, the estimate's wording, what cleanup removes, and each
    price with its source and the date it was read (report.html writes addresses without links)."""
    if not rows:
        return "<p><i>Nothing billable.</i></p>"
    prices = "".join(f"<li>{html.escape(line)}</li>" for line in cost_rows.sources(rows, links))
    return (
        Table(cost_rows.table_rows(rows))._repr_html_()
        + f"<p><b>{html.escape(cost_rows.total_line(rows))}</b></p>"
        + f"<p style='color:#57606a'>{html.escape(cost_rows.ESTIMATE_WORDING)}</p>"
        + f"<p>{html.escape(cost_rows.cleanup_line(rows))}</p>"
        + f"<div>Prices:</div><ul style='list-style:none;padding-left:1em;margin:.2em 0'>{prices}</ul>"
    )


class CostView:
    """The estimate under a plan: text for any viewer, a table where HTML shows."""

    def __init__(self, rows: list[cost_rows.Cost], heading: str = STEP_HEADING):
        self.rows = rows
        self.heading = heading

    def __repr__(self) -> str:
        return f"{self.heading}\n{cost_rows.text_table(self.rows)}"

    def _repr_html_(self) -> str:
        return f"<div style='margin:.6em 0'><b>{html.escape(self.heading)}</b>{costs_html(self.rows)}</div>"


def _size_of(run: Run, arn: str) -> float | None:
    """A resource's size in GiB as its kind's lookup describes it (a volume is read once a run, by the step
    before), or None when it cannot be read or its kind's description gives none the estimate reads."""
    kind = resource_kinds.looked_up_as(arn)
    if kind is None or not kind.sized:
        return None
    try:
        found = described(run, arn)
        return cost_facts.size_gib(found) if found else None
    except (ClientError, BotoCoreError) as error:
        log.info("the size of %s is not known: %s", arn, first_line(error))
    return None


def note_sizes(run: Run) -> dict[str, float | None]:
    """The sizes (GiB) of the run's resources, kept in its state (cost_facts.STATE_KEY): those noted already, and
    those read now. report.html and the dry run's summary read them there, never AWS."""
    known = cost_facts.sizes_in(run.state.load())
    try:
        chosen = selection(run)
    except (RunbookError, ClientError, BotoCoreError) as error:
        log.info("the run's resources are not known: %s", first_line(error))
        return known
    found = {arn: size for arn in chosen if known.get(arn) is None for size in [_size_of(run, arn)] if size is not None}
    if found:
        known = {**known, **found}
        run.state.record(cost_facts.STATE_KEY, **{cost_facts.SIZES: known})
    return known


def _steps_of(state: dict[str, Any]) -> list[str]:
    """The steps the run folder holds something of (recorded, or planned)."""
    planned = {entry.get("step") for entry in state.get(PLANNED, [])}
    return [step for step in ALL if step in state or step in planned]


def step_estimate(run: Run, changes: list[Change]) -> CostView | None:
    """The estimate under a step's plan: what the step creates (a plan that creates nothing billed has
    none), or under cleanup's, the whole run's and what cleanup removes."""
    if run.step == CLEANUP:
        state = run.state.load()
        rows = costs.estimate(cost_facts.facts_from_state(state, run, _steps_of(state)))
        return CostView(rows, CLEANUP_HEADING) if changes and rows else None
    actions = PRICED.get(run.step, ())
    if not any(change.action in actions for change in changes):
        return None
    note_sizes(run)
    facts = cost_facts.facts_from_state(run.state.load(), run, (run.step,))
    return CostView([row for row in costs.estimate(facts) if row.step == run.step])


class PlainText(str):
    """A line of ordinary output (shown the same in every viewer)."""

    def __repr__(self) -> str:
        return str(self)
