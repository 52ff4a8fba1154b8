"""Diagnosis: match a failed job's StatusMessage (or a refusal) to a known failure, with evidence.

The patterns match the stable part of AWS's messages (DESIGN section 6). A known failure carries the
ID of the preflight check that recognises it, so the evidence is that check's finding, read now; a
message that matches nothing is reported as unknown, never forced into a known failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..aws.context import Run
from ..core.errors import StepFailed
from ..troubleshooting import checks

KNOWN_FAILURES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("same-organization", re.compile(r"must be a member of the same organization"),
     "the source and destination accounts are not in one AWS Organization"),
    ("source-key-shared", re.compile(r"snapshot copy failed with error: Given key ID is not accessible"),
     "the destination account may not use the key that encrypts the snapshot"),
    ("target-vault-policy", re.compile(r"^Access Denied trying to call AWS Backup service"),
     "the destination vault's access policy does not let the source account copy in"),
    ("source-key-customer-managed", re.compile(r"Snapshots encrypted with the AWS Managed CMK can't be shared"),
     "the snapshot is encrypted with an AWS managed key, which no other account can use"),
    ("target-vault-customer-key", re.compile(r"destination Backup vault is encrypted with the default Backup "
                                             r"service managed key"),
     "the destination vault is encrypted with the AWS managed Backup key"),
    ("rds-single-hop", re.compile(r"Copy job from \S+ to \S+ cannot be initiated for RDS resources"),
     "an RDS backup cannot change account and Region in one copy"),
    ("cross-account-enabled", re.compile(r"Cross-account copy feature is not enabled"),
     "cross-account backup is not enabled for the organization"),
)
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
        return {"job": self.job_id, "kind": self.kind, "check": self.check_id, "cause": self.cause,
                "fix": self.fix, "message": self.message}


def match(message: str) -> tuple[str, str] | None:
    """(check ID, cause) of the known failure this message reports, or None."""
    for check_id, pattern, cause in KNOWN_FAILURES:
        if pattern.search(message or ""):
            return check_id, cause
    return None


def explain(run: Run, job_id: str, kind: str, state: str, message: str) -> Diagnosis:
    diagnosis = Diagnosis(job_id, kind, state, message)
    known = match(message)
    if known is None:
        return diagnosis
    diagnosis.check_id, diagnosis.cause = known
    finding = checks.run_checks(run, (diagnosis.check_id,))[0]
    diagnosis.fix = finding.fix or diagnosis.fix
    diagnosis.evidence = {"finding now": f"{finding.status}: {finding.finding}", **finding.evidence}
    return diagnosis


def failed_jobs(run: Run, copy_job_id: str | None = None) -> list[Diagnosis]:
    """Diagnose the named copy job, or every failed copy and backup job of the source account and Region."""
    backup = run.source("backup")
    if copy_job_id:
        try:
            job = backup.describe_copy_job(CopyJobId=copy_job_id)["CopyJob"]
        except backup.exceptions.ResourceNotFoundException:
            raise StepFailed(run.step, f"copy job {copy_job_id} is unknown to account {run.account('source')} in "
                             f"{run.source_region}", "check the ID, and that source_profile and source_region name "
                             "the account and Region that started the copy") from None
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
    return diagnoses
