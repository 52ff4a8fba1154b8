"""Edit a policy document as text: add and remove statements, keep everything else byte for byte.

A key or vault policy is someone's document. Re-serialising it would reformat every statement
(and a compact 30 KB key policy, pretty-printed, no longer fits KMS's 32 KB). Here the statements
that stay are copied as they are, and new ones are written in the document's own style (compact,
spaced, or indented like their neighbours, with the document's line endings).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MAX_KEY_POLICY_BYTES = 32 * 1024
_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")


def size(text: str) -> int:
    """The size KMS limits: the document's bytes as sent."""
    return len(text.encode("utf-8"))


@dataclass(frozen=True)
class _Style:
    """How the document writes a statement: on one line (with these separators) or indented."""

    indent: str = ""
    unit: str | None = None
    separators: tuple[str, str] = (", ", ": ")
    newline: str = "\n"

    def render(self, statement: dict[str, Any]) -> str:
        if self.unit is None:
            return json.dumps(statement, separators=self.separators)
        return json.dumps(statement, indent=self.unit).replace("\n", self.newline + self.indent)


def _skip(text: str, index: int) -> int:
    return _SPACE.match(text, index).end()  # type: ignore[union-attr]


def _items(text: str, start: int, closing: str, keyed: bool) -> list[tuple[str, int, int]]:
    """(key, start, end) of each member of the object or array whose opening bracket is at `start`."""
    found: list[tuple[str, int, int]] = []
    index = _skip(text, start + 1)
    if text[index] == closing:
        return found
    while True:
        key = ""
        if keyed:
            key, index = _DECODER.raw_decode(text, index)
            index = _skip(text, index)
            index = _skip(text, index + 1)  # the colon
        _, end = _DECODER.raw_decode(text, index)
        found.append((key, index, end))
        index = _skip(text, end)
        if text[index] == closing:
            return found
        index = _skip(text, index + 1)  # the comma


def _line_indent(text: str, index: int) -> str:
    """The leading whitespace of the line that holds `index`."""
    line = text[text.rfind("\n", 0, index) + 1 : index]
    return line[: len(line) - len(line.lstrip())]


def _indent_unit(sample: str, indent: str) -> str:
    """One level of indentation, read from the second line of an indented sample."""
    lines = sample.splitlines()
    inner = lines[1] if len(lines) > 1 else ""
    leading = inner[: len(inner) - len(inner.lstrip())]
    return leading[len(indent) :] if leading.startswith(indent) and len(leading) > len(indent) else "  "


def _style(sample: str, indent: str, newline: str) -> _Style:
    """The style of one statement as written (`sample`), whose first line is indented by `indent`."""
    if "\n" in sample:
        return _Style(indent, _indent_unit(sample, indent), newline=newline)
    parsed = json.loads(sample)
    for separators in ((",", ":"), (", ", ": ")):
        if json.dumps(parsed, separators=separators) == sample:
            return _Style(separators=separators)
    return _Style(separators=(", " if re.search(r",\s", sample) else ",", ": " if re.search(r'":\s', sample) else ":"))


def edited(text: str, remove: Iterable[int] = (), add: Iterable[dict[str, Any]] = ()) -> str:
    """The document with the statements at these indexes removed and these statements appended."""
    document = json.loads(text)
    dropped, added = set(remove), list(add)
    newline = "\r\n" if "\r\n" in text else "\n"
    members = {key: (start, end) for key, start, end in _items(text, _skip(text, 0), "}", keyed=True)}
    statement = document.get("Statement")
    if "Statement" not in members or not isinstance(statement, (list, dict)):
        kept = [s for i, s in enumerate(statement if isinstance(statement, list) else []) if i not in dropped]
        return json.dumps({**document, "Statement": kept + added})
    start, end = members["Statement"]
    if text[start] == "{":
        spans = [("", start, end)]
        opening = closing = ""
        style = _style(text[start:end], _line_indent(text, start), newline)
        separator = "," + (
            newline + style.indent if style.unit is not None else " " if style.separators[0] == ", " else ""
        )
    elif spans := _items(text, start, "]", keyed=False):
        first, last = spans[0], spans[-1]
        opening, closing = text[start + 1 : first[1]], text[last[2] : end - 1]
        style = _style(text[first[1] : first[2]], _line_indent(text, first[1]), newline)
        separator = (
            text[first[2] : spans[1][1]]
            if len(spans) > 1
            else "," + (opening or (" " if style.unit is None and style.separators[0] == ", " else ""))
        )
    else:
        key_indent = _line_indent(text, start)
        if "\n" in text:
            style = _Style(key_indent + _indent_unit(text, ""), _indent_unit(text, ""), newline=newline)
            opening, closing = newline + style.indent, newline + key_indent
        else:
            style, opening, closing = _style(text, "", newline), "", ""
        separator = "," + opening
    kept = [text[s:e] for index, (_, s, e) in enumerate(spans) if index not in dropped]
    body = separator.join(kept + [style.render(s) for s in added])
    listing = f"[{opening}{body}{closing}]" if body else "[]"
    return text[:start] + listing + text[end:]
