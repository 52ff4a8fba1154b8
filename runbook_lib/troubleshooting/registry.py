"""The known failures, one record each: everything the runbook knows about a way a copy goes wrong.

A record names the check that predicts the failure (same ID), the stable part of the message AWS
ends the job with (what diagnosis matches), the cause, whether the runbook can fix it, and the
lesson a trainer gives with it: the sandbox scenario, the parameters over parameters/sandbox.yaml,
what the learners see and the fix. The checks, diagnosis, the fixes, the `runbook fix` choices,
notebook 06, the trainer files and docs/troubleshooting.md all read this table; tests fail when one
of them has an entry without a record here, or the other way round.

Adding a failure: a record here, its check (`@check(ID)` in checks.py), its rule in the sandbox
(sandbox/backup/copy_rules.py), and `python -m tools.docs` to write the guide and trainer file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core import steps as step_names

# When a check must pass at the latest: before the backup is started, before the copy is, or before the
# restore drill restores the copy. The steps' records say which steps run the checks of each phase.
BEFORE_BACKUP, BEFORE_COPY, BEFORE_RESTORE = step_names.BEFORE_BACKUP, step_names.BEFORE_COPY, step_names.BEFORE_RESTORE


@dataclass(frozen=True)
class Lesson:
    """How a trainer shows the failure on the sandbox."""

    number: int
    scenario: str
    story: str
    shows: str
    fix: str
    overlay: Mapping[str, Any] = field(default_factory=dict)
    steps: str = ""  # the run's --steps, when the failure shows after the default steps
    # The sandbox's knobs the trainer sets after the reset (`runbook sandbox configure`), for a failure that is
    # AWS's answer rather than the world's: a reset forgets them.
    sandbox_settings: Mapping[str, Any] = field(default_factory=dict)
    # Whether `runbook check` names the failure before any copy. A refusal AWS decides on its side (rds-single-hop
    # since October 2025) shows only in its answer; the run folder keeps it, and the check names it from then on.
    seen_before_copy: bool = True


@dataclass(frozen=True)
class KnownFailure:
    id: str
    title: str
    before: str
    cause: str
    aws_message: str = ""
    pattern: re.Pattern[str] | None = None
    fixable: bool = False
    lesson: Lesson | None = None
    jobs: tuple[str, ...] = ("backup", "copy")  # the kinds of job that end with its message

    def matches(self, message: str, kind: str = "") -> bool:
        """Whether AWS's message (of a job of this kind, when given) is this failure's."""
        if kind and kind not in self.jobs:
            return False
        return self.pattern is not None and bool(self.pattern.search(message or ""))


FAILURES: tuple[KnownFailure, ...] = (
    KnownFailure(
        "same-organization",
        "accounts in different organizations",
        BEFORE_BACKUP,
        "the source and destination accounts are not in one AWS Organization",
        "Copy job failed. Both source and destination account must be a member of the same organization.",
        re.compile(r"must be a member of the same organization"),
        lesson=Lesson(
            1,
            "outside-organization",
            "The target account is outside the source's organization.",
            "the accounts' organizations differ",
            "invite the target into the organization; in the sandbox: `runbook sandbox join --account 333333333333`",
        ),
    ),
    KnownFailure(
        "cross-account-enabled",
        "cross-account backup turned off",
        BEFORE_BACKUP,
        "cross-account backup is not enabled for the organization",
        "Copy job failed. Cross-account copy feature is not enabled for the current organization.",
        re.compile(r"Cross-account copy feature is not enabled"),
        fixable=True,
        lesson=Lesson(
            7,
            "cross-account-locked",
            "Cross-account backup is off, and a service control policy stops the management account turning it on.",
            "step 00 cannot enable cross-account backup: the management account is denied",
            "lift the restriction in the management account, then `runbook fix ... cross-account-enabled`",
        ),
    ),
    KnownFailure(
        "role-exists",
        "no backup role",
        BEFORE_BACKUP,
        "the IAM role AWS Backup should assume does not exist in the source account",
    ),
    KnownFailure(
        "target-vault-customer-key",
        "destination vault under the AWS managed key",
        BEFORE_BACKUP,
        "the destination vault is encrypted with the AWS managed Backup key",
        "Copy job failed because the destination Backup vault is encrypted with the default Backup service managed "
        "key. The contents of this vault cannot be copied. Only the contents of a Backup vault encrypted by a "
        "customer master key (CMK) may be copied.",
        re.compile(r"destination Backup vault is encrypted with the default Backup service managed key"),
        lesson=Lesson(
            5,
            "default-key-target-vault",
            "CABTargetVault already exists under the default Backup key.",
            "`CABTargetVault` uses the default Backup key, which can never change",
            "create another vault under `cmkTarget` (`target_vault_name`) and copy there",
        ),
    ),
    KnownFailure(
        "target-vault-policy",
        "destination vault policy shuts the source out",
        BEFORE_BACKUP,
        "the destination vault's access policy does not let the source account copy in",
        "Access Denied trying to call AWS Backup service",
        re.compile(r"Access Denied trying to call AWS Backup service"),
        fixable=True,
        lesson=Lesson(
            3,
            "target-vault-denies-source",
            "CABTargetVault's access policy denies the source account, so the Allow step 00 adds cannot help.",
            "the Allow added in step 00 loses to the vault policy's Deny",
            "`runbook fix ... target-vault-policy` plans removing the Deny (it names only the source "
            "account) and writes the Allow",
        ),
    ),
    KnownFailure(
        "source-key-customer-managed",
        "backup under an AWS managed key",
        BEFORE_BACKUP,
        "the snapshot is encrypted with an AWS managed key, which no other account can use",
        "Snapshots encrypted with the AWS Managed CMK can't be shared. Specify another snapshot. (Service: "
        "AmazonEC2; Status Code: 400; Error Code: InvalidParameter; Request ID: ...; Proxy: null)",
        re.compile(r"Snapshots encrypted with the AWS Managed CMK can't be shared"),
        fixable=True,
        lesson=Lesson(
            4,
            "walkthrough",
            "The volume is encrypted with the AWS managed key aws/ebs.",
            "the snapshot uses `aws/ebs`, which no other account can use",
            "`runbook fix ... source-key-customer-managed` copies the snapshot under `cmkSource` and makes "
            "a volume of it; back that volume up and copy it",
            {"resource_name": "default-key-volume"},
        ),
    ),
    KnownFailure(
        "rds-single-hop",
        "database copy refused across account and Region at once",
        BEFORE_BACKUP,
        "AWS refused to copy the database backup (RDS, Aurora, Neptune or DocumentDB) to another account and "
        "another Region in one copy job, as it did before October 2025 and may still where single-action copies "
        "have not reached",
        "Copy job from us-east-1 to eu-west-1 cannot be initiated for RDS resources. Feature is not supported for "
        "provided resource type.",
        re.compile(r"Copy job from \S+ to \S+ cannot be initiated for \w+ resources"),
        lesson=Lesson(
            6,
            "walkthrough",
            "AWS refuses one copy job across account and Region for the RDS instance (in the sandbox, after the "
            "reset: runbook sandbox configure --refuse-one-action-types RDS).",
            "StartCopyJob refuses at once; step 04 names rds-single-hop and the parameter two_hop_types",
            "copy in two hops: `two_hop_types: [RDS]` (step 00 makes the hop vault, step 03 shares its key, step 04 "
            "runs both hops), or keep the Region",
            {
                "resource_arn": "arn:aws:rds:us-east-1:222222222222:db:walkthrough-db",
                "resource_name": "",
            },
            sandbox_settings={"refuse_one_action_types": ["RDS"]},
            seen_before_copy=False,
        ),
    ),
    KnownFailure(
        "recovery-point-ready",
        "no completed recovery point",
        BEFORE_COPY,
        "there is no completed, warm recovery point of the resource to copy",
    ),
    KnownFailure(
        "source-key-shared",
        "source key not shared",
        BEFORE_COPY,
        "the destination account may not use the key that encrypts the snapshot",
        "EBS snapshot copy failed with error: Given key ID is not accessible. You must have DescribeKey permissions "
        "on the default CMK.",
        re.compile(r"snapshot copy failed with error: Given key ID is not accessible"),
        fixable=True,
        lesson=Lesson(
            2,
            "key-policy-denies-target",
            "cmkSource's policy denies the target account, so sharing it (step 03) cannot help.",
            "step 03 names the Deny and, forced, adds its statements anyway: the explicit Deny wins",
            "`runbook fix ... source-key-shared` plans, as one diff, removing the Deny (it names only the "
            "target account) and sharing the key; in `walkthrough`, skipping step 03 shows the plain case",
        ),
    ),
    KnownFailure(
        "restore-role-exists",
        "no restore role",
        BEFORE_RESTORE,
        "the IAM role AWS Backup should restore with does not exist in the destination account",
    ),
    KnownFailure(
        "restore-key-usable",
        "destination key shuts the restore role out",
        BEFORE_RESTORE,
        "the destination key's policy (or the restore role's own policies) does not let the restore role use "
        "the key, so the restored volume cannot be made",
        "User: arn:aws:sts::333333333333:assumed-role/AWSBackupDefaultServiceRole/AWSBackup-AWSBackupDefaultServiceRole"
        " is not authorized to perform: kms:CreateGrant on resource: arn:aws:kms:eu-west-1:333333333333:key/... with "
        "an explicit deny in a resource-based policy",
        re.compile(r"is not authorized to perform: kms:\S+ on resource: arn:aws[\w-]*:kms:"),
        fixable=True,
        jobs=("restore",),
        lesson=Lesson(
            8,
            "target-key-denies-restore",
            "cmkTarget's policy denies the destination account's backup role, which restores run as.",
            "the copy completes and verifies; step 08 stops before the restore: the key's Deny shuts the restore "
            "role out",
            "`runbook fix ... restore-key-usable` plans removing the Deny (it names only the restore role); or "
            "restore with another role (`restore_role_name`)",
            steps=",".join(step_names.run_reaching(BEFORE_RESTORE)),
        ),
    ),
)

BY_ID = {failure.id: failure for failure in FAILURES}
CHECKS_BEFORE_BACKUP = tuple(f.id for f in FAILURES if f.before == BEFORE_BACKUP)
CHECKS_BEFORE_COPY = tuple(f.id for f in FAILURES if f.before in (BEFORE_BACKUP, BEFORE_COPY))
CHECKS_BEFORE_RESTORE = tuple(f.id for f in FAILURES if f.before == BEFORE_RESTORE)
CHECKS_ALL = tuple(f.id for f in FAILURES)
FIXABLE = tuple(f.id for f in FAILURES if f.fixable)
LESSONS = tuple(sorted((f for f in FAILURES if f.lesson), key=lambda f: f.lesson.number))  # type: ignore[union-attr]


def match(message: str, kind: str = "") -> KnownFailure | None:
    """The known failure whose AWS message this is (for a job of this kind, when given), or None: a
    message is never forced into one."""
    return next((f for f in FAILURES if f.matches(message, kind)), None)


def trainer_file(failure: KnownFailure) -> str:
    """The trainer file's name, under parameters/troubleshooting/."""
    assert failure.lesson is not None
    return f"{failure.lesson.number}-{failure.id}.yaml"
