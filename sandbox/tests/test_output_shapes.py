"""Every operation the runbook uses, answered by the sandbox in every world, holds to botocore's output shape.

The operations are the permission registry's (core/permissions.py): every IAM action a step declares,
as the operation of the same name of the service's client, less the actions that have none (SKIPPED
says why). Each world is visited once per test process: reset to the scenario, then walked through
as the runbook walks it (vaults; backups of a volume, a file system, a database and a DB cluster; a
copy; restores in both accounts; the troubleshooting snapshot and volume; a plan with its alerts, run
now; cleanup; then a backup, a copy and a restore caught before they end), calling each operation with
arguments read from the world, and keeping every answer. Each test then holds one operation's answers,
in every world, to botocore's output shape (sandbox/tests/shapes.py), and fails naming the world, the
account, the operation and the member. An operation a world refuses fails too, unless the refusal is
the world's point (EXPECTED_REFUSALS), and so does a listing that listed nothing in a world.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from botocore import xform_name
from botocore.exceptions import ClientError
from botocore.model import OperationModel
from botocore.parsers import create_parser
from shapes import problems

from runbook_lib.core import botocore_data
from runbook_lib.core.permissions import STEP_PERMISSIONS
from runbook_sandbox import process
from runbook_sandbox.accounts import MANAGEMENT, SOURCE, SOURCE_REGION, TARGET, TARGET_REGION
from runbook_sandbox.catalog import STORIES
from runbook_sandbox.testing import Accounts
from runbook_sandbox.testing.walkthrough import (
    ROLE_ARN,
    SOURCE_VAULT,
    TARGET_VAULT,
    TARGET_VAULT_ARN,
    share_statements,
    vault_policy,
    volume_arn,
)

# IAM actions with no API operation of their name: what each one is, and so why it is not called.
SKIPPED = {
    "iam:PassRole": (
        "a permission only: IAM asks it when a role is handed to AWS Backup (StartBackupJob, StartCopyJob, "
        "StartRestoreJob, CreateBackupSelection), whose answers are held here"
    ),
}
# The client of each IAM service prefix whose name differs from it.
CLIENT_NAMES = {"elasticfilesystem": "efs"}
ACTIONS = sorted({action for accounts in STEP_PERMISSIONS.values() for names in accounts.values() for action in names})
CALLED = [action for action in ACTIONS if action not in SKIPPED]

# Refusals that are a world's point, (scenario, action, role) -> AWS's error code: the operation is
# answered in that world by another account, or not at all (the world's story says why).
EXPECTED_REFUSALS = {
    ("outside-organization", "organizations:DescribeOrganization", "target"): "AWSOrganizationsNotInUseException",
    ("cross-account-locked", "backup:UpdateGlobalSettings", "management"): "AccessDeniedException",
}
ROLES = {
    "source": (SOURCE, SOURCE_REGION),
    "target": (TARGET, TARGET_REGION),
    "management": (MANAGEMENT, SOURCE_REGION),
}
BACKUP_ROLE = "arn:aws:iam::{account}:role/service-role/AWSBackupDefaultServiceRole"
SCRATCH_VAULT = "ShapeCheckVault"
WAIT_FOR_ANSWERS_SECONDS = 600
INLINE_POLICY = "ShapeCheckInline"


def client_and_operation(action: str) -> tuple[str, str]:
    service, name = action.split(":", 1)
    return CLIENT_NAMES.get(service, service), name


@dataclass
class Answer:
    scenario: str
    role: str
    operation: OperationModel
    parsed: dict[str, Any] | None = None
    error: tuple[str, str] | None = None


class Visit:
    """One world walked through; every call of a registry action keeps its answer in `answers`."""

    def __init__(self, sandbox: process.Sandbox, scenario: str, accounts: Accounts, answers: dict[str, list[Answer]]):
        self.sandbox = sandbox
        self.scenario = scenario
        self.accounts = accounts
        self.answers = answers

    def client(self, role: str, service: str, region: str | None = None) -> Any:
        return self.accounts.client(role, service, region or ROLES[role][1])

    def call(self, action: str, role: str, region: str | None = None, **arguments: Any) -> dict[str, Any] | None:
        """Call the action's operation as `role`; its parsed answer, or None when AWS refused (kept too)."""
        service, name = client_and_operation(action)
        made = self.client(role, service, region)
        operation = made.meta.service_model.operation_model(name)
        try:
            parsed = getattr(made, xform_name(name))(**arguments)
        except ClientError as refusal:
            error = refusal.response["Error"]
            self.answers[action].append(Answer(self.scenario, role, operation, error=(error["Code"], error["Message"])))
            return None
        self.answers[action].append(Answer(self.scenario, role, operation, parsed=parsed))
        return parsed

    def walk(self) -> None:
        """Every step of the runbook on this world, in the order a run takes them."""
        self.reads()
        self.vaults()
        source_point, efs_point = self.backups()
        copied = self.copy(source_point)
        for role, point, vault in (("source", source_point, SOURCE_VAULT), ("target", copied, TARGET_VAULT)):
            if point:
                self.restore(role, point, vault)
        self.troubleshoot()
        self.automate()
        self.cleanup(efs_point, copied)
        if source_point:
            self.jobs_under_way(source_point)

    def reads(self) -> None:
        """What the preflight reads, in each account."""
        self.client("source", "iam").create_account_alias(AccountAlias="sandbox-source-alias")
        for role in ROLES:
            self.call("sts:GetCallerIdentity", role)
            self.call("iam:ListAccountAliases", role)  # the guard, on real accounts
        for role in ("source", "target"):
            self.call("organizations:DescribeOrganization", role)
            role_name = "AWSBackupDefaultServiceRole"
            self.client(role, "iam").put_role_policy(
                RoleName=role_name,
                PolicyName=INLINE_POLICY,
                PolicyDocument=json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}],
                    }
                ),
            )
            self.call("iam:GetRole", role, RoleName=role_name)
            attached = self.call("iam:ListAttachedRolePolicies", role, RoleName=role_name) or {}
            for policy in attached.get("AttachedPolicies", [])[:1]:
                described = self.call("iam:GetPolicy", role, PolicyArn=policy["PolicyArn"]) or {}
                version = described.get("Policy", {}).get("DefaultVersionId", "v1")
                self.call("iam:GetPolicyVersion", role, PolicyArn=policy["PolicyArn"], VersionId=version)
            inline = self.call("iam:ListRolePolicies", role, RoleName=role_name) or {}
            for name in inline.get("PolicyNames", []):
                self.call("iam:GetRolePolicy", role, RoleName=role_name, PolicyName=name)
            for key in ("alias/cmkSource", "alias/aws/ebs") if role == "source" else ("alias/cmkTarget",):
                described = self.call("kms:DescribeKey", role, KeyId=key) or {}
                key_id = described.get("KeyMetadata", {}).get("Arn", key)
                self.call("kms:GetKeyPolicy", role, KeyId=key_id, PolicyName="default")
            self.call("kms:ListAliases", role)
        self.call("backup:UpdateGlobalSettings", "management", GlobalSettings={"isCrossAccountBackupEnabled": "true"})
        for role in ("source", "management"):
            self.call("backup:DescribeGlobalSettings", role)
        self.call("ec2:DescribeVolumes", "source")
        self.call("ec2:DescribeVolumes", "source", Filters=[{"Name": "tag:Name", "Values": ["walkthrough-volume"]}])
        self.call("rds:DescribeDBInstances", "source")
        self.call("rds:DescribeDBClusters", "source")
        self.call("elasticfilesystem:DescribeFileSystems", "source")

    def vaults(self) -> None:
        """The walkthrough's vaults (those a world already has are kept), a vault to delete, the target
        vault's policy (the world's own, put again, where it has one) and the shared source key."""
        listed = {
            role: {
                v["BackupVaultName"]
                for v in (self.call("backup:ListBackupVaults", role) or {}).get("BackupVaultList", [])
            }
            for role in ("source", "target")
        }
        if SOURCE_VAULT not in listed["source"]:
            key = self.key_arn("source", "alias/cmkSourceVault")
            self.call("backup:CreateBackupVault", "source", BackupVaultName=SOURCE_VAULT, EncryptionKeyArn=key)
        self.call(
            "backup:CreateBackupVault",
            "source",
            BackupVaultName=SCRATCH_VAULT,
            BackupVaultTags={"purpose": "shape-check"},
        )
        if TARGET_VAULT not in listed["target"]:
            key = self.key_arn("target", "alias/cmkTarget")
            self.call("backup:CreateBackupVault", "target", BackupVaultName=TARGET_VAULT, EncryptionKeyArn=key)
        backup = self.client("target", "backup")
        try:
            policy = backup.get_backup_vault_access_policy(BackupVaultName=TARGET_VAULT)["Policy"]
        except ClientError:
            policy = vault_policy()
        self.call("backup:PutBackupVaultAccessPolicy", "target", BackupVaultName=TARGET_VAULT, Policy=policy)
        self.call("backup:GetBackupVaultAccessPolicy", "target", BackupVaultName=TARGET_VAULT)
        for role, vault in (("source", SOURCE_VAULT), ("target", TARGET_VAULT)):
            self.call("backup:DescribeBackupVault", role, BackupVaultName=vault)
            self.call("backup:ListBackupVaults", role)
        key = self.key_arn("source", "alias/cmkSource")
        policy = json.loads(self.client("source", "kms").get_key_policy(KeyId=key, PolicyName="default")["Policy"])
        policy["Statement"].extend(share_statements())
        self.call("kms:PutKeyPolicy", "source", KeyId=key, PolicyName="default", Policy=json.dumps(policy))

    def key_arn(self, role: str, alias: str) -> str:
        return self.client(role, "kms").describe_key(KeyId=alias)["KeyMetadata"]["Arn"]

    def backups(self) -> tuple[str | None, str | None]:
        """The walkthrough's volume, file system, database and first DB cluster backed up: the volume's and
        the file system's recovery point ARNs."""
        rds = self.client("source", "rds")
        file_system = self.client("source", "efs").describe_file_systems()["FileSystems"][0]
        resources = [volume_arn(self.accounts), file_system["FileSystemArn"]]
        resources += [database["DBInstanceArn"] for database in rds.describe_db_instances()["DBInstances"][:1]]
        resources += [cluster["DBClusterArn"] for cluster in rds.describe_db_clusters()["DBClusters"][:1]]
        points = []
        for resource in resources:
            started = self.call(
                "backup:StartBackupJob",
                "source",
                BackupVaultName=SOURCE_VAULT,
                ResourceArn=resource,
                IamRoleArn=ROLE_ARN,
                Lifecycle={"MoveToColdStorageAfterDays": 30, "DeleteAfterDays": 120},
                RecoveryPointTags={"runbook": "shape-check"},
            )
            job = (
                self.call("backup:DescribeBackupJob", "source", BackupJobId=started["BackupJobId"]) if started else None
            )
            points.append(job.get("RecoveryPointArn") if job else None)
        self.call("backup:ListBackupJobs", "source")
        self.call("backup:ListBackupJobs", "source", ByState="COMPLETED", MaxResults=1)
        listed = self.call("backup:ListRecoveryPointsByBackupVault", "source", BackupVaultName=SOURCE_VAULT) or {}
        for point in listed.get("RecoveryPoints", [])[:4]:
            self.call(
                "backup:DescribeRecoveryPoint",
                "source",
                BackupVaultName=SOURCE_VAULT,
                RecoveryPointArn=point["RecoveryPointArn"],
            )
        return points[0], points[1]

    def copy(self, point: str | None) -> str | None:
        """The volume's recovery point copied into the target vault: the copy's ARN, if it completed."""
        if point is None:
            return None
        started = self.call(
            "backup:StartCopyJob",
            "source",
            RecoveryPointArn=point,
            SourceBackupVaultName=SOURCE_VAULT,
            DestinationBackupVaultArn=TARGET_VAULT_ARN,
            IamRoleArn=ROLE_ARN,
        )
        job = (self.call("backup:DescribeCopyJob", "source", CopyJobId=started["CopyJobId"]) or {}) if started else {}
        self.call("backup:ListCopyJobs", "source")
        self.call("backup:ListCopyJobs", "source", ByDestinationVaultArn=TARGET_VAULT_ARN)
        listed = self.call("backup:ListRecoveryPointsByBackupVault", "target", BackupVaultName=TARGET_VAULT) or {}
        for listed_point in listed.get("RecoveryPoints", [])[:1]:
            arn = listed_point["RecoveryPointArn"]
            self.call("backup:DescribeRecoveryPoint", "target", BackupVaultName=TARGET_VAULT, RecoveryPointArn=arn)
        return job.get("CopyJob", {}).get("DestinationRecoveryPointArn")

    def restore(self, role: str, point: str, vault: str) -> None:
        """A restore drill of the point in its account: the restored volume deleted, its result put."""
        metadata = self.call(
            "backup:GetRecoveryPointRestoreMetadata", role, BackupVaultName=vault, RecoveryPointArn=point
        )
        if metadata is None:
            return
        account = ROLES[role][0]
        started = self.call(
            "backup:StartRestoreJob",
            role,
            RecoveryPointArn=point,
            Metadata=metadata["RestoreMetadata"],
            IamRoleArn=BACKUP_ROLE.format(account=account.account_id),
            ResourceType="EBS",
        )
        if started is None:
            return
        job = self.call("backup:DescribeRestoreJob", role, RestoreJobId=started["RestoreJobId"]) or {}
        if job.get("Status") == "COMPLETED":
            self.call(
                "backup:PutRestoreValidationResult",
                role,
                RestoreJobId=started["RestoreJobId"],
                ValidationStatus="SUCCESSFUL",
                ValidationStatusMessage="shape check",
            )
            self.call("backup:DescribeRestoreJob", role, RestoreJobId=started["RestoreJobId"])
        self.call("backup:ListRestoreJobs", role)
        self.call("backup:ListRestoreJobs", role, ByStatus="COMPLETED")
        if job.get("CreatedResourceArn"):
            volume_id = job["CreatedResourceArn"].rsplit("/", 1)[1]
            self.call("ec2:DescribeVolumes", role, VolumeIds=[volume_id])
            self.call("ec2:DeleteVolume", role, VolumeId=volume_id)

    def troubleshoot(self) -> None:
        """The troubleshooting's snapshot test of the source key: a snapshot, its copy, a volume of it."""
        # All of the target's (moto ignores MaxResults: the source's would be 10,000 in many-recovery-points).
        self.call("ec2:DescribeSnapshots", "target", OwnerIds=["self"])
        volume_id = volume_arn(self.accounts).rsplit("/", 1)[1]
        snapshot = self.call("ec2:CreateSnapshot", "source", VolumeId=volume_id, Description="shape check")
        if snapshot is None:
            return
        snapshot_id = snapshot["SnapshotId"]
        self.call("ec2:DescribeSnapshots", "source", SnapshotIds=[snapshot_id])
        copied = self.call("ec2:CopySnapshot", "source", SourceSnapshotId=snapshot_id, SourceRegion=SOURCE_REGION)
        volume = self.call("ec2:CreateVolume", "source", SnapshotId=snapshot_id, AvailabilityZone=f"{SOURCE_REGION}a")
        if volume:
            self.call(
                "ec2:CreateTags", "source", Resources=[volume["VolumeId"]], Tags=[{"Key": "Name", "Value": "shape"}]
            )
            self.call("ec2:DescribeVolumes", "source", VolumeIds=[volume["VolumeId"]])
            self.call("ec2:DeleteVolume", "source", VolumeId=volume["VolumeId"])
        if copied:
            self.call("ec2:DeleteSnapshot", "source", SnapshotId=copied["SnapshotId"])
        self.call("ec2:DeleteSnapshot", "source", SnapshotId=snapshot_id)

    def automate(self) -> None:
        """Step 09's plan with a copy rule, its selection, and its alert (an EventBridge rule to an SNS topic)."""
        topic = self.call("sns:CreateTopic", "source", Name="shape-check-alerts") or {}
        topic_arn = topic.get("TopicArn", "")
        self.call("sns:TagResource", "source", ResourceArn=topic_arn, Tags=[{"Key": "runbook", "Value": "shape"}])
        self.call(
            "sns:SetTopicAttributes", "source", TopicArn=topic_arn, AttributeName="DisplayName", AttributeValue="x"
        )
        self.call("sns:GetTopicAttributes", "source", TopicArn=topic_arn)
        pattern = {"source": ["aws.backup"], "detail-type": ["Copy Job State Change"], "detail": {"state": ["FAILED"]}}
        rule = self.call("events:PutRule", "source", Name="shape-check-copies", EventPattern=json.dumps(pattern)) or {}
        self.call(
            "events:TagResource", "source", ResourceARN=rule.get("RuleArn", ""), Tags=[{"Key": "runbook", "Value": "x"}]
        )
        self.call(
            "events:PutTargets", "source", Rule="shape-check-copies", Targets=[{"Id": "alerts", "Arn": topic_arn}]
        )
        self.call("events:DescribeRule", "source", Name="shape-check-copies")
        self.call("events:ListTargetsByRule", "source", Rule="shape-check-copies")
        plan_document = {
            "BackupPlanName": "ShapeCheckPlan",
            "Rules": [
                {
                    "RuleName": "Daily",
                    "TargetBackupVaultName": SOURCE_VAULT,
                    "ScheduleExpression": "cron(0 5 ? * * *)",
                    "Lifecycle": {"DeleteAfterDays": 35},
                    "CopyActions": [
                        {"DestinationBackupVaultArn": TARGET_VAULT_ARN, "Lifecycle": {"DeleteAfterDays": 30}}
                    ],
                }
            ],
        }
        plan = self.call("backup:CreateBackupPlan", "source", BackupPlan=copy.deepcopy(plan_document)) or {}
        plan_id = plan.get("BackupPlanId", "")
        self.call("backup:ListBackupPlans", "source")
        self.call("backup:GetBackupPlan", "source", BackupPlanId=plan_id)
        plan_document["Rules"][0]["ScheduleExpression"] = "cron(0 6 ? * * *)"
        self.call("backup:UpdateBackupPlan", "source", BackupPlanId=plan_id, BackupPlan=plan_document)
        self.call("backup:TagResource", "source", ResourceArn=plan.get("BackupPlanArn", ""), Tags={"runbook": "shape"})
        self.call("backup:ListTags", "source", ResourceArn=plan.get("BackupPlanArn", ""))
        selection_document = {
            "SelectionName": "shape-check",
            "IamRoleArn": ROLE_ARN,
            "Resources": [volume_arn(self.accounts)],
        }
        selection = self.call(
            "backup:CreateBackupSelection", "source", BackupPlanId=plan_id, BackupSelection=selection_document
        )
        self.call("backup:ListBackupSelections", "source", BackupPlanId=plan_id)
        if selection:
            self.run_plan(plan_id)
            self.call("backup:GetBackupSelection", "source", BackupPlanId=plan_id, SelectionId=selection["SelectionId"])
            self.call(
                "backup:DeleteBackupSelection", "source", BackupPlanId=plan_id, SelectionId=selection["SelectionId"]
            )
        self.call("backup:GetBackupPlan", "source", BackupPlanId=plan_id)
        self.call("backup:DeleteBackupPlan", "source", BackupPlanId=plan_id)
        self.call("backup:ListBackupPlans", "source")
        self.call("events:RemoveTargets", "source", Rule="shape-check-copies", Ids=["alerts"])
        self.call("events:DeleteRule", "source", Name="shape-check-copies")
        self.call("sns:DeleteTopic", "source", TopicArn=topic_arn)

    def run_plan(self, plan_id: str) -> None:
        """The plan run now, as its schedule would run it: its jobs name the plan and rule that made them."""
        for job_id in self.sandbox.run_plan(plan_id)["backup_job_ids"]:
            self.call("backup:DescribeBackupJob", "source", BackupJobId=job_id)
        listed = self.call(
            "backup:ListCopyJobs", "source", ByCreatedAfter=datetime.now(timezone.utc) - timedelta(minutes=1)
        )
        for job in (listed or {}).get("CopyJobs", [])[-1:]:
            self.call("backup:DescribeCopyJob", "source", CopyJobId=job["CopyJobId"])

    def cleanup(self, efs_point: str | None, copied: str | None) -> None:
        """What cleanup deletes: recovery points, the target vault's policy, an empty vault, and the
        sharing statements' policy put back."""
        if efs_point:
            self.call(
                "backup:DescribeRecoveryPoint", "source", BackupVaultName=SOURCE_VAULT, RecoveryPointArn=efs_point
            )
            self.call("backup:DeleteRecoveryPoint", "source", BackupVaultName=SOURCE_VAULT, RecoveryPointArn=efs_point)
        if copied:
            self.call("backup:DeleteRecoveryPoint", "target", BackupVaultName=TARGET_VAULT, RecoveryPointArn=copied)
        self.call("backup:DeleteBackupVaultAccessPolicy", "target", BackupVaultName=TARGET_VAULT)
        self.call("backup:DeleteBackupVault", "source", BackupVaultName=SCRATCH_VAULT)
        self.call("backup:UpdateGlobalSettings", "management", GlobalSettings={"isCrossAccountBackupEnabled": "false"})
        self.call("backup:DescribeGlobalSettings", "management")

    def jobs_under_way(self, point: str) -> None:
        """A backup, a copy and a restore caught before they end (each would take an hour): their answers
        lack what only a job's end gives."""
        self.sandbox.configure(job_seconds=3600)
        try:
            backup = self.call(
                "backup:StartBackupJob",
                "source",
                BackupVaultName=SOURCE_VAULT,
                ResourceArn=volume_arn(self.accounts),
                IamRoleArn=ROLE_ARN,
            )
            job = self.call("backup:DescribeBackupJob", "source", BackupJobId=backup["BackupJobId"]) if backup else None
            if job and job.get("RecoveryPointArn"):
                arn = job["RecoveryPointArn"]
                self.call("backup:DescribeRecoveryPoint", "source", BackupVaultName=SOURCE_VAULT, RecoveryPointArn=arn)
            self.call("backup:ListBackupJobs", "source", ByState="CREATED")
            copied = self.call(
                "backup:StartCopyJob",
                "source",
                RecoveryPointArn=point,
                SourceBackupVaultName=SOURCE_VAULT,
                DestinationBackupVaultArn=TARGET_VAULT_ARN,
                IamRoleArn=ROLE_ARN,
            )
            if copied:
                self.call("backup:DescribeCopyJob", "source", CopyJobId=copied["CopyJobId"])
            restored = self.call(
                "backup:StartRestoreJob",
                "source",
                RecoveryPointArn=point,
                Metadata={"availabilityZone": f"{SOURCE_REGION}a"},
                IamRoleArn=ROLE_ARN,
            )
            if restored:
                self.call("backup:DescribeRestoreJob", "source", RestoreJobId=restored["RestoreJobId"])
            self.call("backup:ListRestoreJobs", "source", ByStatus="PENDING")
        finally:
            self.sandbox.configure(job_seconds=0)


