"""A run's rows: what each step did for each resource of its selection, in the run's state, and the results
table read from them (the notebook, the report, the summary and the exit code read it). For a run of one
resource, each write of its row also writes the step's record under the names its run folder always had
(one_record): the record layer users, the summary and the report read."""

from __future__ import annotations

import logging
from typing import Any

from ..aws.context import FLEET_ROWS, Run, selection
from ..core.steps import COPY_TO_TARGET, CREATE_BACKUP, SHARE_SOURCE_KEY, VERIFY_SOURCE_KEY, VERIFY_TARGET_KEY

log = logging.getLogger(__name__)

ROWS = FLEET_ROWS
HOPPED = "HOPPED"  # a row whose first hop completed: its second hop copies hop_recovery_point_arn across accounts
SELECTED = "selection"  # the run's last selection, in its state


def rows(run: Run, step: str) -> dict[str, dict[str, Any]]:
    """The step's row per resource (resource ARN: what the step did for it)."""
    return dict(run.state.get(step, ROWS, {}))


def record_rows(run: Run, step: str) -> dict[str, dict[str, Any]]:
    """The step's rows; for a run of one resource whose step kept its record at the top level (a run folder
    of before the rows), that record as its resource's row."""
    table = rows(run, step)
    chosen = selection(run)
    if table or len(chosen) != 1:
        return table
    row = _record_as_row(step, dict(run.state.load().get(step, {})))
    return {chosen[0]: row} if row else {}


def selected(run: Run) -> list[str]:
    """The run's selection as its last start of jobs kept it (a wait reads no resource again), else read now."""
    return list(run.state.get(SELECTED, "resources") or selection(run))


def only(run: Run) -> str | None:
    """The resource of a run that selects one (told in its own words, recorded under its own names), else None."""
    chosen = selected(run)
    return chosen[0] if len(chosen) == 1 else None


def update(run: Run, step: str, arn: str, **values: Any) -> None:
    update_rows(run, step, {arn: values})


def update_rows(run: Run, step: str, updates: dict[str, dict[str, Any]]) -> None:
    """Change many rows in one write of the run state (a round's news of every job at once)."""
    if not updates:
        return
    state = run.state.load()
    table = state.setdefault(step, {}).setdefault(ROWS, {})
    for arn, values in updates.items():
        table.setdefault(arn, {}).update(values)
    chosen = state.get(SELECTED, {}).get("resources") or selection(run)
    if len(chosen) == 1 and chosen[0] in table:
        state[step].update(one_record(step, chosen[0], table[chosen[0]]))
    run.state.save(state)


def remember_selection(run: Run) -> list[str]:
    """The run's selection, kept in its state: the results and the exit code are about these resources."""
    chosen = selection(run)
    if run.state.get(SELECTED, "resources") != chosen:
        run.state.record(SELECTED, resources=chosen)
    return chosen


def failure(why: str, fix: str, resource: str = "") -> dict[str, Any]:
    """A row's failure: why and the fix (logged, with the resource when given)."""
    log.warning("%s%s. Fix: %s", f"{resource}: " if resource else "", why, fix)
    return {"outcome": "FAILED", "reason": why, "fix": fix}


def fail(run: Run, step: str, arn: str, why: str, fix: str) -> None:
    update(run, step, arn, outcome="FAILED", reason=why, fix=fix)
    log.warning("%s: %s. Fix: %s", arn, why, fix)


def one_record(step: str, arn: str, row: dict[str, Any]) -> dict[str, Any]:
    """A run of one resource's record of a step, from its one row: the names state.json has always had for it
    (resource_arn, backup_job_id, recovery_point_arn, failed_backup_jobs...), which users and the report read."""
    if step == VERIFY_SOURCE_KEY:
        found = row.get("encryption") if row.get("outcome") == "VERIFIED" else None
        if not found:
            return {}
        return {
            "source_key_arn": row.get("source_key_arn"),
            "source_key_alias": found["recovery_point_key_alias"],
            "source_vault_key_alias": found["vault_key_alias"],
            "encryption": found,
        }
    if step == VERIFY_TARGET_KEY:
        found = row.get("encryption") if row.get("outcome") == "VERIFIED" else None
        if not found:
            return {}
        return {
            "destination_key_arn": found["vault_key_arn"],
            "destination_key_alias": found["recovery_point_key_alias"],
            "encryption": found,
        }
    if step == COPY_TO_TARGET:
        return _copy_record(row)
    if step != CREATE_BACKUP:
        return {}
    going = row.get("outcome") in ("RUNNING", "COMPLETED")
    record: dict[str, Any] = {"resource_arn": arn, "backup_job_id": row.get("job_id") if going else None}
    if row.get("recovery_point_arn"):
        record["recovery_point_arn"] = row["recovery_point_arn"]
    if row.get("failed_jobs"):
        record["failed_backup_jobs"] = row["failed_jobs"]
    return record


