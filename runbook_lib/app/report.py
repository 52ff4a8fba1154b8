"""report.html: one self-contained page (nothing loaded from the network) that tells a run.

It shows the copy's topology drawn from the run (source and destination account, Region, vault, key
alias and recovery point, the copy between them, in status colours), the steps with their outcome and
duration, the checks the steps last saw, the keys and recovery points of the run, what the run creates
and an estimate of what it costs (each price with its source and the date it was read, and what cleanup
removes), every change made (with its diff) or only planned, the retries AWS asked for, and links to the
executed notebooks. Everything it shows comes from the run folder: writing it makes no AWS call.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core import cost_facts, costs
from ..core.params import Parameters
from ..core.runstate import RunState
from ..core.steps import (
    CLEANUP,
    COPY_TO_TARGET,
    CREATE_BACKUP,
    PREREQUISITES,
    TROUBLESHOOT,
    VERIFY_TARGET_KEY,
)
from ..display.plans import costs_html, diff_html
from ..display.tables import STATUS_COLOURS, Table
from ..steps import fleet, results

GREEN, RED, AMBER, GREY = "#1a7f37", "#cf222e", "#9a6700", "#8c959f"
PAGE_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:1200px;color:#1f2328;
padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #d0d7de;padding-bottom:.2em}
pre{background:#f6f8fa;padding:.6em;overflow-x:auto;white-space:pre-wrap}
nav a{margin-right:1em}
"""


@dataclass
class StepRow:
    """A step as the report shows it (runner.StepOutcome, without the runner)."""

    step: str
    label: str
    seconds: float
    message: str


def _side(state: dict[str, Any], values: Parameters, side: results.Side) -> dict[str, str]:
    return {
        "title": side.name.capitalize(),
        "account": side.account(state),
        "region": getattr(values, f"{side.parameters}_region"),
        "vault": getattr(values, f"{side.parameters}_vault_name"),
        "key": side.key_alias(state),
        "recovery point": side.recovery_point(state),
    }


def _colour(rows: dict[str, StepRow], step: str, made: bool) -> str:
    row = rows.get(step)
    if row is not None and row.label != "ok":
        return RED
    return GREEN if made else GREY


def topology(state: dict[str, Any], values: Parameters, steps: list[StepRow]) -> str:
    """The copy as a picture (inline SVG): two accounts, the copy between them, in status colours."""
    rows = {row.step: row for row in steps}
    source, target = (_side(state, values, side) for side in results.SIDES)
    colours = {
        "source": _colour(rows, CREATE_BACKUP, bool(source["recovery point"])),
        "target": _colour(rows, VERIFY_TARGET_KEY, bool(target["key"])),
        "copy": _colour(rows, COPY_TO_TARGET, bool(target["recovery point"])),
    }
    if not values.apply and colours["copy"] == GREY:
        colours["copy"] = AMBER  # planned
    copy_row = rows.get(COPY_TO_TARGET)
    copy_label = f"copy: {copy_row.label}" if copy_row else "copy: not run"
    if not values.apply:
        copy_label += " (dry run)"

    def box(x: int, side: dict[str, str], colour: str) -> str:
        point = side["recovery point"]
        lines = [
            f"account {side['account']}",
            f"Region {side['region']}",
            f"vault {side['vault']}",
            f"key {side['key'] or '(not verified)'}",
            f"recovery point {point.rsplit('/', 1)[-1] if point else '(none yet)'}",
        ]
        text = "".join(
            f"<text x='{x + 16}' y='{78 + 24 * i}' font-size='14'>{html.escape(line)}</text>"
            for i, line in enumerate(lines)
        )
        return (
            f"<rect x='{x}' y='20' width='330' height='190' rx='10' fill='#fff' stroke='{colour}' stroke-width='3'/>"
            f"<text x='{x + 16}' y='48' font-size='17' font-weight='600' fill='{colour}'>"
            f"{html.escape(side['title'])}</text>{text}"
        )

    return (
        "<svg viewBox='0 0 860 230' width='860' height='230' "
        "role='img' aria-label='the copy from the source to the destination'>"
        f"<defs><marker id='head' markerWidth='10' markerHeight='10' refX='8' refY='5' orient='auto'>"
        f"<path d='M0,0 L10,5 L0,10 z' fill='{colours['copy']}'/></marker></defs>"
        + box(10, source, colours["source"])
        + box(520, target, colours["target"])
        + f"<line x1='345' y1='115' x2='510' y2='115' stroke='{colours['copy']}' stroke-width='4' "
        "marker-end='url(#head)'/>"
        f"<text x='428' y='100' font-size='14' text-anchor='middle' fill='{colours['copy']}'>"
        f"{html.escape(copy_label)}</text></svg>"
    )


def _checks(state: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The checks the run's steps saw last (the copy step's, else troubleshooting's, else step 00's)."""
    for step in (COPY_TO_TARGET, TROUBLESHOOT, PREREQUISITES):
        if state.get(step, {}).get("checks"):
            return step, state[step]["checks"]
    return "", []


def _verified(state: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(side, what the verification step found) for each side the run verified."""
    return [(side.name, side.verified(state)) for side in results.SIDES if side.verified(state)]


# The two keys a verification finds on a side, by the prefix of their fields in what it found.
VERIFIED_KEYS = (("recovery point and snapshot", "recovery_point_key"), ("vault", "vault_key"))


