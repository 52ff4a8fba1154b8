"""The table of the sandbox's rules (sandbox/runbook_sandbox/rules.json) holds every message the sandbox answers.

The messages are read from the sandbox's code, as written: the text given to each AWS error it raises or
answers (an exception class named ...Exception or ...Error, a refusal of protocols.py, aws_error,
unknown_operation, a plain Response), each job failure (`.failure = ...`), each MSG_ constant, each value
named ...message and what a ...message function returns, and the messages of a protocol's *_ERRORS table.
A value filled in is `{}`. Adding a rule that answers a message without its row fails here; so does a row
whose message the sandbox no longer answers.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbook_sandbox import rules

SANDBOX = Path(rules.__file__).parent
# Modules whose messages are not AWS answers.
NOT_AWS_MODULES = {
    "control.py": "the sandbox's own control API: its refusals answer a test or a trainer, not an SDK",
    "process.py": "starts and stops the server, on the caller's side",
    "server.py": "the server's command line",
    "commands.py": "`runbook sandbox ...`: its errors answer a person at a terminal",
    "http_server.py": "HTTP transport: a request it cannot read gets one plain line before any service sees it",
}
# Errors whose messages are not AWS answers, wherever they are raised.
NOT_AWS_ERRORS = {
    "SettingsError": "a knob the control API refuses",
    "PolicyError": "an identity policy the control API refuses",
    "PlanNotFound": "a plan run-plan cannot find (the control API answers 404)",
    "InvalidToken": "moto's paginator's own error, answered as the NextToken refusal (responses.py)",
}
# Callables whose message is the argument at this position.
MESSAGE_ARGUMENT = {"aws_error": 2, "unknown_operation": 1, "Response": 0}
MESSAGE_NAME = re.compile(r"^MSG_|message$", re.IGNORECASE)


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else ""


def _text(node: ast.expr, constants: dict[str, str]) -> str | None:
    """The message an expression writes, values filled in as {}; None when it is not a message."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = [v.value if isinstance(v, ast.Constant) else "{}" for v in node.values]
        return "".join(str(part) for part in parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left, constants), _text(node.right, constants)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return _text(node.func.value, constants)
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def _branches(node: ast.expr) -> Iterator[ast.expr]:
    """The values an expression may take: both sides of `a if c else b` and of `a or b`."""
    if isinstance(node, ast.IfExp):
        yield from _branches(node.body)
        yield from _branches(node.orelse)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            yield from _branches(value)
    else:
        yield node