def _copy_record(row: dict[str, Any]) -> dict[str, Any]:
    """Step 04's record of a run of one resource: its copy job (or its two hops' jobs), what each copied and
    made, the checks that could not decide as each started, and the jobs that failed, by kind."""
    kind, outcome = row.get("kind", "copy"), row.get("outcome")
    going = outcome in ("RUNNING", "COMPLETED")
    failed = row.get("failed_jobs", [])
    record: dict[str, Any] = {
        "copy_job_id": row.get("job_id") if kind != "hop" and going else None,
        "hop_job_id": row.get("hop_job_id") if kind == "second" or (kind == "hop" and outcome != "FAILED") else None,
        "copy_started_undecided": row.get("undecided", []) if kind != "hop" else [],
        "hop_started_undecided": row.get("undecided", []) if kind != "copy" else [],
    }
    if kind == "copy":
        record["source_recovery_point_arn"] = row.get("source_recovery_point_arn")
    else:
        record["hop_source_recovery_point_arn"] = row.get("source_recovery_point_arn")
        if row.get("hop_recovery_point_arn"):
            record["hop_recovery_point_arn"] = record["source_recovery_point_arn"] = row["hop_recovery_point_arn"]
    for name in ("destination_recovery_point_arn", "copy_job_destination"):
        if row.get(name) and outcome == "COMPLETED":
            record[name] = row[name]
    for job_kind in ("copy", "hop"):
        jobs = [job for job in failed if job.get("kind", "copy") == job_kind]
        if jobs:
            record[f"failed_{job_kind}_jobs"] = jobs
    return record


STEPS_OF_ROWS = (CREATE_BACKUP, VERIFY_SOURCE_KEY, SHARE_SOURCE_KEY, COPY_TO_TARGET, VERIFY_TARGET_KEY)


def _record_as_row(step: str, recorded: dict[str, Any]) -> dict[str, Any]:
    """A run of one resource's record of a step (its top level in state.json) as that resource's row: what it
    produced, and how far it got (a job that failed last, while no other runs)."""
    kinds = {CREATE_BACKUP: ("backup",), COPY_TO_TARGET: ("copy", "hop")}.get(step, ())
    if step == CREATE_BACKUP and recorded.get("recovery_point_arn"):
        return {"outcome": "COMPLETED", "recovery_point_arn": recorded["recovery_point_arn"]}
    if step == COPY_TO_TARGET and recorded.get("destination_recovery_point_arn"):
        return {"outcome": "COMPLETED", "destination_recovery_point_arn": recorded["destination_recovery_point_arn"]}
    if any(recorded.get(f"{kind}_job_id") for kind in kinds):
        return {"outcome": "RUNNING"}
    if step == COPY_TO_TARGET and recorded.get("hop_recovery_point_arn"):
        return {"outcome": HOPPED}
    failed = [job for kind in kinds for job in recorded.get(f"failed_{kind}_jobs", [])]
    if failed:
        last = max(failed, key=lambda job: str(job.get("recorded", "")))
        why = f"job {last.get('job_id')} ended {last.get('state')}: {last.get('status_message') or 'no status message'}"
        return {"outcome": "FAILED", "reason": why, "fix": "run the step again: it starts a new job"}
    verified = {VERIFY_SOURCE_KEY: "source_key", VERIFY_TARGET_KEY: "destination_key"}.get(step)
    if verified and recorded.get(f"{verified}_arn"):
        return {"outcome": "VERIFIED", **{f"{verified}_{k}": recorded.get(f"{verified}_{k}") for k in ("arn", "alias")}}
    return {}


def results(state: dict[str, Any], resources: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per resource: its recovery point, its copy, the copy's key, and how it ended (the step
    it failed in, why and the fix; else how far it got). A run of one resource keeps its record at each step's
    top level: read as its row."""
    table = {step: state.get(step, {}).get(ROWS, {}) for step in STEPS_OF_ROWS}
    chosen = (
        resources
        or state.get(SELECTED, {}).get("resources")
        or list(dict.fromkeys(arn for step in STEPS_OF_ROWS for arn in table[step]))
    )
    if len(chosen) == 1:  # a step that kept no row (a run folder of before the rows): its record is the row
        table = {step: table[step] or {chosen[0]: _record_as_row(step, state.get(step, {}))} for step in STEPS_OF_ROWS}
    out = []
    for arn in chosen:
        of = {step: table[step].get(arn, {}) for step in STEPS_OF_ROWS}
        failed = next((step for step in STEPS_OF_ROWS if of[step].get("outcome") == "FAILED"), None)
        if failed:
            outcome = f"FAILED in {failed}: {str(of[failed].get('reason')).rstrip('.')}. Fix: {of[failed].get('fix')}"
        elif of[VERIFY_TARGET_KEY].get("outcome") == "VERIFIED":
            outcome = "COMPLETED"
        else:
            reached = next((step for step in reversed(STEPS_OF_ROWS) if of[step].get("outcome")), None)
            outcome = f"{of[reached]['outcome']} in {reached}" if reached else "not started"
        out.append(
            {
                "resource": arn,
                "recovery point": of[CREATE_BACKUP].get("recovery_point_arn", ""),
                "copy": of[COPY_TO_TARGET].get("destination_recovery_point_arn", ""),
                "destination key": of[VERIFY_TARGET_KEY].get("destination_key_alias")
                or of[VERIFY_TARGET_KEY].get("destination_key_arn", ""),
                "outcome": outcome,
            }
        )
    return out


def failures_line(state: dict[str, Any]) -> str:
    """One line on the rows that failed ('' when none did): how many, and the first with its fix."""
    table = results(state)
    failed = [row for row in table if row["outcome"].startswith("FAILED")]
    if not failed:
        return ""
    first = failed[0]
    return f"{len(failed)} of {len(table)} resources failed; first: {first['resource']}: {first['outcome']}"