def is_listing(operation: OperationModel) -> bool:
    """List..., or Describe... of a plural (DescribeVolumes): an operation that answers records in a list or map."""
    name = operation.name
    return name.startswith("List") or (name.startswith("Describe") and name.endswith("s"))


def shows_records(answer: Answer) -> bool:
    """Whether the answer shows the shape of what it lists: a listing whose every list and map is empty
    holds nothing to check its records by."""
    shape = answer.operation.output_shape
    if answer.parsed is None:
        return False
    if shape is None or not is_listing(answer.operation):
        return True
    listed = [name for name, member in shape.members.items() if member.type_name in ("list", "map")]
    return not listed or any(answer.parsed.get(name) for name in listed)


def visit_every_world(sandbox: process.Sandbox) -> dict[str, list[Answer]]:
    """Every world visited once, with instant jobs and no faults; the sandbox's world is reset after."""
    kept: dict[str, list[Answer]] = defaultdict(list)
    sandbox.configure(job_seconds=0, throttle_rate=0, one_action_types=[])
    for scenario in STORIES:
        sandbox.reset(scenario)
        Visit(sandbox, scenario, Accounts(), kept).walk()
    sandbox.reset("walkthrough")
    return kept


def _saved(answers: dict[str, list[Answer]]) -> list[tuple[Any, ...]]:
    """The answers as plain data (an operation by its service and name), for another process to read."""
    return [
        (action, a.scenario, a.role, a.operation.service_model.service_name, a.operation.name, a.parsed, a.error)
        for action, given in answers.items()
        for a in given
    ]


