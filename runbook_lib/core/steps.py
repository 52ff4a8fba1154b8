"""The steps, one record each: everything the runbook says of a step besides its code.

A record names the step's notebook, its title, the line that tells what it does, the parameters it
reads, the actions it may call in each account, its call budget and the phases of checks it runs.
The runner gives a notebook the parameters its record lists, permissions.py writes the policies from
its actions, the troubleshooting registry finds the step that checks a phase, and `python -m
tools.notebook_cells` writes each notebook's title and parameters cell from it (a test fails while one
differs). Adding a parameter to a step is one entry here, beside its field in params.py and its code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
PREREQUISITES = "00_prerequisites"
CREATE_BACKUP = "01_create_backup"
VERIFY_SOURCE_KEY = "02_verify_source_key"
SHARE_SOURCE_KEY = "03_share_source_key"
COPY_TO_TARGET = "04_copy_to_target"
VERIFY_TARGET_KEY = "05_verify_target_key"
TROUBLESHOOT = "06_troubleshoot"
CLEANUP = "07_cleanup"
RESTORE_DRILL = "08_restore_drill"
AUTOMATE = "09_automate"

# The accounts a step acts in, as permissions.py and the policy files name them.
SOURCE, TARGET, MANAGEMENT = "source", "target", "management"

# Sets of actions several steps call, listed in a record by name: permissions.py says what each holds in
# each account (what the preflight's checks read, what finding the run's resource by name reads, what the
# checks before a restore read).
PREFLIGHT_READS = "(the preflight's reads)"
RESOURCE_LOOKUP_READS = "(the resource lookup's reads)"
RESTORE_CHECK_READS = "(the restore checks' reads)"

# When a known failure's check must pass at the latest (troubleshooting/registry.py): before the backup is
# started, before the copy is, or before the restore drill restores the copy.
BEFORE_BACKUP, BEFORE_COPY, BEFORE_RESTORE = "backup", "copy", "restore"

# What every step's notebook reads: where the run's state is, and whether it changes AWS.
RUN = ("apply", "run_dir")
# What names the resource, or the fleet of them, that a step works on.
RESOURCE = ("resource_arn", "resource_name", "resources", "resource_tags")
# How the copy goes: in one job or in two hops (the capability table, and the parameters that overrule it).
HOPS = ("one_action_types", "two_hop_types", "two_hops")


@dataclass(frozen=True)
class Step:
    """One step of the runbook: its notebook is `notebooks/<name>.ipynb`."""

    name: str
    title: str  # the notebook's heading, after "Step NN: "
    does: str  # what the step does, in one line (the CLI's list of steps, the docs)
    parameters: tuple[str, ...]  # the parameters it reads, in its notebook's order (names of params.py's schema)
    actions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # per account, actions and sets of them
    call_budget: int | None = None  # AWS calls on the sandbox's walkthrough, job polls left out (none: not measured)
    check_phases: tuple[str, ...] = ()  # the known failures' checks it runs before it acts, by BEFORE_*

    @property
    def number(self) -> str:
        """The step's two digits, as every text names it: "05"."""
        return self.name[:2]

    @property
    def heading(self) -> str:
        """The first line of the notebook's first cell."""
        return f"# Step {self.number}: {self.title}"

    @property
    def notebook(self) -> Path:
        return notebook_path(self.name)