def _message_expressions(tree: ast.AST, refusals: set[str]) -> Iterator[tuple[int, ast.expr]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            callee = _name(node.func)
            if callee in NOT_AWS_ERRORS:
                continue
            if callee in MESSAGE_ARGUMENT and len(node.args) > MESSAGE_ARGUMENT[callee]:
                yield node.lineno, node.args[MESSAGE_ARGUMENT[callee]]
            elif callee.endswith(("Exception", "Error")) or callee in refusals:
                yield from ((node.lineno, kw.value) for kw in node.keywords if kw.arg in ("msg", "message"))
                yield from ((node.lineno, arg) for arg in node.args[:1])
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = _name(node.targets[0])
            if target == "failure" or MESSAGE_NAME.search(target):
                yield node.lineno, node.value
            elif target.endswith("_ERRORS") and isinstance(node.value, ast.Dict):
                for value in node.value.values:
                    if isinstance(value, ast.Tuple) and len(value.elts) == 2:
                        yield node.lineno, value.elts[1]
        elif isinstance(node, ast.FunctionDef) and "message" in node.name:
            returns = (n for n in ast.walk(node) if isinstance(n, ast.Return) and n.value is not None)
            yield from ((r.lineno, r.value) for r in returns if r.value is not None)


def _trees() -> dict[str, ast.Module]:
    return {
        str(path.relative_to(SANDBOX)): ast.parse(path.read_text(), str(path))
        for path in sorted(SANDBOX.rglob("*.py"))
        if path.name not in NOT_AWS_MODULES
    }


def _constants(trees: dict[str, ast.Module]) -> dict[str, str]:
    """Every module-level string constant of the sandbox (MSG_..., INVALID_TOKEN), by name."""
    found = {}
    for tree in trees.values():
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                text = _text(node.value, {})
                if text is not None and node.targets[0].id.isupper():
                    found[node.targets[0].id] = text
    return found


def _refusal_classes(trees: dict[str, ast.Module]) -> set[str]:
    return {
        node.name
        for tree in trees.values()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and any(_name(base) == "Refusal" for base in node.bases)
    }


def answered_messages(trees: dict[str, ast.Module] | None = None) -> dict[str, str]:
    """Every message the sandbox's code answers, as a template -> where it is written (module:line)."""
    trees = _trees() if trees is None else trees
    constants, refusals = _constants(trees), _refusal_classes(trees)
    found: dict[str, str] = {}
    for module, tree in trees.items():
        for line, expression in _message_expressions(tree, refusals):
            for branch in _branches(expression):
                text = _text(branch, constants)
                if text:
                    found.setdefault(rules.template(text), f"{module}:{line}")
    return found


def test_every_message_the_sandbox_answers_has_a_row():
    table = rules.messages()
    missing = sorted(f"{where}: {message!r}" for message, where in answered_messages().items() if message not in table)
    assert not missing, "messages the sandbox answers that rules.json does not hold:\n" + "\n".join(missing)


def test_every_row_message_is_one_the_sandbox_answers():
    answered = answered_messages()
    stale = sorted(f"{row_id}: {message!r}" for message, row_id in rules.messages().items() if message not in answered)
    assert not stale, "rows whose message the sandbox no longer answers:\n" + "\n".join(stale)


def test_a_new_message_without_a_row_is_found():
    """A rule added to the sandbox with a message of its own, in any of the forms the sandbox writes them."""
    source = """
MSG_NEW = "A new rule refuses {thing}."
def start(job, name):
    raise InvalidRequestException(msg=f"Vault {name} is frozen.")
def finish(job):
    job.failure = "The job ran out of time." if job.late else MSG_NEW.format(thing="it")
"""
    found = answered_messages({"new_rule.py": ast.parse(source)})
    assert set(found) == {"A new rule refuses {}.", "Vault {} is frozen.", "The job ran out of time."}
    assert found["Vault {} is frozen."] == "new_rule.py:4"
    assert not set(found) & set(rules.messages())


def test_every_row_has_a_source_read_on_a_date_or_says_why_it_is_assumed():
    table = rules.table()
    ids = [row["id"] for row in table["rules"]]
    assert len(ids) == len(set(ids)), "rule ids repeat"
    for row in table["rules"]:
        assert row.get("source") or row.get("assumed"), f"{row['id']} has neither a source nor a reason"
        if row.get("source"):
            source = table["sources"][row["source"]]
            assert source["url"].startswith("https://") and source["title"], row["id"]
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", source["read"]), row["id"]
        if row.get("messages"):
            assert row["wording"] in rules.WORDINGS, row["id"]
    unused = set(table["sources"]) - {row.get("source") for row in table["rules"]}
    assert not unused, f"sources no row cites: {sorted(unused)}"


def test_the_readme_tables_show_each_rule_with_its_source():
    simplified = [row for row in rules.rules() if row.get("simplification")]
    lines = rules.simplifications_table().splitlines()
    assert lines[0] == "| area | AWS | sandbox | source |"
    assert len(lines) == 2 + len(simplified)
    signatures = "| request signatures | verified | only the access key ID is checked |"
    assert lines[2].startswith(f"{signatures} [Amazon RDS API Reference: Common Errors](https://docs.aws.amazon.com/")
    rendered = rules.rules_table()
    for row in rules.rules():
        assert f"| `{row['id']}` |" in rendered
    copy_row = next(line for line in rendered.splitlines() if line.startswith("| `copy.not-same-organization` |"))
    assert (
        "`Copy job failed. Both source and destination account must be a member of the same organization.`" in copy_row
    )
    assert "(https://repost.aws/knowledge-center/backup-troubleshoot-cross-account-copy), read 2026-12-07" in copy_row


@pytest.mark.parametrize("module", sorted(NOT_AWS_MODULES))
def test_the_modules_left_out_exist(module):
    """A module is left out by name: one that no longer exists is a stale entry."""
    assert (SANDBOX / module).exists()
