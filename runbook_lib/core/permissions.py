"""The IAM actions each step calls, per account: the steps' records (core/steps.py), with the sets of actions
they list by name spelled out here.

A test runs every step with the call log on and fails when a step calls an action its record does not
list; `runbook permissions` writes the least-privilege policy files from them (policy_files.py).
"""

from __future__ import annotations

from . import resource_kinds
from .steps import (
    MANAGEMENT,
    PREFLIGHT_READS,
    RESOURCE_LOOKUP_READS,
    RESTORE_CHECK_READS,
    SOURCE,
    STEPS,
    TARGET,
    Step,
)

# What the preflight checks read (checks.py), in each account.
PREFLIGHT = {
    SOURCE: (
        "sts:GetCallerIdentity",
        "organizations:DescribeOrganization",
        "backup:DescribeGlobalSettings",
        "iam:GetRole",
        "backup:DescribeBackupVault",
        "backup:ListRecoveryPointsByBackupVault",
        "backup:DescribeRecoveryPoint",
        "ec2:DescribeVolumes",
        "rds:DescribeDBInstances",
        "rds:DescribeDBClusters",
        "elasticfilesystem:DescribeFileSystems",
        "kms:DescribeKey",
        "kms:ListAliases",
        "kms:GetKeyPolicy",
    ),
    TARGET: (
        "sts:GetCallerIdentity",
        "organizations:DescribeOrganization",
        "backup:DescribeBackupVault",
        "backup:GetBackupVaultAccessPolicy",
        "kms:DescribeKey",
        "kms:ListAliases",
        "kms:GetKeyPolicy",
    ),
}

# What finding the run's resource by name reads, in the source account (context.named: each kind's lookup, as
# resource_kinds.py declares it; a DB cluster's type is its Engine: aws/clusters.py).
RESOURCE_LOOKUP = ("sts:GetCallerIdentity", *resource_kinds.LOOKUP_ACTIONS)

# What the checks before a restore read (checks.py, aws/restores.py), in the destination account.
RESTORE_CHECKS = (
    "iam:GetRole",
    "iam:ListAttachedRolePolicies",
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
    "iam:ListRolePolicies",
    "iam:GetRolePolicy",
)

# What step 09 does with a backup plan and its selection (the policy files and the sandbox's identity
# policies both scope them to backup plans).
PLAN_ACTIONS = (
    "backup:CreateBackupPlan",
    "backup:GetBackupPlan",
    "backup:UpdateBackupPlan",
    "backup:DeleteBackupPlan",
    "backup:ListBackupSelections",
    "backup:GetBackupSelection",
    "backup:CreateBackupSelection",
    "backup:DeleteBackupSelection",
)

# What acts on a backup vault by its name (the policy files and the sandbox's identity policies scope them to it).
VAULT_ACTIONS = (
    "backup:DescribeBackupVault",
    "backup:ListRecoveryPointsByBackupVault",
    "backup:CreateBackupVault",
    "backup:DeleteBackupVault",
    "backup:GetBackupVaultAccessPolicy",
    "backup:PutBackupVaultAccessPolicy",
    "backup:DeleteBackupVaultAccessPolicy",
)

# Before a run's first change the guard reads who each profile is (core/guard.py, aws/world.py): the account
# (sts:GetCallerIdentity, which needs no permission) and, on real accounts, its alias, where readable.
GUARD = "guard"
GUARD_READS = ("sts:GetCallerIdentity", "iam:ListAccountAliases")

# The sets of actions the steps' records list by name (core/steps.py), in each account.
SETS: dict[str, dict[str, tuple[str, ...]]] = {
    PREFLIGHT_READS: PREFLIGHT,
    RESOURCE_LOOKUP_READS: {SOURCE: RESOURCE_LOOKUP},
    RESTORE_CHECK_READS: {TARGET: RESTORE_CHECKS},
}


def step_actions(step: Step) -> dict[str, tuple[str, ...]]:
    """The actions a step's record lists, per account, each set of them spelled out (KeyError for a set that
    has no actions in that account: a record that lists it there is wrong)."""
    return {
        account: tuple(
            action for listed in actions for action in (SETS[listed][account] if listed in SETS else (listed,))
        )
        for account, actions in step.actions.items()
    }


# What each step calls, per account: the steps' records, and what is not a step (the guard, `runbook check`).
STEP_PERMISSIONS: dict[str, dict[str, tuple[str, ...]]] = {
    GUARD: {SOURCE: GUARD_READS, TARGET: GUARD_READS, MANAGEMENT: GUARD_READS},
    "check": {SOURCE: PREFLIGHT[SOURCE], TARGET: (*PREFLIGHT[TARGET], *RESTORE_CHECKS)},
    **{step.name: step_actions(step) for step in STEPS},
}


# Actions AWS authorizes beside an API call the steps make, which a call log cannot see (permission-only
# actions, and the KMS calls a service makes with the caller's rights): the policy files include them.
IMPLIED_SOURCES = {
    "create-a-vault": "AWS Backup Developer Guide: Backup vault creation and deletion, Required permissions "
    "(https://docs.aws.amazon.com/aws-backup/latest/devguide/create-a-vault.html), read 2026-12-07",
    "ebs-encryption": "Amazon EBS User Guide: Requirements for Amazon EBS encryption, Permissions for users "
    "(https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption-requirements.html), read 2026-12-07",
}
EBS_KEY_USE = (
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)
IMPLIED: dict[str, tuple[str, tuple[str, ...]]] = {
    "backup:CreateBackupVault": (
        "create-a-vault",
        (
            "backup-storage:MountCapsule",
            "kms:CreateGrant",
            "kms:DescribeKey",
            "kms:RetireGrant",
            "kms:Decrypt",
            "kms:GenerateDataKey",
        ),
    ),
    # The fix source-key-customer-managed copies a snapshot and makes a volume under reencrypt_key.
    "ec2:CopySnapshot": ("ebs-encryption", EBS_KEY_USE),
    "ec2:CreateVolume": ("ebs-encryption", EBS_KEY_USE),
}


def implied(actions: set[str]) -> set[str]:
    """The actions AWS also authorizes when these are called (IMPLIED)."""
    return {extra for action in actions if action in IMPLIED for extra in IMPLIED[action][1]}


def declared(step: str, account: str) -> set[str]:
    """What a step may call in an account: its own actions, and the guard's (any step may be the first of a run)."""
    return set(STEP_PERMISSIONS.get(step, {}).get(account, ())) | set(STEP_PERMISSIONS[GUARD].get(account, ()))
