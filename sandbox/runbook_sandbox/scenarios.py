"""The worlds a sandbox can be reset to: the walkthrough before any step, and worlds that fail.

Each scenario is a function registered under a name that catalog.py holds with its one-line story
(so that listing the scenarios needs no moto). Building runs inside the server process, directly
against the backends, after moto's reset and with moto's random seed set, so the same scenario
always yields the same IDs.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from moto.backup.models import Vault
from moto.core.base_backend import AccountSpecificBackend, BackendDict, backend_lock
from moto.core.model_instances import reset_model_data
from moto.ec2.models import ec2_backends
from moto.ec2.models.elastic_block_store import Snapshot
from moto.ec2.models.subnets import Subnet
from moto.ec2.utils import random_snapshot_id
from moto.efs.models import efs_backends
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.iam.models import AWSManagedPolicy, IAMBackend, iam_backends
from moto.kms.models import kms_backends
from moto.moto_api._internal import mock_random
from moto.rds.models import RDSBackend, rds_backends

from . import catalog, organizations
from .accounts import MANAGEMENT, SOURCE, SOURCE_REGION, TARGET, TARGET_REGION, SandboxAccount
from .backup.models import SandboxBackupBackend, sandbox_backup_backends
from .backup.records import RecoveryPoint, utcnow
from .kms.models import create_managed_key
from .settings import settings
from .stats import request_counts
from .world import world

SEED = 2018
BACKUP_ROLE_NAME = "AWSBackupDefaultServiceRole"
BACKUP_ROLE_PATH = "/service-role/"
TARGET_VAULT_NAME = "CABTargetVault"
SOURCE_VAULT_NAME = "SourceVault"  # as parameters/sandbox.yaml names it
# The AWS managed policies AWS attaches to the default role it creates.
BACKUP_ROLE_POLICY_ARNS = (
    "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
    "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores",
)

FLEET_SIZE = 200
FLEET_TAGS = {"Fleet": "demo"}
FLEET_KEY_ALIASES = ("alias/cmkSource", "alias/cmkFleetB", "alias/cmkFleetC")
HOURLY_RECOVERY_POINTS = 10_000
HOURLY_RETENTION_DAYS = 500  # longer than 10,000 hours (417 days): none of the points has expired
BACKUP_MINUTES = 4  # how long each hourly backup took


@dataclass(frozen=True)
class Scenario:
    name: str
    story: str
    build: Callable[[], None]


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """Register the builder of a world the catalog names (KeyError for a name it does not hold)."""
    story = catalog.STORIES[name]

    def register(build: Callable[[], None]) -> Callable[[], None]:
        SCENARIOS[name] = Scenario(name, story, build)
        return build

    return register


def reset_world(name: str) -> None:
    """Forget every resource and build the named scenario (KeyError for an unknown name)."""
    chosen = SCENARIOS[name]
    forget_backends()
    reset_model_data()
    organizations.forget_memberships()
    settings.clear_world_faults()
    request_counts.clear()
    world.clear(name)
    mock_random.seed(SEED)
    chosen.build()


def forget_backends() -> None:
    """Drop every backend, so that the next use builds a fresh one.

    moto's BackendDict.reset re-runs every backend's __init__ before dropping it (EC2 alone loads
    thousands of AMIs). And moto caches some methods per instance (functools.cache on a method keeps
    `self`): each cache would keep every dropped backend alive, about 4 MB per reset.
    """
    with backend_lock:
        for backends in BackendDict._instances:  # type: ignore[misc]  # moto annotates this class-level list
            backends.clear()
        BackendDict._instances.clear()  # type: ignore[misc]  # as an instance variable, and ignores it too
    for cached in (
        AccountSpecificBackend._generate_regions,
        Subnet._base_avail_ip_iterator,
        RDSBackend.db_cluster_options,
    ):
        cached.cache_clear()


# ----- building blocks ---------------------------------------------------------------------------


def _default_key_policy(account: SandboxAccount) -> dict:
    return {
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": account.root_arn},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }


def create_customer_key(account: SandboxAccount, region: str, alias: str, policy: dict | None = None) -> str:
    backend = kms_backends[account.account_id][region]
    key = backend.create_key(
        json.dumps(policy or _default_key_policy(account)),
        "ENCRYPT_DECRYPT",
        "SYMMETRIC_DEFAULT",
        f"Customer managed key {alias.removeprefix('alias/')}",
        None,
    )
    backend.create_alias(key.id, alias)
    return key.arn


@functools.cache
def aws_managed_policy_data(name: str) -> dict:
    """One AWS managed policy from moto's copy of AWS's, read out of it alone.

    moto loads all of them (some 1,600, 4.7 MB of JSON) into every IAM backend, or none: about
    0.15 s per account, every reset. The sandbox adds only the few it uses.
    """
    start = aws_managed_policies_data.index(f'"{name}":') + len(name) + 3
    data, _end = json.JSONDecoder().raw_decode(aws_managed_policies_data, aws_managed_policies_data.index("{", start))
    return data


def attach_aws_managed_policy(iam: IAMBackend, role_name: str, policy_arn: str) -> None:
    """Attach an AWS managed policy, made known to the account's IAM first (see aws_managed_policy_data)."""
    if policy_arn not in iam.managed_policies:
        name = policy_arn.rsplit("/", 1)[1]
        policy = AWSManagedPolicy.from_data(name, iam.account_id, iam.region_name, aws_managed_policy_data(name))
        iam.aws_managed_policies.append(policy)
        iam.managed_policies[policy.arn] = policy
    iam.attach_role_policy(policy_arn, role_name)


