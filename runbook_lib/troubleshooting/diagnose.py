"""Diagnosis: match a failed job's StatusMessage (or a refusal) to a known failure, with evidence.

The messages matched are the registry's (the stable part of what AWS says; docs/troubleshooting.md
lists them). A known failure carries the ID of the preflight check that recognises it, so the
evidence is that check's finding, read now; a message that matches nothing is reported as unknown,
never forced into a known failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..aws.context import Run
from ..core.errors import StepFailed
from . import checks, registry

UNKNOWN = "unknown"


@dataclass
class Diagnosis:
    job_id: str
    kind: str
    state: str
    message: str
    check_id: str = UNKNOWN
    cause: str = "no known failure matches this message"
    fix: str = "read the message; AWS Backup's troubleshooting guide lists more causes"
    evidence: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, str]:
        return {
            "job": self.job_id,
            "kind": self.kind,
            "check": self.check_id,
            "cause": self.cause,
            "fix": self.fix,
            "message": self.message,
        }


def explain(run: Run, job_id: str, kind: str, state: str, message: str) -> Diagnosis:
    diagnosis = Diagnosis(job_id, kind, state, message)
    known = registry.match(message, "copy" if kind == "hop" else kind)
    if known is None:
        return diagnosis
    diagnosis.check_id, diagnosis.cause = known.id, known.cause
    finding = checks.run_checks(run, (diagnosis.check_id,))[0]
    diagnosis.fix = finding.fix or diagnosis.fix
    diagnosis.evidence = {"finding now": f"{finding.status}: {finding.finding}", **finding.evidence}
    return diagnosis


def failed_jobs(run: Run, copy_job_id: str | None = None) -> list[Diagnosis]:
    """Diagnose the named copy job, or every failed copy and backup job of the source account and Region
    and every failed restore job of the destination account and Region (the restore drill's among them)."""
    backup = run.source("backup")
    if copy_job_id:
        try:
            job = backup.describe_copy_job(CopyJobId=copy_job_id)["CopyJob"]
        except backup.exceptions.ResourceNotFoundException:
            raise StepFailed(
                run.step,
                f"copy job {copy_job_id} is unknown to account {run.account('source')} in {run.source_region}",
                "check the ID, and that source_profile and source_region name "
                "the account and Region that started the copy",
            ) from None
        return [explain(run, job["CopyJobId"], "copy", job["State"], job.get("StatusMessage", ""))]
    diagnoses = [
        explain(run, job["CopyJobId"], "copy", job["State"], job.get("StatusMessage", ""))
        for page in backup.get_paginator("list_copy_jobs").paginate(ByState="FAILED")
        for job in page["CopyJobs"]
    ]
    diagnoses += [
        explain(run, job["BackupJobId"], "backup", job["State"], job.get("StatusMessage", ""))
        for page in backup.get_paginator("list_backup_jobs").paginate(ByState="FAILED")
        for job in page["BackupJobs"]
    ]
    diagnoses += [
        explain(run, job["RestoreJobId"], "restore", job["Status"], job.get("StatusMessage", ""))
        for page in run.target("backup").get_paginator("list_restore_jobs").paginate(ByStatus="FAILED")
        for job in page["RestoreJobs"]
    ]
    return diagnoses