# In the order a run takes them: the restore drill needs the copy, and the automation the vaults, so both run
# before the cleanup. Call budgets: at most 46 in all; a run reads each fact once (aws/facts.py), so a step pays
# only for what it alone reads or changes, and tests/runbook/test_batch_runs.py fails when a step goes over.
STEPS: tuple[Step, ...] = (
    Step(
        PREREQUISITES,
        "prerequisites",
        "one Organization, cross-account backup enabled, the backup role, both vaults under customer managed keys, "
        "the destination vault's access policy",
        (
            "source_profile",
            "source_region",
            "target_profile",
            "target_region",
            "management_profile",
            *RESOURCE,
            *HOPS,
            "source_vault_name",
            "source_vault_key",
            "target_vault_name",
            "target_vault_key",
            "hop_vault_name",
            "hop_vault_key",
            "iam_role_name",
            "force_copy",
            "strict_checks",
            *RUN,
        ),
        {
            SOURCE: (PREFLIGHT_READS, "backup:ListBackupVaults", "backup:CreateBackupVault"),
            TARGET: (
                PREFLIGHT_READS,
                "backup:ListBackupVaults",
                "backup:CreateBackupVault",
                "backup:PutBackupVaultAccessPolicy",
            ),
            MANAGEMENT: ("sts:GetCallerIdentity", "backup:UpdateGlobalSettings"),
        },
        # pickers' vault lists (2), both accounts (2) and organizations (2), the role, the volume, the keys
        # tables (2 alias listings, 7 keys, 3 policies), both vaults before and after they are made (4),
        # global settings before and after (2), the vault policy, the 4 changes, the source vault's points,
        # and the management profile's account (the preflight refuses one that is not the organization's
        # management account before any change, while cross-account backup is off)
        call_budget=33,
        check_phases=(BEFORE_BACKUP, BEFORE_COPY),
    ),
    Step(
        CREATE_BACKUP,
        "back up the encrypted volume",
        "an on-demand backup with retention and tags, followed to its recovery point",
        (
            "source_profile",
            "source_region",
            *RESOURCE,
            "source_vault_name",
            "iam_role_name",
            "delete_after_days",
            "move_to_cold_storage_after_days",
            "recovery_point_tags",
            "poll_seconds",
            "max_wait_minutes",
            "max_concurrent_jobs",
            *RUN,
        ),
        {
            SOURCE: (
                "sts:GetCallerIdentity",
                "ec2:DescribeVolumes",
                "rds:DescribeDBInstances",
                "rds:DescribeDBClusters",
                "elasticfilesystem:DescribeFileSystems",
                "backup:StartBackupJob",
                "backup:DescribeBackupJob",
                "backup:ListBackupJobs",
                "iam:GetRole",
                "iam:PassRole",
                "backup:DescribeBackupVault",
                "backup:ListRecoveryPointsByBackupVault",
                "kms:DescribeKey",
                "kms:ListAliases",
                "kms:GetKeyPolicy",
            ),
        },
        call_budget=2,  # StartBackupJob, the source vault's recovery points
    ),
    Step(
        VERIFY_SOURCE_KEY,
        "which key encrypts the backup?",
        "the snapshot is encrypted with the volume's key, not the source vault's",
        ("source_profile", "source_region", *RESOURCE, "source_vault_name", "source_vault_key", *RUN),
        {
            SOURCE: (
                "sts:GetCallerIdentity",
                "backup:DescribeRecoveryPoint",
                "backup:DescribeBackupVault",
                "backup:ListRecoveryPointsByBackupVault",
                "ec2:DescribeVolumes",
                "rds:DescribeDBInstances",
                "rds:DescribeDBClusters",
                "elasticfilesystem:DescribeFileSystems",
                "ec2:DescribeSnapshots",
                "kms:DescribeKey",
                "kms:ListAliases",
                "kms:GetKeyPolicy",
            ),
        },
        call_budget=2,  # the recovery point and its snapshot
    ),
    Step(
        SHARE_SOURCE_KEY,
        "share the source key with the destination account",
        "the destination account added to the source key's policy, every statement kept",
        (
            "source_profile",
            "source_region",
            "target_profile",
            "target_region",
            *RESOURCE,
            *HOPS,
            "source_vault_name",
            "hop_vault_name",
            "hop_vault_key",
            "force_copy",
            "source_vault_key",
            *RUN,
        ),
        {
            SOURCE: (
                "sts:GetCallerIdentity",
                "kms:GetKeyPolicy",
                "kms:PutKeyPolicy",
                "kms:DescribeKey",
                "kms:ListAliases",
                "backup:DescribeRecoveryPoint",
                "backup:DescribeBackupVault",
                "backup:ListRecoveryPointsByBackupVault",
                "ec2:DescribeSnapshots",
                "ec2:DescribeVolumes",
                "rds:DescribeDBInstances",
                "rds:DescribeDBClusters",
                "elasticfilesystem:DescribeFileSystems",
            ),
            TARGET: ("sts:GetCallerIdentity", "organizations:DescribeOrganization"),
        },
        call_budget=3,  # the policy as it is now (an edit starts from it), PutKeyPolicy, and read back
    ),
    Step(
        COPY_TO_TARGET,
        "copy to the destination account's vault in the other Region",
        "the copy to the destination vault in the other Region, followed to its end (in two hops for a type "
        "two_hop_types names)",
        (
            "source_profile",
            "source_region",
            "target_profile",
            "target_region",
            *RESOURCE,
            *HOPS,
            "source_vault_name",
            "target_vault_name",
            "hop_vault_name",
            "iam_role_name",
            "delete_after_days",
            "move_to_cold_storage_after_days",
            "poll_seconds",
            "max_wait_minutes",
            "max_concurrent_jobs",
            "force_copy",
            "strict_checks",
            *RUN,
        ),
        {
            SOURCE: (
                PREFLIGHT_READS,
                "backup:StartCopyJob",
                "backup:DescribeCopyJob",
                "backup:ListCopyJobs",
                "iam:PassRole",
            ),
            TARGET: (PREFLIGHT_READS,),
        },
        call_budget=3,  # the recovery point for the checks, StartCopyJob, the copy jobs table
        check_phases=(BEFORE_BACKUP, BEFORE_COPY),
    ),
    Step(
        VERIFY_TARGET_KEY,
        "prove the copy is encrypted with the destination key",
        "the copy and its snapshot are encrypted with the destination vault's key",
        (
            "source_profile",
            "source_region",
            "target_profile",
            "target_region",
            *RESOURCE,
            "target_vault_name",
            "target_vault_key",
            *RUN,
        ),
        {
            SOURCE: (RESOURCE_LOOKUP_READS, "backup:DescribeCopyJob"),
            TARGET: (
                "backup:DescribeRecoveryPoint",
                "backup:DescribeBackupVault",
                "backup:ListRecoveryPointsByBackupVault",
                "ec2:DescribeSnapshots",
                "kms:DescribeKey",
                "kms:ListAliases",
                "kms:GetKeyPolicy",
            ),
        },
        call_budget=3,  # the copy, its snapshot, the target vault's recovery points
    ),
    Step(
        TROUBLESHOOT,
        "troubleshooting — why would a copy fail, why did one fail, and the fix",
        "the checks before a copy, the diagnosis of failed copy and backup jobs with evidence, and the fixes the "
        "runbook can make",
        (
            "source_profile",
            "source_region",
            "target_profile",
            "target_region",
            "management_profile",
            *RESOURCE,
            *HOPS,
            "source_vault_name",
            "target_vault_name",
            "hop_vault_name",
            "hop_vault_key",
            "iam_role_name",
            "copy_job_id",
            "reencrypt_key",
            "strict_checks",
            *RUN,
        ),
        {
            SOURCE: (
                PREFLIGHT_READS,
                "backup:ListCopyJobs",
                "backup:ListBackupJobs",
                "backup:DescribeCopyJob",
                "kms:PutKeyPolicy",
                "ec2:CreateSnapshot",
                "ec2:CopySnapshot",
                "ec2:DeleteSnapshot",
                "ec2:DescribeSnapshots",
                "ec2:CreateVolume",
                "ec2:CreateTags",
            ),
            TARGET: (
                PREFLIGHT_READS,
                RESTORE_CHECK_READS,
                "backup:PutBackupVaultAccessPolicy",
                "backup:ListRestoreJobs",
                "kms:PutKeyPolicy",
            ),
            MANAGEMENT: ("backup:UpdateGlobalSettings",),
        },
        check_phases=(BEFORE_BACKUP, BEFORE_COPY),
    ),
    Step(
        RESTORE_DRILL,
        "restore drill — prove the copy restores in the destination account",
        "restores the copy in the destination account as a new EBS volume, proves it is encrypted with the "
        "destination vault's key, records the verdict with AWS Backup, and deletes the volume",
        (
            "source_profile",
            "source_region",
            "target_profile",
            "target_region",
            *RESOURCE,
            "target_vault_name",
            "target_vault_key",
            "restore_role_name",
            "restore_availability_zone",
            "keep_restored",
            "poll_seconds",
            "max_wait_minutes",
            "force_copy",
            "strict_checks",
            *RUN,
        ),
        {
            SOURCE: (RESOURCE_LOOKUP_READS,),
            TARGET: (
                PREFLIGHT_READS,
                RESTORE_CHECK_READS,
                "backup:DescribeRecoveryPoint",
                "backup:ListRecoveryPointsByBackupVault",
                "backup:GetRecoveryPointRestoreMetadata",
                "backup:StartRestoreJob",
                "backup:DescribeRestoreJob",
                "backup:PutRestoreValidationResult",
                "iam:PassRole",
                "ec2:DescribeVolumes",
                "ec2:DeleteVolume",
            ),
        },
        check_phases=(BEFORE_RESTORE,),
    ),
    Step(
        AUTOMATE,
        "hand over to AWS Backup — a plan that copies every day, and an alert when a copy fails",
        "a backup plan whose rule copies every backup to the destination vault, a selection by tag, an EventBridge "
        "rule that sends failed copies to an SNS topic, and the whole set-up as CloudFormation templates",
        (
            "source_profile",
            "source_region",
            "target_profile",
            "target_region",
            *RESOURCE,
            *HOPS,
            "source_vault_name",
            "source_vault_key",
            "target_vault_name",
            "target_vault_key",
            "hop_vault_name",
            "iam_role_name",
            "delete_after_days",
            "move_to_cold_storage_after_days",
            "recovery_point_tags",
            "plan_name",
            "plan_schedule",
            "selection_tags",
            "take_over_plan",
            "alert_topic_name",
            "force_copy",
            "strict_checks",
            *RUN,
        ),
        {
            SOURCE: (
                PREFLIGHT_READS,
                "backup:ListBackupVaults",
                "backup:ListBackupPlans",
                "backup:GetBackupPlan",
                "backup:CreateBackupPlan",
                "backup:UpdateBackupPlan",
                "backup:ListTags",
                "backup:TagResource",
                "backup:ListBackupSelections",
                "backup:GetBackupSelection",
                "backup:CreateBackupSelection",
                "backup:DeleteBackupSelection",
                "iam:PassRole",
                "sns:GetTopicAttributes",
                "sns:CreateTopic",
                "sns:TagResource",
                "sns:SetTopicAttributes",
                "events:DescribeRule",
                "events:ListTargetsByRule",
                "events:PutRule",
                "events:TagResource",
                "events:PutTargets",
            ),
            TARGET: (PREFLIGHT_READS,),
        },
        check_phases=(BEFORE_BACKUP, BEFORE_COPY),
    ),
    Step(
        CLEANUP,
        "cleanup",
        "deletes the run's own recovery points and the vaults it made and left empty (keeping, and naming, one "
        "that holds others'), the volume a restore drill kept and the automation's plan, rule and topic; with "
        "revert_sharing, takes out what the run shared",
        (
            "source_profile",
            "source_region",
            "target_profile",
            "target_region",
            "source_vault_name",
            "hop_vault_name",
            "target_vault_name",
            "revert_sharing",
            "take_back_shared",
            "management_profile",
            # the estimate of what the run made, which the cleanup's plan shows beside what it removes
            *RESOURCE,
            *HOPS,
            "delete_after_days",
            "move_to_cold_storage_after_days",
            "keep_restored",
            "plan_schedule",
            *RUN,
        ),
        # The jobs are read when the run's recovery point was not recorded; the kms reads describe what the
        # vaults still hold; revert_sharing adds the policy writes and the management account's setting, and the
        # reads that find who else relies on them (the accounts, the backup role and organization the policies
        # are evaluated for, the backup plans that copy across accounts).
        {
            SOURCE: (
                "sts:GetCallerIdentity",
                "iam:GetRole",
                "organizations:DescribeOrganization",
                "backup:DescribeRecoveryPoint",
                "backup:DeleteRecoveryPoint",
                "backup:DescribeBackupVault",
                "backup:DeleteBackupVault",
                "backup:ListRecoveryPointsByBackupVault",
                "backup:DescribeBackupJob",
                "backup:DescribeCopyJob",
                "kms:DescribeKey",
                "kms:ListAliases",
                "kms:GetKeyPolicy",
                "kms:PutKeyPolicy",
                "backup:ListBackupPlans",
                "backup:GetBackupPlan",
                "backup:ListBackupSelections",
                "backup:DeleteBackupSelection",
                "backup:DeleteBackupPlan",
                "events:ListTargetsByRule",
                "events:RemoveTargets",
                "events:DeleteRule",
                "sns:GetTopicAttributes",
                "sns:DeleteTopic",
            ),
            TARGET: (
                "sts:GetCallerIdentity",
                "organizations:DescribeOrganization",
                "backup:DescribeRestoreJob",
                "ec2:DescribeVolumes",
                "ec2:DeleteVolume",
                "backup:DescribeRecoveryPoint",
                "backup:DeleteRecoveryPoint",
                "backup:DescribeBackupVault",
                "backup:DeleteBackupVault",
                "backup:ListRecoveryPointsByBackupVault",
                "kms:DescribeKey",
                "kms:ListAliases",
                "kms:GetKeyPolicy",
                "backup:GetBackupVaultAccessPolicy",
                "backup:PutBackupVaultAccessPolicy",
                "backup:DeleteBackupVaultAccessPolicy",
            ),
            MANAGEMENT: ("backup:DescribeGlobalSettings", "backup:UpdateGlobalSettings"),
        },
    ),
)
BY_NAME = {step.name: step for step in STEPS}