def create_backup_role(account: SandboxAccount) -> None:
    """The role AWS Backup creates as its default, with the AWS managed policies AWS attaches to it."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "backup.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    iam = iam_backends[account.account_id]["global"]
    iam.create_role(
        role_name=BACKUP_ROLE_NAME,
        assume_role_policy_document=json.dumps(trust),
        path=BACKUP_ROLE_PATH,
        permissions_boundary=None,
        description="Default role of AWS Backup",
        tags=[],
        max_session_duration="3600",
    )
    for policy_arn in BACKUP_ROLE_POLICY_ARNS:
        attach_aws_managed_policy(iam, BACKUP_ROLE_NAME, policy_arn)


def create_volume(
    account: SandboxAccount, region: str, name: str, kms_key_arn: str, tags: dict[str, str] | None = None
) -> str:
    ec2 = ec2_backends[account.account_id][region]
    volume = ec2.create_volume(
        size=8, zone_name=f"{region}a", encrypted=True, kms_key_id=kms_key_arn, volume_type="gp3"
    )
    ec2.create_tags([volume.id], {"Name": name, **(tags or {})})
    return volume.id


def create_database(account: SandboxAccount, region: str, name: str, kms_key_arn: str) -> None:
    rds = rds_backends[account.account_id][region]
    rds.create_db_instance(
        {
            "db_instance_identifier": name,
            "db_instance_class": "db.t3.micro",
            "engine": "postgres",
            "allocated_storage": 20,
            "master_username": "runbook",
            "master_user_password": "sandbox-only-password",
            "storage_encrypted": True,
            "kms_key_id": kms_key_arn,
        }
    )


def create_cluster(account: SandboxAccount, region: str, name: str, engine: str, kms_key_arn: str) -> None:
    """An encrypted DB cluster of a Neptune or DocumentDB engine, as DescribeDBClusters reports it.

    moto's RDS backend makes clusters of its own engines only (aurora-mysql, aurora-postgresql, neptune, mysql,
    postgres): a DocumentDB cluster is made as an aurora-postgresql one and then given the docdb engine (its
    version and port too), which is all the RDS API answers of it and all AWS Backup reads of it."""
    rds = rds_backends[account.account_id][region]
    made = "neptune" if engine == "neptune" else "aurora-postgresql"
    cluster = rds.create_db_cluster(
        {
            "db_cluster_identifier": name,
            "engine": made,
            "master_username": None if made == "neptune" else "runbook",
            "master_user_password": None if made == "neptune" else "sandbox-only-password",
            "storage_encrypted": True,
            "kms_key_id": kms_key_arn,
        }
    )
    if engine != made:
        cluster.engine, cluster.engine_version, cluster.port = engine, "5.0.0", 27017


def create_file_system(account: SandboxAccount, region: str, name: str, kms_key_arn: str) -> str:
    """An encrypted EFS file system tagged Name=name; returns its ID."""
    efs = efs_backends[account.account_id][region]
    file_system = efs.create_file_system(
        creation_token=name,
        performance_mode="generalPurpose",
        encrypted=True,
        kms_key_id=kms_key_arn,
        throughput_mode="bursting",
        provisioned_throughput_in_mibps=0,
        availability_zone_name="",
        backup=False,
        tags=[{"Key": "Name", "Value": name}],
    )
    return file_system.file_system_id


def create_hourly_recovery_points(backup: SandboxBackupBackend, vault: Vault, volume_name: str, count: int) -> None:
    """`count` completed recovery points of a volume in a vault, one an hour up to this hour, made by
    an hourly plan.

    Built straight into the backends (a snapshot each, keeping the volume's key, as StartBackupJob
    makes them) without the jobs that made them: a reset builds 10,000 in well under a second.
    """
    ec2 = ec2_backends[backup.account_id][backup.region_name]
    volume = next(v for v in ec2.volumes.values() if v.get_filter_value("tag:Name") == volume_name)
    lifecycle = {"DeleteAfterDays": HOURLY_RETENTION_DAYS}
    plan = backup.create_backup_plan(
        {
            "BackupPlanName": "HourlyBackups",
            "Rules": [
                {
                    "RuleName": "Hourly",
                    "TargetBackupVaultName": vault.backup_vault_name,
                    "ScheduleExpression": "cron(0 * ? * * *)",
                    "Lifecycle": lifecycle,
                }
            ],
        },
        {},
        "",
    )
    created_by = {
        "BackupPlanId": plan.backup_plan_id,
        "BackupPlanArn": plan.backup_plan_arn,
        "BackupPlanVersion": plan.version_id,
        "BackupRuleId": plan.backup_plan["Rules"][0]["RuleId"],
    }
    resource_arn = f"arn:aws:ec2:{backup.region_name}:{backup.account_id}:volume/{volume.id}"
    this_hour = utcnow().replace(minute=0, second=0, microsecond=0)
    for hours_ago in range(count - 1, -1, -1):
        created = this_hour - timedelta(hours=hours_ago)
        snapshot = Snapshot(
            ec2,
            random_snapshot_id(),
            volume=volume,
            description="This snapshot is created by the AWS Backup service.",
            encrypted=True,
            kms_key_id=volume.kms_key_id,
        )
        snapshot.start_time = created
        ec2.snapshots[snapshot.id] = snapshot
        backup.add_recovery_point(
            RecoveryPoint(
                recovery_point_arn=f"arn:aws:ec2:{backup.region_name}::snapshot/{snapshot.id}",
                backup_vault_name=vault.backup_vault_name,
                backup_vault_arn=vault.backup_vault_arn,
                account_id=backup.account_id,
                region=backup.region_name,
                resource_arn=resource_arn,
                resource_type="EBS",
                resource_name=volume_name,
                iam_role_arn=f"arn:aws:iam::{backup.account_id}:role{BACKUP_ROLE_PATH}{BACKUP_ROLE_NAME}",
                encryption_key_arn=volume.kms_key_id,
                lifecycle=lifecycle,
                created_by=created_by,
                snapshot_id=snapshot.id,
                status="COMPLETED",
                creation_date=created,
                completion_date=created + timedelta(minutes=BACKUP_MINUTES),
            )
        )


def managed_keys(account: SandboxAccount, region: str) -> None:
    backend = kms_backends[account.account_id][region]
    for alias in ("alias/aws/ebs", "alias/aws/backup"):
        create_managed_key(backend, alias)


def build_walkthrough(members: tuple[SandboxAccount, ...] = (SOURCE, TARGET)) -> None:
    """The walkthrough before any step: no vaults, cross-account backup off.

    cmkSourceHop is the key of the source account's vault in the target Region, through which a database
    copy passes when it goes in two hops (across Regions in the source account, then across accounts). It,
    the file system and the Neptune and DocumentDB clusters come last, in the order they were added, so that
    the IDs made before them stay those of earlier versions.
    """
    organizations.create_organization(MANAGEMENT, members)
    for account in (SOURCE, TARGET):
        create_backup_role(account)
    managed_keys(SOURCE, SOURCE_REGION)
    managed_keys(TARGET, TARGET_REGION)
    cmk_source = create_customer_key(SOURCE, SOURCE_REGION, "alias/cmkSource")
    create_customer_key(SOURCE, SOURCE_REGION, "alias/cmkSourceVault")
    create_customer_key(TARGET, TARGET_REGION, "alias/cmkTarget")
    create_volume(SOURCE, SOURCE_REGION, "walkthrough-volume", cmk_source)
    aws_ebs = kms_backends[SOURCE.account_id][SOURCE_REGION].describe_key("alias/aws/ebs").arn
    create_volume(SOURCE, SOURCE_REGION, "default-key-volume", aws_ebs)
    create_database(SOURCE, SOURCE_REGION, "walkthrough-db", cmk_source)
    create_customer_key(SOURCE, TARGET_REGION, "alias/cmkSourceHop")
    create_file_system(SOURCE, SOURCE_REGION, "walkthrough-efs", cmk_source)
    create_cluster(SOURCE, SOURCE_REGION, "walkthrough-neptune", "neptune", cmk_source)
    create_cluster(SOURCE, SOURCE_REGION, "walkthrough-docdb", "docdb", cmk_source)


# ----- the scenarios -----------------------------------------------------------------------------


@scenario("walkthrough")
def walkthrough() -> None:
    build_walkthrough()


@scenario("outside-organization")
def outside_organization() -> None:
    build_walkthrough(members=(SOURCE,))


@scenario("cross-account-locked")
def cross_account_locked() -> None:
    build_walkthrough()
    world.deny(MANAGEMENT.account_id, "backup:UpdateGlobalSettings")


@scenario("default-key-target-vault")
def default_key_target_vault() -> None:
    build_walkthrough()
    sandbox_backup_backends[TARGET.account_id][TARGET_REGION].create_backup_vault(TARGET_VAULT_NAME, {}, "", "")


@scenario("key-policy-denies-target")
def key_policy_denies_target() -> None:
    build_walkthrough()
    backend = kms_backends[SOURCE.account_id][SOURCE_REGION]
    key = backend.describe_key("alias/cmkSource")
    policy = json.loads(key.policy)
    policy["Statement"].append(
        {
            "Sid": "Deny the target account",
            "Effect": "Deny",
            "Principal": {"AWS": TARGET.root_arn},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    key.policy = json.dumps(policy)


@scenario("target-vault-denies-source")
def target_vault_denies_source() -> None:
    build_walkthrough()
    backend = sandbox_backup_backends[TARGET.account_id][TARGET_REGION]
    key = kms_backends[TARGET.account_id][TARGET_REGION].describe_key("alias/cmkTarget")
    backend.create_backup_vault(TARGET_VAULT_NAME, {}, key.arn, "")
    backend.put_backup_vault_access_policy(
        TARGET_VAULT_NAME,
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "DenySourceAccount",
                        "Effect": "Deny",
                        "Principal": {"AWS": SOURCE.root_arn},
                        "Action": "backup:CopyIntoBackupVault",
                        "Resource": "*",
                    }
                ],
            }
        ),
    )


@scenario("target-key-denies-restore")
def target_key_denies_restore() -> None:
    build_walkthrough()
    key = kms_backends[TARGET.account_id][TARGET_REGION].describe_key("alias/cmkTarget")
    policy = json.loads(key.policy)
    policy["Statement"].append(
        {
            "Sid": "DenyRestoreRole",
            "Effect": "Deny",
            "Principal": {"AWS": f"arn:aws:iam::{TARGET.account_id}:role{BACKUP_ROLE_PATH}{BACKUP_ROLE_NAME}"},
            "Action": ["kms:CreateGrant", "kms:Decrypt"],
            "Resource": "*",
        }
    )
    key.policy = json.dumps(policy)


@scenario("fleet")
def fleet() -> None:
    build_walkthrough()
    kms = kms_backends[SOURCE.account_id][SOURCE_REGION]
    keys = [kms.describe_key(FLEET_KEY_ALIASES[0]).arn]
    keys += [create_customer_key(SOURCE, SOURCE_REGION, alias) for alias in FLEET_KEY_ALIASES[1:]]
    for number in range(1, FLEET_SIZE + 1):
        key = keys[(number - 1) % len(keys)]
        create_volume(SOURCE, SOURCE_REGION, f"fleet-{number:03d}", key, tags=FLEET_TAGS)


@scenario("many-recovery-points")
def many_recovery_points() -> None:
    build_walkthrough()
    kms = kms_backends[SOURCE.account_id][SOURCE_REGION]
    backup = sandbox_backup_backends[SOURCE.account_id][SOURCE_REGION]
    vault = backup.create_backup_vault(SOURCE_VAULT_NAME, {}, kms.describe_key("alias/cmkSourceVault").arn, "")
    create_hourly_recovery_points(backup, vault, "walkthrough-volume", HOURLY_RECOVERY_POINTS)
