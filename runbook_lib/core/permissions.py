"""The IAM actions each step calls, per account, declared as data.

A test runs every step with the call log on and fails when a step calls an action it did not
declare here; `runbook permissions` writes the least-privilege policy files from them (policy_files.py).
"""

from __future__ import annotations

from .steps import (
    AUTOMATE,
    CLEANUP,
    COPY_TO_TARGET,
    CREATE_BACKUP,
    PREREQUISITES,
    RESTORE_DRILL,
    SHARE_SOURCE_KEY,
    TROUBLESHOOT,
    VERIFY_SOURCE_KEY,
    VERIFY_TARGET_KEY,
)

SOURCE, TARGET, MANAGEMENT = "source", "target", "management"

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

# What finding the run's resource by name reads, in the source account (context.named; a DB cluster's type is its
# Engine: aws/clusters.py).
RESOURCE_LOOKUP = (
    "sts:GetCallerIdentity",
    "ec2:DescribeVolumes",
    "rds:DescribeDBInstances",
    "rds:DescribeDBClusters",
    "elasticfilesystem:DescribeFileSystems",
)

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

STEP_PERMISSIONS: dict[str, dict[str, tuple[str, ...]]] = {
    GUARD: {SOURCE: GUARD_READS, TARGET: GUARD_READS, MANAGEMENT: GUARD_READS},
    PREREQUISITES: {
        SOURCE: (*PREFLIGHT[SOURCE], "backup:ListBackupVaults", "backup:CreateBackupVault"),
        TARGET: (
            *PREFLIGHT[TARGET],
            "backup:ListBackupVaults",
            "backup:CreateBackupVault",
            "backup:PutBackupVaultAccessPolicy",
        ),
        MANAGEMENT: ("sts:GetCallerIdentity", "backup:UpdateGlobalSettings"),
    },
    "check": {SOURCE: PREFLIGHT[SOURCE], TARGET: (*PREFLIGHT[TARGET], *RESTORE_CHECKS)},
    TROUBLESHOOT: {
        SOURCE: (
            *PREFLIGHT[SOURCE],
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
            *PREFLIGHT[TARGET],
            *RESTORE_CHECKS,
            "backup:PutBackupVaultAccessPolicy",
            "backup:ListRestoreJobs",
            "kms:PutKeyPolicy",
        ),
        MANAGEMENT: ("backup:UpdateGlobalSettings",),
    },
    CREATE_BACKUP: {
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
    VERIFY_SOURCE_KEY: {
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
    SHARE_SOURCE_KEY: {
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
    COPY_TO_TARGET: {
        SOURCE: (
            *PREFLIGHT[SOURCE],
            "backup:StartCopyJob",
            "backup:DescribeCopyJob",
            "backup:ListCopyJobs",
            "iam:PassRole",
        ),
        TARGET: PREFLIGHT[TARGET],
    },
    VERIFY_TARGET_KEY: {
        SOURCE: (*RESOURCE_LOOKUP, "backup:DescribeCopyJob"),
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
    RESTORE_DRILL: {
        SOURCE: RESOURCE_LOOKUP,
        TARGET: (
            *PREFLIGHT[TARGET],
            *RESTORE_CHECKS,
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
    AUTOMATE: {
        SOURCE: (
            *PREFLIGHT[SOURCE],
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
        TARGET: PREFLIGHT[TARGET],
    },
    # The jobs are read when the run's recovery point was not recorded; the kms reads describe what the
    # vaults still hold; revert_sharing adds the policy writes and the management account's setting, and the
    # reads that find who else relies on them (the accounts, the backup role and organization the policies
    # are evaluated for, the backup plans that copy across accounts).
    CLEANUP: {
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
