"""Backup, copy and restore jobs, and the clock that finishes them.

Jobs advance with the clock: CREATED, then RUNNING, then COMPLETED or FAILED after
`settings.job_seconds` (0 finishes them at once). Nothing runs in the background: the gate settles
the jobs whose time is up, in every account, before any request of any service runs (and so does
every Backup operation, for callers inside the process). A job's effects are dated by the clock,
not by the request that settled it, so which request came first never shows: reads are pure.

A backup or copy job that ends sends its EventBridge event (job_events.py); a backup a plan started
(plans.py) starts its rule's copy actions as it completes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from moto.backup.models import Vault
from moto.core.exceptions import JsonRESTError
from moto.ec2.models import ec2_backends
from moto.ec2.models.elastic_block_store import Snapshot
from moto.ec2.utils import random_snapshot_id
from moto.efs.models import efs_backends
from moto.kms.models import Key
from moto.moto_api._internal import mock_random
from moto.rds.models import rds_backends

from ..kms import models as kms_models
from ..settings import settings
from .copy_rules import BACKUP_SERVICE_LINKED_ROLE, MSG_RDS_TWO_HOPS, MSG_VAULT_ACCESS_DENIED, copy_failure
from .exceptions import InvalidParameterValueException, InvalidRequestException, ResourceNotFoundException
from .global_settings import GlobalSettingsBackend
from .job_events import put_job_event
from .paging import PAGINATION_MODEL, paginate
from .records import (
    JOB_FILTERS,
    BackupJob,
    CopyJob,
    Job,
    RecoveryPoint,
    RestoreJob,
    SourceResource,
    matching,
    parse_arn,
    validate_lifecycle,
    validate_tags,
)
from .resource_rules import CLUSTER_TYPES, FULLY_MANAGED_TYPES, copies_in_one_action
from .restore_rules import MSG_RESTORE_KEY_NOT_FOUND, MSG_RESTORE_ZONE, restore_key_failure
from .vaults import VaultsBackend

JobT = TypeVar("JobT", BackupJob, CopyJob, RestoreJob)
RESTORE_VALIDATION_STATUSES = ("FAILED", "SUCCESSFUL", "TIMED_OUT", "VALIDATING")
# Volume types a restore creates without iops: the others need the iops the sandbox does not take.
RESTORABLE_VOLUME_TYPES = frozenset({"gp2", "gp3", "st1", "sc1", "standard"})

_settle_lock = threading.RLock()


def settle_jobs(backends: Iterable[JobsBackend]) -> None:
    """Finish every job of these backends whose time is up (see the module docstring).

    Only unsettled jobs are looked at: this runs before every request, and a fleet leaves hundreds
    of finished jobs behind.
    """
    with _settle_lock:
        for backend in list(backends):
            for job in [job for job in backend.unsettled_jobs.values() if job.due()]:
                backend._finish(job)


class JobsBackend(VaultsBackend, GlobalSettingsBackend):
    """Backup, copy and restore jobs: a part of SandboxBackupBackend (models.py).

    Jobs read and make recovery points in vaults (vaults.py) and copies ask the global settings
    (global_settings.py); models.py provides the clock and the other backends a copy reaches.
    Jobs still running, and jobs by IdempotencyToken, are kept apart too, so that settling jobs and
    starting one cost the same with 400 jobs as with none.
    """

    backend_in: Callable[[str, str], JobsBackend]

    def __init__(self, region_name: str, account_id: str):
        super().__init__(region_name, account_id)
        self.backup_jobs: dict[str, BackupJob] = {}
        self.copy_jobs: dict[str, CopyJob] = {}
        self.restore_jobs: dict[str, RestoreJob] = {}
        self.unsettled_jobs: dict[str, Job] = {}
        self.started_by_token: dict[tuple[type[Job], str], Job] = {}

    def _track(self, job: Job) -> None:
        """Follow a job just started until it ends, and finish it now if its time is already up."""
        self.unsettled_jobs[job.job_id] = job
        if job.idempotency_token:
            self.started_by_token.setdefault((type(job), job.idempotency_token), job)
        if job.due():
            self._finish(job)

    def _finish(self, job: Job) -> None:
        self.unsettled_jobs.pop(job.job_id, None)
        if isinstance(job, BackupJob):
            self._finish_backup(job)
        elif isinstance(job, CopyJob):
            self._finish_copy(job)
        elif isinstance(job, RestoreJob):
            self._finish_restore(job)

    def _job_fields(
        self, iam_role_arn: str, resource_arn: str, resource_type: str, resource_name: str | None = None
    ) -> dict[str, Any]:
        """What every new job of this account and Region starts with: an ID, its owner, and the clock."""
        return {
            "job_id": str(mock_random.uuid4()).upper(),
            "account_id": self.account_id,
            "region": self.region_name,
            "iam_role_arn": iam_role_arn,
            "resource_arn": resource_arn,
            "resource_type": resource_type,
            "resource_name": resource_name,
            "duration": settings.job_seconds,
        }

    def _copy_fields(
        self,
        point: RecoveryPoint,
        destination_backup_vault_arn: str,
        iam_role_arn: str,
        lifecycle: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """What a new copy job of the point starts with, whether it runs or fails at once."""
        destination = destination_backup_vault_arn.split(":")
        return {
            **self._job_fields(iam_role_arn, point.resource_arn, point.resource_type, point.resource_name),
            "source_backup_vault_arn": point.backup_vault_arn,
            "source_recovery_point_arn": point.recovery_point_arn,
            "destination_backup_vault_arn": destination_backup_vault_arn,
            "destination_account_id": destination[4] if len(destination) > 4 else "",
            "destination_region": destination[3] if len(destination) > 3 else "",
            "lifecycle": lifecycle or point.lifecycle,
        }

    def _started_with(self, kind: type[JobT], idempotency_token: str | None) -> JobT | None:
        """The job an IdempotencyToken already started, so that a retried start returns it."""
        if not idempotency_token:
            return None
        earlier = self.started_by_token.get((kind, idempotency_token))
        return earlier if isinstance(earlier, kind) else None

    # ----- backup jobs ---------------------------------------------------------------------
    def _role_must_exist(self, iam_role_arn: str) -> None:
        from moto.iam.models import iam_backends

        arn = parse_arn(iam_role_arn)
        if arn["service"] != "iam" or not arn["resource"].startswith("role/"):
            raise InvalidParameterValueException(msg=f"Invalid IAM role ARN: {iam_role_arn}")
        iam = iam_backends[arn["account"]]["global"]
        if not any(role.arn == iam_role_arn for role in iam.roles.values()):
            raise InvalidParameterValueException(msg=f"IAM Role {iam_role_arn} does not exist.")

    def _source_resource(self, resource_arn: str) -> SourceResource:
        """The resource to back up.

        Simplification: EBS volumes, RDS DB instances, DB clusters (Aurora, Neptune, DocumentDB: AWS Backup's
        resource type is the cluster's Engine's) and EFS file systems only; other types are refused, a Multi-AZ
        DB cluster (engine mysql or postgres) among them.
        """
        arn = parse_arn(resource_arn)
        if arn["account"] != self.account_id or arn["region"] != self.region_name:
            raise InvalidParameterValueException(
                msg=f"Resource {resource_arn} is not in account {self.account_id} in {self.region_name}."
            )
        if arn["service"] == "ec2" and arn["resource"].startswith("volume/"):
            volume_id = arn["resource"].split("/", 1)[1]
            volume = ec2_backends[self.account_id][self.region_name].volumes.get(volume_id)
            if volume is None:
                raise ResourceNotFoundException(msg=f"Cannot find resource {resource_arn}")
            key = kms_models.key_from_arn(volume.kms_key_id) if volume.encrypted else None
            name = next((t["value"] for t in volume.get_tags() if t["key"] == "Name"), None)
            return SourceResource(resource_arn, "EBS", name, key.arn if key else None, volume_id)
        if arn["service"] == "rds" and arn["resource"].startswith("db:"):
            db_id = arn["resource"].split(":", 1)[1]
            database = rds_backends[self.account_id][self.region_name].databases.get(db_id)
            if database is None:
                raise ResourceNotFoundException(msg=f"Cannot find resource {resource_arn}")
            key = kms_models.key_from_arn(database.kms_key_id) if database.storage_encrypted else None
            return SourceResource(resource_arn, "RDS", db_id, key.arn if key else None)
        if arn["service"] == "rds" and arn["resource"].startswith("cluster:"):
            cluster_id = arn["resource"].split(":", 1)[1]
            cluster = rds_backends[self.account_id][self.region_name].clusters.get(cluster_id)
            if cluster is None:
                raise ResourceNotFoundException(msg=f"Cannot find resource {resource_arn}")
            if cluster.engine not in CLUSTER_TYPES:
                raise InvalidParameterValueException(
                    msg=f"Resource type of {resource_arn} is not supported by the sandbox."
                )
            key = kms_models.key_from_arn(cluster.kms_key_id) if cluster.storage_encrypted else None
            return SourceResource(resource_arn, CLUSTER_TYPES[cluster.engine], cluster_id, key.arn if key else None)
        if arn["service"] == "elasticfilesystem" and arn["resource"].startswith("file-system/"):
            file_system_id = arn["resource"].split("/", 1)[1]
            efs = efs_backends[self.account_id][self.region_name]
            file_system = efs.file_systems_by_id.get(file_system_id)
            if file_system is None:
                raise ResourceNotFoundException(msg=f"Cannot find resource {resource_arn}")
            name = efs.tagging_service.get_tag_dict_for_resource(file_system_id).get("Name")
            key = self._named_key(file_system.kms_key_id) if file_system.encrypted else None
            return SourceResource(resource_arn, "EFS", name, key.arn if key else None)
        raise InvalidParameterValueException(msg=f"Resource type of {resource_arn} is not supported by the sandbox.")

    def start_backup_job(
        self,
        backup_vault_name: str,
        resource_arn: str,
        iam_role_arn: str,
        idempotency_token: str | None,
        lifecycle: dict[str, Any] | None,
        recovery_point_tags: dict[str, str] | None,
    ) -> BackupJob:
        """Starts an on-demand backup; a repeated IdempotencyToken returns the first job.

        The recovery point keeps the resource's key, except for a type fully managed by AWS Backup
        (EFS), which is encrypted with the vault's key.
        Simplification: StartWindowMinutes, CompleteWindowMinutes and BackupOptions are ignored.
        """
        self.settle_due_jobs()
        earlier = self._started_with(BackupJob, idempotency_token)
        if earlier is not None:
            return earlier
        return self._begin_backup(
            backup_vault_name, resource_arn, iam_role_arn, lifecycle, recovery_point_tags, idempotency_token
        )

    def _begin_backup(
        self,
        backup_vault_name: str,
        resource_arn: str,
        iam_role_arn: str,
        lifecycle: dict[str, Any] | None,
        recovery_point_tags: dict[str, str] | None,
        idempotency_token: str | None = None,
        created_by: dict[str, str] | None = None,
        copy_actions: list[dict[str, Any]] | None = None,
    ) -> BackupJob:
        """A backup job, on demand or of a plan's rule (which names the plan and the copies to start once
        the backup completes); refusals raise."""
        vault = self.describe_backup_vault(backup_vault_name)
        self._role_must_exist(iam_role_arn)
        validate_lifecycle(lifecycle)
        validate_tags(recovery_point_tags)
        resource = self._source_resource(resource_arn)
        job = BackupJob(
            **self._job_fields(iam_role_arn, resource_arn, resource.resource_type, resource.name),
            backup_vault_name=backup_vault_name,
            backup_vault_arn=vault.backup_vault_arn,
            lifecycle=lifecycle,
            recovery_point_tags=recovery_point_tags,
            idempotency_token=idempotency_token,
            failure=settings.take_injected_failure("backup"),
            created_by=created_by or {},
            copy_actions=copy_actions or [],
        )
        fully_managed = resource.resource_type in FULLY_MANAGED_TYPES
        job.encryption_key_arn = vault.encryption_key_arn if fully_managed else resource.kms_key_arn
        self._create_recovery_point_for(job, resource)
        self.backup_jobs[job.job_id] = job
        self._track(job)
        return job

    def _create_recovery_point_for(self, job: BackupJob, resource: SourceResource) -> None:
        if resource.resource_type == "EBS":
            assert resource.volume_id is not None  # _source_resource gives every EBS resource its volume
            ec2 = ec2_backends[self.account_id][self.region_name]
            snapshot = ec2.create_snapshot(resource.volume_id, "This snapshot is created by the AWS Backup service.")
            snapshot.status = "pending"
            if job.recovery_point_tags:
                snapshot.add_tags(job.recovery_point_tags)
            arn = f"arn:aws:ec2:{self.region_name}::snapshot/{snapshot.id}"
            snapshot_id: str | None = snapshot.id
        elif resource.resource_type in FULLY_MANAGED_TYPES:
            arn = self._backup_recovery_point_arn()
            snapshot_id = None
        else:
            arn = self._database_snapshot_arn(resource.resource_type, f"job-{job.job_id.lower()}")
            snapshot_id = None
        point = RecoveryPoint(
            recovery_point_arn=arn,
            backup_vault_name=job.backup_vault_name,
            backup_vault_arn=job.backup_vault_arn,
            account_id=self.account_id,
            region=self.region_name,
            resource_arn=job.resource_arn,
            resource_type=job.resource_type,
            resource_name=job.resource_name,
            iam_role_arn=job.iam_role_arn,
            encryption_key_arn=job.encryption_key_arn,
            lifecycle=job.lifecycle,
            created_by=job.created_by or {"BackupJobId": job.job_id},
            snapshot_id=snapshot_id,
        )
        self.add_recovery_point(point)
        if job.recovery_point_tags:
            self.tag_resource(arn, job.recovery_point_tags)
        job.recovery_point_arn = arn

    def _database_snapshot_arn(self, resource_type: str, name: str) -> str:
        """An RDS snapshot AWS Backup makes: of a DB instance, or (Aurora, Neptune, DocumentDB) of a DB cluster."""
        kind = "snapshot" if resource_type == "RDS" else "cluster-snapshot"
        return f"arn:aws:rds:{self.region_name}:{self.account_id}:{kind}:awsbackup:{name}"

    def _backup_recovery_point_arn(self) -> str:
        """A recovery point of AWS Backup's own, as it names those of the types it fully manages."""
        return f"arn:aws:backup:{self.region_name}:{self.account_id}:recovery-point:{str(mock_random.uuid4()).upper()}"

    def _failed_backup(
        self,
        backup_vault_name: str,
        resource_arn: str,
        iam_role_arn: str,
        message: str,
        created_by: dict[str, str],
    ) -> BackupJob:
        """A plan's backup job that AWS starts and fails, where StartBackupJob would refuse (its vault
        or role gone): it ends FAILED with the message, and makes nothing."""
        resource = self._source_resource(resource_arn)
        job = BackupJob(
            **self._job_fields(iam_role_arn, resource_arn, resource.resource_type, resource.name),
            backup_vault_name=backup_vault_name,
            backup_vault_arn=f"arn:aws:backup:{self.region_name}:{self.account_id}:backup-vault:{backup_vault_name}",
            failure=message,
            created_by=created_by,
        )
        self.backup_jobs[job.job_id] = job
        self._track(job)
        return job

    def _finish_backup(self, job: BackupJob) -> None:
        """Completes (or fails) the job, sends its event, then starts the copies its plan's rule asks for."""
        job.settled = True
        job.completion_date = job.due_date
        point = self.recovery_points.get(job.recovery_point_arn or "")
        if point is not None and job.failure:
            self._remove_recovery_point(point)
            job.recovery_point_arn = None
        elif point is not None:
            point.status = "COMPLETED"
            point.completion_date = job.completion_date
            if point.snapshot_id:
                ec2_backends[self.account_id][self.region_name].snapshots[point.snapshot_id].status = "completed"
        put_job_event(job)
        if point is not None and not job.failure:
            self._start_copy_actions(job, point)

    def _start_copy_actions(self, backup: BackupJob, point: RecoveryPoint) -> None:
        """The copies of a plan's rule, started as its backup completes, under the rules of any copy: a
        copy StartCopyJob would refuse is a copy job that fails with the refusal's message.

        They are dated when the backup ended, not when the sandbox settled it.
        """
        for action in backup.copy_actions:
            origin = {
                "creation_date": backup.due_date,
                "started": backup.started + backup.duration,
                "created_by": backup.created_by,
                "created_by_backup_job_id": backup.job_id,
            }
            destination = action["DestinationBackupVaultArn"]
            lifecycle = action.get("Lifecycle")
            try:
                self._begin_copy(point, destination, backup.iam_role_arn, None, lifecycle, **origin)
            except JsonRESTError as refusal:
                self._failed_copy(point, destination, backup.iam_role_arn, lifecycle, refusal.message, **origin)

    def describe_backup_job(self, backup_job_id: str) -> BackupJob:
        self.settle_due_jobs()
        if backup_job_id not in self.backup_jobs:
            raise ResourceNotFoundException(msg=f"Cannot find backup job with id {backup_job_id}")
        return self.backup_jobs[backup_job_id]

    @paginate(pagination_model=PAGINATION_MODEL)
    def list_backup_jobs(self, filters: dict[str, Any]) -> list[BackupJob]:
        self.settle_due_jobs()
        return matching(self.backup_jobs.values(), filters, JOB_FILTERS)

    # ----- copy jobs -----------------------------------------------------------------------
    def start_copy_job(
        self,
        recovery_point_arn: str,
        source_backup_vault_name: str,
        destination_backup_vault_arn: str,
        iam_role_arn: str,
        idempotency_token: str | None,
        lifecycle: dict[str, Any] | None,
    ) -> CopyJob:
        """Starts a copy. Refusals AWS makes at once raise here; the rest fail the job later.

        The outcome is decided when the job starts (AWS decides while it runs), so fixing a policy
        during a slow job does not rescue it. copy_rules.copy_failure decides it, checking the rules
        in the order AWS meets them.
        """
        self.settle_due_jobs()
        earlier = self._started_with(CopyJob, idempotency_token)
        if earlier is not None:
            return earlier
        point = self._recovery_point(source_backup_vault_name, recovery_point_arn)
        return self._begin_copy(point, destination_backup_vault_arn, iam_role_arn, idempotency_token, lifecycle)

    def _begin_copy(
        self,
        point: RecoveryPoint,
        destination_backup_vault_arn: str,
        iam_role_arn: str,
        idempotency_token: str | None,
        lifecycle: dict[str, Any] | None,
        **origin: Any,
    ) -> CopyJob:
        """A copy job of the point, on demand or of a plan's rule (`origin`: the CopyJob fields that say
        when and from which backup it started); refusals raise.

        One job may change account and Region for every type, unless settings.refuse_one_action_types names
        the point's type (AWS's rule before October 2025 for the databases). Simplification: that refusal
        says "for RDS resources" whatever the database type (Aurora, Neptune and DocumentDB snapshots are RDS
        cluster snapshots too). A copy the settings queue a retry for (retry_next_copy) stays CREATED that long
        first, as AWS's retry phase after a system error keeps it."""
        recovery_point_arn = point.recovery_point_arn
        destination = parse_arn(destination_backup_vault_arn)
        if destination["service"] != "backup" or not destination["resource"].startswith("backup-vault:"):
            raise InvalidParameterValueException(
                msg=f"Invalid destination backup vault ARN: {destination_backup_vault_arn}"
            )
        if point.status != "COMPLETED":
            raise InvalidRequestException(msg=f"Recovery point {recovery_point_arn} is not in COMPLETED state.")
        if point.storage_class != "WARM":
            raise InvalidRequestException(
                msg=f"Recovery point {recovery_point_arn} is in cold storage and cannot be copied."
            )
        self._role_must_exist(iam_role_arn)
        validate_lifecycle(lifecycle)
        cross_account = destination["account"] != self.account_id
        cross_region = destination["region"] != self.region_name
        refused = settings.refused_one_action()
        if cross_account and cross_region and not copies_in_one_action(point.resource_type, refused):
            raise InvalidParameterValueException(
                msg=MSG_RDS_TWO_HOPS.format(source_region=self.region_name, destination_region=destination["region"])
            )
        destination_vault_name = destination["resource"].split(":", 1)[1]
        if not cross_account:
            self.backend_in(self.account_id, destination["region"]).describe_backup_vault(destination_vault_name)
        job = CopyJob(
            **self._copy_fields(point, destination_backup_vault_arn, iam_role_arn, lifecycle),
            idempotency_token=idempotency_token,
            retry_seconds=settings.take_copy_retry(),
            **origin,
        )
        destination_backend = self.backend_in(job.destination_account_id, job.destination_region)
        job.failure = settings.take_injected_failure("copy") or copy_failure(
            point,
            job,
            cross_account_enabled=self.cross_account_backup_enabled(),
            destination_vault=destination_backend.vaults.get(destination_vault_name),
            destination_vault_policy=destination_backend.vault_policies.get(destination_vault_name),
        )
        self.copy_jobs[job.job_id] = job
        self._track(job)
        return job

    def _failed_copy(
        self,
        point: RecoveryPoint,
        destination_backup_vault_arn: str,
        iam_role_arn: str,
        lifecycle: dict[str, Any] | None,
        message: str,
        **origin: Any,
    ) -> CopyJob:
        """A plan's copy job that ends FAILED with the message StartCopyJob would have refused it with."""
        job = CopyJob(
            **self._copy_fields(point, destination_backup_vault_arn, iam_role_arn, lifecycle),
            failure=message,
            **origin,
        )
        self.copy_jobs[job.job_id] = job
        self._track(job)
        return job

    def _finish_copy(self, job: CopyJob) -> None:
        """Delivers the copy (unless it fails), then sends its event."""
        job.settled = True
        job.completion_date = job.due_date
        if not job.failure:
            self._deliver_copy(job)
        put_job_event(job)

    def _deliver_copy(self, job: CopyJob) -> None:
        source = self.recovery_points.get(job.source_recovery_point_arn)
        destination_backend = self.backend_in(job.destination_account_id, job.destination_region)
        vault_name = job.destination_backup_vault_arn.split(":backup-vault:", 1)[1]
        vault = destination_backend.vaults.get(vault_name)
        if source is None or vault is None:
            job.failure = MSG_VAULT_ACCESS_DENIED if vault is None else "Source recovery point no longer exists."
            return
        job.destination_encryption_key_arn = vault.encryption_key_arn
        job.destination_recovery_point_arn = destination_backend.receive_copy(source, vault, job)

    def receive_copy(self, source: RecoveryPoint, vault: Vault, job: CopyJob) -> str:
        """Create the copied recovery point here, re-encrypted with the destination vault's key."""
        snapshot_id = None
        if source.snapshot_id:
            source_snapshot = ec2_backends[source.account_id][source.region].snapshots[source.snapshot_id]
            ec2 = ec2_backends[self.account_id][self.region_name]
            snapshot = Snapshot(
                ec2,
                random_snapshot_id(),
                volume=source_snapshot.volume,
                description=f"This snapshot is created by the AWS Backup service (copy job {job.job_id}).",
                encrypted=True,
                kms_key_id=vault.encryption_key_arn,
                owner_id=self.account_id,
            )
            ec2.snapshots[snapshot.id] = snapshot
            snapshot_id = snapshot.id
            arn = f"arn:aws:ec2:{self.region_name}::snapshot/{snapshot.id}"
        elif source.resource_type in FULLY_MANAGED_TYPES:
            arn = self._backup_recovery_point_arn()
        else:
            arn = self._database_snapshot_arn(source.resource_type, f"copyjob-{job.job_id.lower()}")
        point = RecoveryPoint(
            recovery_point_arn=arn,
            backup_vault_name=vault.backup_vault_name,
            backup_vault_arn=vault.backup_vault_arn,
            account_id=self.account_id,
            region=self.region_name,
            resource_arn=source.resource_arn,
            resource_type=source.resource_type,
            resource_name=source.resource_name,
            iam_role_arn=f"arn:aws:iam::{self.account_id}:{BACKUP_SERVICE_LINKED_ROLE}",
            encryption_key_arn=vault.encryption_key_arn,
            lifecycle=job.lifecycle,
            created_by=job.created_by or {"CopyJobId": job.job_id},
            source_backup_vault_arn=source.backup_vault_arn,
            snapshot_id=snapshot_id,
            status="COMPLETED",
            creation_date=job.due_date,
            completion_date=job.due_date,
        )
        self.add_recovery_point(point)
        return arn

    def describe_copy_job(self, copy_job_id: str) -> CopyJob:
        self.settle_due_jobs()
        if copy_job_id not in self.copy_jobs:
            raise ResourceNotFoundException(msg=f"Cannot find copy job with id {copy_job_id}")
        return self.copy_jobs[copy_job_id]

    @paginate(pagination_model=PAGINATION_MODEL)
    def list_copy_jobs(self, filters: dict[str, Any]) -> list[CopyJob]:
        """Copy jobs started from this account and Region.

        Simplification: ByAccountId from the management account does not widen the view to members.
        """
        self.settle_due_jobs()
        return matching(self.copy_jobs.values(), filters, JOB_FILTERS)

    # ----- restore jobs --------------------------------------------------------------------
    def get_recovery_point_restore_metadata(self, backup_vault_name: str, recovery_point_arn: str) -> dict[str, Any]:
        """What a restore of the point starts from, as AWS describes an EBS snapshot's volume.

        Simplification: EBS recovery points of this account and Region only. Of AWS's keys the
        metadata holds availabilityZone, encrypted, kmsKeyId (the snapshot's key ARN, when it has
        one), volumeSize and volumeType; AWS adds others (the backed-up volume's ID among them). A
        point copied from another Region names this Region's first zone, where the backed-up
        volume's zone would not exist.
        """
        self.settle_due_jobs()
        point = self._recovery_point(backup_vault_name, recovery_point_arn)
        if point.snapshot_id is None:
            raise InvalidParameterValueException(msg="The sandbox gives restore metadata for EBS recovery points only.")
        snapshot = ec2_backends[self.account_id][self.region_name].snapshots[point.snapshot_id]
        volume = snapshot.volume
        zone = volume.zone.name if volume.zone.region_name == self.region_name else f"{self.region_name}a"
        key = kms_models.key_from_arn(snapshot.kms_key_id)
        metadata = {
            "availabilityZone": zone,
            "encrypted": "true" if snapshot.encrypted else "false",
            "kmsKeyId": key.arn if key else snapshot.kms_key_id,
            "volumeSize": str(volume.size),
            "volumeType": volume.volume_type,
        }
        return {
            "BackupVaultArn": point.backup_vault_arn,
            "RecoveryPointArn": recovery_point_arn,
            "ResourceType": point.resource_type,
            "RestoreMetadata": {name: value for name, value in metadata.items() if value is not None},
        }

    def start_restore_job(
        self, recovery_point_arn: str, metadata: dict[str, str], iam_role_arn: str | None, idempotency_token: str | None
    ) -> RestoreJob:
        """Restores an EBS recovery point of this account and Region to a new volume; a repeated
        IdempotencyToken returns the first job.

        Simplification: only EBS. IamRoleArn is optional in AWS's API model; a job without one is
        not held to its key's policy (see _finish_restore), as the sandbox does not guess the role
        AWS would use.
        """
        self.settle_due_jobs()
        earlier = self._started_with(RestoreJob, idempotency_token)
        if earlier is not None:
            return earlier
        point = self.recovery_points.get(recovery_point_arn)
        if point is None:
            raise ResourceNotFoundException(msg=f"Recovery point {recovery_point_arn} not found.")
        if point.snapshot_id is None:
            raise InvalidParameterValueException(msg="The sandbox restores EBS recovery points only.")
        if iam_role_arn:
            self._role_must_exist(iam_role_arn)
        job = RestoreJob(
            **self._job_fields(iam_role_arn or "", point.resource_arn, point.resource_type),
            recovery_point_arn=recovery_point_arn,
            backup_vault_arn=point.backup_vault_arn,
            metadata=dict(metadata or {}),
            idempotency_token=idempotency_token,
        )
        self.restore_jobs[job.job_id] = job
        self._track(job)
        return job

    def _finish_restore(self, job: RestoreJob) -> None:
        """Creates the volume under the Metadata's kmsKeyId, else the snapshot's key, if the job's role
        may use that key (restore_rules.restore_key_failure); otherwise the job fails and makes nothing.

        Unlike a copy's, the outcome is decided when the job ends, so a key policy fixed while a slow
        restore runs rescues it. Simplification: the volume has the snapshot's size (volumeSize is
        ignored), and a volumeType that needs iops is restored as gp3.
        """
        job.settled = True
        job.completion_date = job.due_date
        point = self.recovery_points.get(job.recovery_point_arn)
        ec2 = ec2_backends[self.account_id][self.region_name]
        snapshot = ec2.snapshots.get(point.snapshot_id) if point and point.snapshot_id else None
        if snapshot is None:
            job.failure = "Recovery point no longer exists."
            return
        zone = job.metadata.get("availabilityZone") or f"{self.region_name}a"
        if ec2.get_zone_by_name(zone) is None:
            job.failure = MSG_RESTORE_ZONE.format(zone=zone)
            return
        key_ref = job.metadata.get("kmsKeyId") or snapshot.kms_key_id
        key = self._named_key(key_ref) if key_ref else None
        if key_ref and key is None:
            job.failure = MSG_RESTORE_KEY_NOT_FOUND.format(
                key=key_ref, account_id=self.account_id, region=self.region_name
            )
            return
        if key is not None and job.iam_role_arn:
            job.failure = restore_key_failure(key, self.account_id, self.region_name, job.iam_role_arn)
            if job.failure:
                return
        volume_type = job.metadata.get("volumeType") or snapshot.volume.volume_type
        volume = ec2.create_volume(
            size=snapshot.volume.size,
            zone_name=zone,
            snapshot_id=snapshot.id,
            encrypted=key is not None,
            kms_key_id=key.arn if key else None,
            volume_type=volume_type if volume_type in RESTORABLE_VOLUME_TYPES else "gp3",
        )
        job.created_resource_arn = f"arn:aws:ec2:{self.region_name}:{self.account_id}:volume/{volume.id}"

    def _named_key(self, key_ref: str) -> Key | None:
        """The key a reference names (a restore's, a file system's): a key or alias ARN anywhere, else a key ID or
        alias name here."""
        if key_ref.startswith("arn:"):
            return kms_models.key_from_arn(key_ref)
        return kms_models.find_key(self.account_id, self.region_name, key_ref)

    def describe_restore_job(self, restore_job_id: str) -> RestoreJob:
        self.settle_due_jobs()
        if restore_job_id not in self.restore_jobs:
            raise ResourceNotFoundException(msg=f"Cannot find restore job with id {restore_job_id}")
        return self.restore_jobs[restore_job_id]

    @paginate(pagination_model=PAGINATION_MODEL)
    def list_restore_jobs(self, filters: dict[str, Any]) -> list[RestoreJob]:
        """Restore jobs started from this account and Region.

        Simplification: ByRestoreTestingPlanArn and ByParentJobId are ignored (the sandbox has no
        restore testing plans, and no job has a parent).
        """
        self.settle_due_jobs()
        return matching(self.restore_jobs.values(), filters, JOB_FILTERS)

    def put_restore_validation_result(
        self, restore_job_id: str, validation_status: str, validation_status_message: str | None
    ) -> None:
        """Records a restored resource's validation on its job, for DescribeRestoreJob and ListRestoreJobs.

        The sandbox's rule: only a job that ended COMPLETED takes a result (a failed restore made
        nothing to validate), else InvalidRequestException.
        """
        if validation_status not in RESTORE_VALIDATION_STATUSES:
            raise InvalidParameterValueException(
                msg=f"Invalid ValidationStatus: {validation_status}. "
                f"Valid values are {', '.join(RESTORE_VALIDATION_STATUSES)}."
            )
        job = self.describe_restore_job(restore_job_id)
        if job.status != "COMPLETED":
            raise InvalidRequestException(
                msg=f"Restore job {restore_job_id} is {job.status}: a validation result can be put only "
                "for a restore job that has COMPLETED."
            )
        job.validation_status = validation_status
        job.validation_status_message = validation_status_message
