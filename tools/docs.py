"""Write the repository's pages derived from code: the site's IAM policies, parameters, resource types and
sandbox simplifications, the trainers' guide of known failures, the trainers' parameter files, and the
picture of a run that the README and the site show.

A tool of the repository, not of the library: it reads the sandbox's rules table too, which the library
reaches only through AWS profiles. Run `python -m tools.docs` after changing permissions.py, params.py, the
capability table (data/resource_types.json), the sandbox's rules.json, the registry of known failures or the
report's drawing; a test fails while a page and its source disagree (`stale()` names the page).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import yaml

from runbook_lib.app import report
from runbook_lib.core import params, policy_files, resource_types
from runbook_lib.core.steps import (
    COPY_TO_TARGET,
    CREATE_BACKUP,
    DEFAULT,
    PREREQUISITES,
    VERIFY_SOURCE_KEY,
    VERIFY_TARGET_KEY,
)
from runbook_lib.troubleshooting import registry
from runbook_sandbox import rules as sandbox_rules

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GUIDE = DOCS / "troubleshooting.md"
PERMISSIONS = DOCS / "accounts" / "permissions.md"
PARAMETERS = DOCS / "reference" / "parameters.md"
RESOURCE_TYPES = DOCS / "reference" / "resource-types.md"
SANDBOX_MOTO = ROOT / "sandbox" / "docs" / "moto.md"
RUN_PICTURE = DOCS / "images" / "run.svg"
TRAINER_FILES = ROOT / "parameters" / "troubleshooting"


def lessons_table() -> str:
    """The guide's table: one row per lesson of the registry, in lesson order."""
    rows = [
        "| # | check | scenario | trainer file | what the learners see | the fix | AWS's message |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for failure in registry.LESSONS:
        lesson = failure.lesson
        assert lesson is not None
        rows.append(
            f"| {lesson.number} | `{failure.id}` | `{lesson.scenario}` | "
            f"`{registry.trainer_file(failure)}` | {lesson.shows} | {lesson.fix} | {failure.aws_message} |"
        )
    return "\n".join(rows)


def checks_table() -> str:
    """Every check of the registry: when it must pass, the cause it names, and whether the runbook fixes it."""
    rows = ["| check | must pass before | cause | `runbook fix` |", "| --- | --- | --- | --- |"]
    for failure in registry.FAILURES:
        rows.append(
            f"| `{failure.id}` | the {failure.before} | {failure.cause} | {'yes' if failure.fixable else 'no'} |"
        )
    return "\n".join(rows)


SECTIONS: dict[Path, dict[str, Callable[[], str]]] = {
    PERMISSIONS: {"permissions": lambda: policy_files.readme_table(params.validate({}, check_profiles=False))},
    PARAMETERS: {"parameters": params.reference_table},
    RESOURCE_TYPES: {"resource-types": resource_types.readme_table},
    SANDBOX_MOTO: {"sandbox-simplifications": sandbox_rules.simplifications_table},
    GUIDE: {"lessons": lessons_table, "checks": checks_table},
}

# The walkthrough's run as `make demo` ends it on the sandbox: what the picture of a run shows.
EXAMPLE_RUN = {
    PREREQUISITES: {"source_account": "222222222222", "target_account": "333333333333"},
    CREATE_BACKUP: {"recovery_point_arn": "arn:aws:ec2:us-east-1::snapshot/snap-005a92e30a54bc866"},
    VERIFY_SOURCE_KEY: {"source_key_alias": "alias/cmkSource"},
    COPY_TO_TARGET: {"destination_recovery_point_arn": "arn:aws:ec2:eu-west-1::snapshot/snap-0f5c303a879afa9ad"},
    VERIFY_TARGET_KEY: {"destination_key_alias": "alias/cmkTarget"},
}


def run_picture() -> str:
    """The report's picture of the copy (report.topology), for the walkthrough's run: a file of its own."""
    steps = [report.StepRow(step, "ok", 0.0, "") for step in DEFAULT]
    svg = report.topology(EXAMPLE_RUN, params.validate({"apply": True}, check_profiles=False), steps)
    # In report.html the page gives the namespace and the font; a file of its own names them.
    own = "<svg xmlns='http://www.w3.org/2000/svg' font-family='system-ui,-apple-system,\"Segoe UI\",sans-serif' "
    return svg.replace("<svg ", own, 1) + "\n"


def marked(name: str, producer: Callable[[], str]) -> str:
    return f"<!-- generated: {name} -->\n{producer()}\n<!-- end generated: {name} -->"


def trainer_text(failure: registry.KnownFailure) -> str:
    """A trainer file: what differs from parameters/sandbox.yaml for this lesson, the scenario included."""
    lesson = failure.lesson
    assert lesson is not None
    name = registry.trainer_file(failure)
    values = {"sandbox_scenario": lesson.scenario, "force_copy": True, **lesson.overlay}
    return (
        f"# Failure {lesson.number}, {failure.id}: {lesson.story}\n"
        f"# Generated from the registry of known failures (python -m tools.docs). Over the sandbox's file:\n"
        f"#   runbook sandbox reset --scenario {lesson.scenario}\n"
        f"#   runbook run parameters/sandbox.yaml parameters/troubleshooting/{name}"
        + (f" --steps {lesson.steps}\n" if lesson.steps else "\n")
        + "# force_copy lets the copy (or the drill's restore) start although a check says it will fail, to show "
        "AWS's message.\n" + yaml.safe_dump(values, sort_keys=False, allow_unicode=True)
    )


def expected() -> dict[Path, str]:
    """Every derived page as it should read now."""
    pages: dict[Path, str] = {}
    for path, sections in SECTIONS.items():
        text = path.read_text()
        for name, producer in sections.items():
            pattern = re.compile(rf"<!-- generated: {name} -->.*?<!-- end generated: {name} -->", re.S)
            if not pattern.search(text):
                raise LookupError(f"{path} has no generated section {name}")
            section = marked(name, producer)
            text = pattern.sub(lambda _: section, text)
        pages[path] = text
    pages[RUN_PICTURE] = run_picture()
    for failure in registry.LESSONS:
        pages[TRAINER_FILES / registry.trainer_file(failure)] = trainer_text(failure)
    return pages


def stale() -> list[Path]:
    """The derived pages that differ from their source, and trainer files no lesson makes."""
    pages = expected()
    differing = [path for path, text in pages.items() if not path.exists() or path.read_text() != text]
    strays = [path for path in sorted(TRAINER_FILES.glob("*.yaml")) if path not in pages]
    return differing + strays


def regenerate() -> None:
    pages = expected()
    for path in sorted(TRAINER_FILES.glob("*.yaml")):
        if path not in pages:
            path.unlink()
    for path, text in pages.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


if __name__ == "__main__":
    regenerate()