def keys_table(state: dict[str, Any]) -> Table:
    """The keys that encrypt the run's recovery points and vaults, as steps 02 and 05 found them."""
    rows = [
        {
            "side": side,
            "encrypts": encrypts,
            "alias": found.get(f"{key}_alias", ""),
            "key": found.get(f"{key}_arn", ""),
            "manager": found.get(f"{key}_manager", ""),
        }
        for side, found in _verified(state)
        for encrypts, key in VERIFIED_KEYS
    ]
    return Table(rows, "No key verified yet (steps 02 and 05 verify them).")


def recovery_points_table(state: dict[str, Any]) -> Table:
    """The run's recovery points (its backup and its copy), as steps 02 and 05 found them."""
    rows = [
        {
            "side": side,
            "recovery point": found.get("recovery_point_arn", ""),
            "status": found.get("status", ""),
            "key alias": found.get("recovery_point_key_alias", ""),
            "snapshot key": found.get("snapshot_key_arn", ""),
        }
        for side, found in _verified(state)
    ]
    return Table(rows, "No recovery point verified yet (steps 02 and 05 verify them).")


def _change_rows(entries: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    if not entries:
        return "<p><i>none</i></p>"
    parts = []
    for entry in entries:
        head = " · ".join(html.escape(str(entry.get(c, ""))) for c in columns if entry.get(c))
        colour = STATUS_COLOURS.get("COMPLETED" if entry.get("outcome") == "applied" else "PENDING", "")
        parts.append(f"<div style='border-left:4px solid {colour};padding:.2em .6em;margin:.4em 0'>{head}")
        if entry.get("blocked_by"):
            parts.append(f"<div>blocked until {html.escape(entry['blocked_by'])}</div>")
        if entry.get("diff"):
            parts.append(diff_html(entry["diff"]))
        parts.append("</div>")
    return "".join(parts)


def costs_section(state: dict[str, Any], values: Parameters, steps: list[StepRow]) -> str:
    """What the run's steps create (a dry run: will create) and the estimate of what it costs, from the sizes
    its steps noted; addresses of the price sources written without links (the page loads nothing)."""
    names = [row.step for row in steps]
    rows = costs.estimate(cost_facts.facts_from_state(state, values, names))
    cleaned = values.apply and any(row.step == CLEANUP and row.label == "ok" for row in steps)
    note = (
        f"<p>{CLEANUP} ran in this run: what it removes (cleanup removes it: yes) is billed only until it ran.</p>"
        if cleaned
        else ""
    )
    return note + costs_html(rows, links=False)


def write(
    folder: Path,
    steps: list[StepRow],
    values: Parameters,
    summary: str,
    retries: dict[tuple[str, str, str], int],
) -> Path:
    """Write report.html into the run folder and return its path."""
    run_state = RunState(folder)
    state = run_state.load()
    names = {row.step for row in steps}
    step_table = Table(
        [
            {
                "step": row.step,
                "outcome": row.label,
                "time": f"{row.seconds:.1f} s",
                "result": row.message,
            }
            for row in steps
        ],
        "No step ran.",
    )
    checked_by, findings = _checks(state)
    resources = fleet.results(state)  # a fleet's row per resource (none for one resource)
    retry_table = Table(
        [{"step": s, "operation": o, "error": e, "retries": n} for (s, o, e), n in sorted(retries.items())],
        "None: AWS answered every call at the first attempt.",
    )
    notebooks = "".join(
        f"<li><a href='{html.escape(row.step)}.ipynb'>{html.escape(row.step)}.ipynb</a></li>"
        for row in steps
        if (folder / f"{row.step}.ipynb").exists()
    )
    planned = [e for e in run_state.planned() if e["step"] in names]
    made = run_state.changes.entries()
    title = f"Runbook run {folder.name}" + ("" if values.apply else " (dry run)")
    sections = [
        ("topology", "The copy", topology(state, values, steps)),
        ("steps", "Steps", step_table._repr_html_()),
        *(
            [("resources", f"Resources ({len(resources)})", Table(resources, shown=len(resources))._repr_html_())]
            if resources
            else []
        ),
        (
            "checks",
            f"Checks{f' (as {checked_by} saw them)' if checked_by else ''}",
            Table(findings, "No step ran the checks.")._repr_html_(),
        ),
        ("keys", "Keys", keys_table(state)._repr_html_()),
        ("recovery-points", "Recovery points", recovery_points_table(state)._repr_html_()),
        ("costs", "What this run creates and what it costs (estimate)", costs_section(state, values, steps)),
        (
            "changes",
            "Changes made to AWS",
            _change_rows(made, ("time", "step", "action", "target", "summary", "outcome")),
        ),
        (
            "planned",
            "Planned, not made" + (" (dry run: apply was false)" if not values.apply else ""),
            _change_rows(planned, ("step", "action", "target", "summary")),
        ),
        ("retries", "Retries AWS asked for", retry_table._repr_html_()),
        ("notebooks", "Executed notebooks", f"<ul>{notebooks}</ul>" if notebooks else "<p><i>none</i></p>"),
        (
            "produced",
            "What each step recorded",
            "<details><summary>state.json</summary><pre>"
            + html.escape(json.dumps(state, indent=2, sort_keys=True, default=str))
            + "</pre></details>",
        ),
    ]
    nav = "".join(f"<a href='#{anchor}'>{html.escape(name)}</a>" for anchor, name, _ in sections)
    body = "".join(f"<h2 id='{anchor}'>{html.escape(name)}</h2>{content}" for anchor, name, content in sections)
    page = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{PAGE_CSS}</style></head><body><h1>{html.escape(title)}</h1><nav>{nav}</nav>"
        f"<pre>{html.escape(summary)}</pre>{body}</body></html>\n"
    )
    path = folder / "report.html"
    path.write_text(page)
    return path