def _restored(saved: list[tuple[Any, ...]]) -> dict[str, list[Answer]]:
    session = botocore_data.new_session()
    answers: dict[str, list[Answer]] = defaultdict(list)
    for action, scenario, role, service, name, parsed, error in saved:
        operation = session.get_service_model(service).operation_model(name)
        answers[action].append(Answer(scenario, role, operation, parsed, error))
    return answers


def shared_answers(sandbox: process.Sandbox, folder: Path) -> dict[str, list[Answer]]:
    """The worlds visited once per test run: the first worker to ask visits them in its sandbox and leaves
    the answers in the run's folder; the other workers wait for them (each would spend the same seconds on
    the same two cores)."""
    done, claim = folder / "output-shapes.pickle", folder / "output-shapes.claimed"
    try:
        os.close(os.open(claim, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        deadline = time.monotonic() + WAIT_FOR_ANSWERS_SECONDS
        while not done.exists():
            if time.monotonic() > deadline:
                pytest.fail(f"no answers in {done} after {WAIT_FOR_ANSWERS_SECONDS} s")
            time.sleep(0.2)
        saved = pickle.loads(done.read_bytes())
        if isinstance(saved, str):
            pytest.fail(f"the worker that visited the worlds failed: {saved}")
        return _restored(saved)
    written = done.with_suffix(".writing")
    try:
        answers = visit_every_world(sandbox)
    except Exception as error:
        written.write_bytes(pickle.dumps(f"{type(error).__name__}: {error}"))
        written.replace(done)
        raise
    written.write_bytes(pickle.dumps(_saved(answers)))
    written.replace(done)
    return answers


@pytest.fixture(scope="module")
def answers(
    sandbox: process.Sandbox, tmp_path_factory: pytest.TempPathFactory, worker_id: str
) -> dict[str, list[Answer]]:
    if worker_id == "master":
        return visit_every_world(sandbox)
    return shared_answers(sandbox, tmp_path_factory.getbasetemp().parent)


def test_every_registry_action_is_called_or_skipped_for_a_reason():
    """An action is skipped only when its service has no operation of its name: one that has is called."""
    session = botocore_data.new_session()
    for action in ACTIONS:
        service, name = client_and_operation(action)
        has_operation = name in session.get_service_model(service).operation_names
        assert has_operation == (action not in SKIPPED), action
    assert set(SKIPPED) <= set(ACTIONS), "a skipped action the registry no longer declares"


@pytest.mark.parametrize("action", CALLED)
def test_every_answer_holds_to_the_output_shape(action, answers):
    found = []
    for scenario in STORIES:
        given = [answer for answer in answers[action] if answer.scenario == scenario]
        if not given:
            found.append(f"{scenario}: {action} was not called")
        for answer in given:
            where = f"{scenario}, {answer.role}"
            if answer.error is not None:
                expected = EXPECTED_REFUSALS.get((scenario, action, answer.role))
                if answer.error[0] != expected:
                    found.append(f"{where}: {action} refused: {answer.error[0]}: {answer.error[1]}")
                continue
            assert answer.parsed is not None
            found += [f"{where}: {problem}" for problem in problems(answer.operation, answer.parsed)]
        refused_by_design = any((scenario, action, answer.role) in EXPECTED_REFUSALS for answer in given)
        if given and not refused_by_design and not any(shows_records(answer) for answer in given):
            found.append(f"{scenario}: every answer of {action} listed nothing: its records were not checked")
    assert not found, "\n".join(found)


# AWS's sample answer of GetRole, from the IAM API Reference (https://docs.aws.amazon.com/IAM/latest/APIReference/
# API_GetRole.html, read 2026-12-07), its policy document's whitespace trimmed.
AWS_GET_ROLE_SAMPLE = b"""<GetRoleResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
<GetRoleResult>
  <Role>
    <Path>/application_abc/component_xyz/</Path>
    <Arn>arn:aws:iam::123456789012:role/application_abc/component_xyz/S3Access</Arn>
    <RoleName>S3Access</RoleName>
    <AssumeRolePolicyDocument>{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
      "Principal":{"Service":["ec2.amazonaws.com"]},"Action":["sts:AssumeRole"]}]}</AssumeRolePolicyDocument>
    <CreateDate>2012-05-08T23:34:01Z</CreateDate>
    <RoleId>AROADBQP57FF2AEXAMPLE</RoleId>
    <RoleLastUsed>
      <LastUsedDate>2019-11-20T17:09:20Z</LastUsedDate>
      <Region>us-east-1</Region>
    </RoleLastUsed>
  </Role>
</GetRoleResult>
<ResponseMetadata>
  <RequestId>df37e965-9967-11e1-a4c3-270EXAMPLE04</RequestId>
</ResponseMetadata>
</GetRoleResponse>"""


def operation_model(service: str, name: str) -> OperationModel:
    return botocore_data.new_session().get_service_model(service).operation_model(name)


def test_a_recorded_aws_answer_fits_and_fails_without_a_required_member():
    get_role = operation_model("iam", "GetRole")
    response = {"body": AWS_GET_ROLE_SAMPLE, "headers": {}, "status_code": 200}
    parsed = create_parser("query").parse(response, get_role.output_shape)
    assert parsed["Role"]["RoleId"] == "AROADBQP57FF2AEXAMPLE"
    assert problems(get_role, parsed) == []
    del parsed["Role"]["RoleId"]
    assert problems(get_role, parsed) == ["iam GetRole: Role.RoleId: required member missing"]


def test_wrong_types_and_values_are_named_by_operation_and_member(answers):
    """A sandbox answer of this run, changed as a wrong answer would differ: each change is named."""
    answer = next(a for a in answers["backup:DescribeCopyJob"] if a.scenario == "walkthrough" and a.parsed)
    assert answer.parsed is not None
    wrong = copy.deepcopy(answer.parsed)
    wrong["CopyJob"].update(State="DONE", CreationDate="2026-12-07T10:00:00Z", BackupSizeInBytes=True, IsParent="false")
    wrong["CopyJob"]["CreatedBy"] = []
    assert problems(answer.operation, answer.parsed) == []
    assert sorted(problems(answer.operation, wrong)) == [
        "backup DescribeCopyJob: CopyJob.BackupSizeInBytes: expected a long, got bool True",
        "backup DescribeCopyJob: CopyJob.CreatedBy: expected a structure (RecoveryPointCreator), got list []",
        "backup DescribeCopyJob: CopyJob.CreationDate: expected a timestamp (datetime), got str '2026-12-07T10:00:00Z'",
        "backup DescribeCopyJob: CopyJob.IsParent: expected a boolean, got str 'false'",
        "backup DescribeCopyJob: CopyJob.State: 'DONE' is not one of CREATED, RUNNING, COMPLETED, FAILED, PARTIAL",
    ]


def dropping_json_member(*path: str) -> Any:
    """A botocore 'before-parse' handler that deletes a member from the JSON answer as it arrived."""

    def drop(response_dict: dict[str, Any], **_: Any) -> None:
        body = json.loads(response_dict["body"])
        holder = body
        for name in path[:-1]:
            holder = holder[name]
        del holder[path[-1]]
        response_dict["body"] = json.dumps(body).encode()

    return drop


def dropping_xml_element(name: str) -> Any:
    """A botocore 'before-parse' handler that deletes an element from the XML answer as it arrived."""

    def drop(response_dict: dict[str, Any], **_: Any) -> None:
        response_dict["body"] = re.sub(rf"<{name}>[^<]*</{name}>".encode(), b"", response_dict["body"])

    return drop


def test_a_live_sandbox_answer_without_a_required_member_fails(aws):
    """The sandbox's own answers, with a required member taken out on the way to botocore's parser."""
    kms = aws.source("kms")
    describe_key = kms.meta.service_model.operation_model("DescribeKey")
    assert problems(describe_key, kms.describe_key(KeyId="alias/cmkSource")) == []
    kms.meta.events.register("before-parse.kms.DescribeKey", dropping_json_member("KeyMetadata", "KeyId"))
    assert problems(describe_key, kms.describe_key(KeyId="alias/cmkSource")) == [
        "kms DescribeKey: KeyMetadata.KeyId: required member missing"
    ]

    iam = aws.target("iam")
    get_role = iam.meta.service_model.operation_model("GetRole")
    iam.meta.events.register("before-parse.iam.GetRole", dropping_xml_element("Arn"))
    assert problems(get_role, iam.get_role(RoleName="AWSBackupDefaultServiceRole")) == [
        "iam GetRole: Role.Arn: required member missing"
    ]
