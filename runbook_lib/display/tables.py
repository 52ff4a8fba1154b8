"""Tables built for reading: whole values, wrapped and left-aligned, status in colour.

pandas' own display cuts every cell at 50 characters (the fixes, the ARNs, the evidence) and
right-aligns text. A Table keeps its DataFrame (`frame`) and shows it through pandas' Styler: text
wraps within the output area, an ARN is shortened to its resource with the whole ARN one hover away
(and whole in the text form), and a status cell is coloured. Its text form, for viewers without
HTML, is every value whole.
"""

from __future__ import annotations

import html
import json
from typing import Any

import pandas as pd

from runbook_policy import iam_policy

# Cell colours of statuses: checks (pass, fail, unknown, skipped) and jobs and recovery points.
STATUS_COLOURS = {
    "pass": "#dafbe1",
    "fail": "#ffebe9",
    "unknown": "#fff8c5",
    "skipped": "#f6f8fa",
    "COMPLETED": "#dafbe1",
    "FAILED": "#ffebe9",
    "ABORTED": "#ffebe9",
    "EXPIRED": "#ffebe9",
    "PARTIAL": "#fff8c5",
    "RUNNING": "#ddf4ff",
    "CREATED": "#ddf4ff",
    "PENDING": "#ddf4ff",
    "ok": "#dafbe1",
    "INTERRUPTED": "#ffebe9",
    "TIMED OUT": "#ffebe9",
    "STILL RUNNING": "#fff8c5",
}
STATUS_COLUMNS = ("status", "state", "outcome")
CELL_CSS = [
    {"selector": "", "props": "border-collapse:collapse;width:100%;table-layout:auto;font-size:12px"},
    {
        "selector": "td, th",
        "props": "text-align:left;vertical-align:top;white-space:pre-wrap;overflow-wrap:break-word;"
        "max-width:48em;padding:3px 6px;border:1px solid #d0d7de",
    },
    {"selector": "th", "props": "background:#f6f8fa;font-weight:600"},
]


def short_arn(value: str) -> str:
    """An ARN's resource part (what tells it apart in a table), or the value as it is."""
    parts = value.split(":", 5)
    return f"…{parts[5]}" if value.startswith("arn:") and len(parts) == 6 else value


def _text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return "" if value is None else str(value)


def _cell_html(value: Any) -> str:
    text = _text(value)
    if text.startswith("arn:") and " " not in text:
        return f"<span title='{html.escape(text, quote=True)}'>{html.escape(short_arn(text))}</span>"
    return html.escape(text)


def _status_colour(value: Any) -> str:
    colour = STATUS_COLOURS.get(str(value))
    return f"background:{colour};font-weight:600;white-space:nowrap" if colour else ""


# Rows a table shows (its first ones: the newest, where a table is sorted by time); the rest stay in
# its frame. Ten thousand recovery points as HTML would be megabytes in every saved notebook.
SHOWN_ROWS = 200


class Table:
    """Rows shown whole: Styler HTML in JupyterLab and reports, every value whole in the text form."""

    def __init__(self, rows: list[dict[str, Any]] | pd.DataFrame, empty: str = "(none)", shown: int = SHOWN_ROWS):
        self.frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
        self.empty = empty
        self.shown = shown

    def _more(self) -> str:
        """The line under a table that shows only its first rows ('' when it shows them all)."""
        if len(self.frame) <= self.shown:
            return ""
        return f"Showing the first {self.shown} of {len(self.frame):,} rows; all of them are in this table's .frame."

    def styler(self) -> Any:
        shown = self.frame.head(self.shown)
        styler = shown.style.hide(axis="index").format(_cell_html).set_table_styles(CELL_CSS)
        status = [c for c in shown.columns if c in STATUS_COLUMNS]
        return styler.map(_status_colour, subset=status) if status else styler

    def _repr_html_(self) -> str:
        if self.frame.empty:
            return f"<p><i>{html.escape(self.empty)}</i></p>"
        more = self._more()
        return str(self.styler().to_html()) + (f"<p><i>{html.escape(more)}</i></p>" if more else "")

    def __repr__(self) -> str:
        if self.frame.empty:
            return self.empty
        columns = [str(c) for c in self.frame.columns]
        rows = [[_text(v) for v in row] for row in self.frame.head(self.shown).itertuples(index=False)]
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
        lines = ["  ".join(f"{v:<{w}}" for v, w in zip(values, widths)).rstrip() for values in (columns, *rows)]
        return "\n".join([*lines, self._more()] if self._more() else lines)

    def __len__(self) -> int:
        return len(self.frame)


# Evidence keys whose statements are the ones that decide, and the words that mark them in the policy.
MARKED_STATEMENTS = {"denying statements": "denies", "undecided statements": "cannot be decided"}
MARK_CSS = "background:#ffebe9;border-left:4px solid #cf222e"


def _policies(evidence: dict[str, Any]) -> dict[str, list[tuple[dict[str, Any], str]]]:
    """Each policy document of the evidence as its statements (IAM allows one object too), each with
    why it decides ("denies", "cannot be decided") or ""."""
    marks = [(statement, why) for key, why in MARKED_STATEMENTS.items() for statement in evidence.get(key, [])]
    return {
        name: [(s, next((why for marked, why in marks if marked == s), "")) for s in iam_policy.statements(document)]
        for name, document in evidence.items()
        if isinstance(document, dict) and "Statement" in document
    }


def _statement_html(statement: dict[str, Any], why: str) -> str:
    text = html.escape(json.dumps(statement, indent=2, sort_keys=True))
    if not why:
        return f"<div>{text}</div>"
    return f"<div style='{MARK_CSS}'><b>◀ this statement {html.escape(why)}</b>\n{text}</div>"


class Evidence:
    """What a diagnosis rests on: its facts in a table and each policy whole, the statements that
    decide it marked (an explicit Deny, a condition the evaluator cannot decide)."""

    def __init__(self, diagnoses: list[Any]):
        self.diagnoses = diagnoses

    def _parts(self, diagnosis: Any) -> tuple[Table, dict[str, list[tuple[dict[str, Any], str]]]]:
        policies = _policies(diagnosis.evidence)
        facts = [
            {"evidence": name, "value": value}
            for name, value in diagnosis.evidence.items()
            if name not in policies and name not in MARKED_STATEMENTS
        ]
        return Table(facts), policies

    def __repr__(self) -> str:
        if not self.diagnoses:
            return "No failed job: no evidence to show."
        lines = []
        for diagnosis in self.diagnoses:
            facts, policies = self._parts(diagnosis)
            lines += [f"job {diagnosis.job_id}: {diagnosis.check_id}", repr(facts)]
            for name, statements in policies.items():
                lines.append(f"{name} (>> marks the statement that decides):")
                lines += [(f">> {why}: " if why else "   ") + json.dumps(s, sort_keys=True) for s, why in statements]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        if not self.diagnoses:
            return "<p><i>No failed job: no evidence to show.</i></p>"
        parts = []
        for diagnosis in self.diagnoses:
            facts, policies = self._parts(diagnosis)
            parts.append(
                f"<h4>job {html.escape(str(diagnosis.job_id))}: {html.escape(str(diagnosis.check_id))}</h4>"
                + facts._repr_html_()
            )
            for name, statements in policies.items():
                shown = "".join(_statement_html(statement, why) for statement, why in statements)
                parts.append(f"<p><b>{html.escape(name)}</b></p><pre style='white-space:pre-wrap'>{shown}</pre>")
        return "".join(parts)
