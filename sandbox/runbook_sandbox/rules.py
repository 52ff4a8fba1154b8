"""The table of every rule and message the sandbox adds to moto (rules.json), rendered for its documentation
(sandbox/docs/moto.md).

Each row says what the sandbox does, the error code and exact message text it answers (a `{name}` marks a
value filled in), whose words they are, and the AWS page it follows with the date it was read, or why it is
assumed. The table of what the sandbox simplifies is the rows that carry a simplification.
sandbox/tests/test_rules_table.py holds the table to the code: a message the sandbox answers that no row
holds fails it, and so does a row whose message the sandbox no longer answers.

Read without moto, so that writing the documentation does not import it.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

RULES_FILE = Path(__file__).with_name("rules.json")
# Whose words a row's messages are.
WORDINGS = {
    "aws": "AWS's words",
    "aws-unverified": "AWS's words as the runbook records them, not found verbatim in the source",
    "moto": "moto's words, kept",
    "sandbox": "the sandbox's words",
}
PLACEHOLDER = re.compile(r"\{[^{}]*\}")


@cache
def table() -> dict[str, Any]:
    """rules.json as read: its sources and its rules, in the order the documentation shows them."""
    data: dict[str, Any] = json.loads(RULES_FILE.read_text())
    return data


def rules() -> list[dict[str, Any]]:
    return list(table()["rules"])


def template(message: str) -> str:
    """A message with every value it fills in written `{}`: the part of it that does not change, whatever
    the placeholders are named in the table or the code."""
    return PLACEHOLDER.sub("{}", message)


def messages() -> dict[str, str]:
    """Every message template the table holds -> the id of its row."""
    return {template(message): row["id"] for row in rules() for message in row.get("messages", ())}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def source_cell(row: dict[str, Any]) -> str:
    """The row's source as a Markdown link with the date it was read, and why it is assumed where it is."""
    parts = []
    if row.get("source"):
        source = table()["sources"][row["source"]]
        parts.append(f"[{_cell(source['title'])}]({source['url']}), read {source['read']}")
    if row.get("assumed"):
        parts.append(f"assumed: {_cell(row['assumed'])}")
    return "; ".join(parts)


def _answer_cell(row: dict[str, Any]) -> str:
    quoted = "<br>".join(f"`{_cell(message)}`" for message in row.get("messages", ()))
    parts = [f"{_cell(row['code'])}" if row.get("code") else "", quoted]
    if row.get("messages"):
        parts.append(f"({WORDINGS[row['wording']]})")
    return " ".join(part for part in parts if part)


def rules_table() -> str:
    """Every rule as a Markdown table: what the sandbox does, what it answers, and its source."""
    lines = [
        "| rule | what the sandbox does | code and message | source |",
        "| --- | --- | --- | --- |",
    ]
    for row in rules():
        lines.append(f"| `{row['id']}` | {_cell(row['rule'])} | {_answer_cell(row)} | {source_cell(row)} |")
    return "\n".join(lines)


def simplifications_table() -> str:
    """What the sandbox simplifies, as a Markdown table: AWS's behaviour, the sandbox's, and the source."""
    lines = ["| area | AWS | sandbox | source |", "| --- | --- | --- | --- |"]
    for row in rules():
        simplification = row.get("simplification")
        if simplification:
            lines.append(
                f"| {_cell(simplification['topic'])} | {_cell(simplification['aws'])} | "
                f"{_cell(simplification['sandbox'])} | {source_cell(row)} |"
            )
    return "\n".join(lines)