# What `runbook run` runs unless --steps says otherwise, and every step, in the order a run takes them.
DEFAULT = (PREREQUISITES, CREATE_BACKUP, VERIFY_SOURCE_KEY, SHARE_SOURCE_KEY, COPY_TO_TARGET, VERIFY_TARGET_KEY)
ALL = tuple(step.name for step in STEPS)

# AWS calls each step of the walkthrough may make on the sandbox's walkthrough, job polls left out.
CALL_BUDGET = {step.name: step.call_budget for step in STEPS if step.call_budget is not None}


def record(name: str) -> Step:
    """The record of the step of this name; KeyError naming the known steps for any other."""
    if name not in BY_NAME:
        raise KeyError(f"no step {name!r}; steps: {', '.join(ALL)}")
    return BY_NAME[name]


def notebook_path(name: str) -> Path:
    """The step's notebook, as shipped."""
    return NOTEBOOKS / f"{name}.ipynb"


def checking(phase: str) -> tuple[str, ...]:
    """The steps that run the checks of this phase before they act, in a run's order."""
    return tuple(record.name for record in STEPS if phase in record.check_phases)


def run_reaching(phase: str) -> tuple[str, ...]:
    """The steps of a run that gets to the checks of this phase: the default steps, and the first step that
    checks it when none of them does."""
    if any(name in DEFAULT for name in checking(phase)):
        return DEFAULT
    first = checking(phase)[0]
    return tuple(name for name in ALL if name in DEFAULT or name == first)
