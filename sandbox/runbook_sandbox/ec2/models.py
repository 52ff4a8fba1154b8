"""EBS fidelity: a snapshot is encrypted with its volume's key, and a copy keeps it by default.

moto's CreateSnapshot marks a snapshot of an encrypted volume encrypted but drops the key, and its
CopySnapshot drops it too unless KmsKeyId is given. On AWS both keep the source's key.
A resource's tags are read from its own entry (see get_tags), and snapshots named by ID are looked up
(see describe_snapshots), so that a fleet of volumes and a vault of 10,000 snapshots stay fast.
"""

from __future__ import annotations

import os
from typing import Any

from moto.ec2.exceptions import InvalidSnapshotIdError
from moto.ec2.models.amis import AmiBackend
from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.models.elastic_block_store import EBSBackend, Snapshot
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, generic_filter, get_prefix

_moto_create_snapshot = EBSBackend.create_snapshot
_moto_copy_snapshot = EBSBackend.copy_snapshot
_moto_describe_snapshots = EBSBackend.describe_snapshots
_moto_load_amis = AmiBackend._load_amis


def create_snapshot(self: EBSBackend, volume_id: str, description: str, *args: Any, **kwargs: Any) -> Snapshot:
    snapshot = _moto_create_snapshot(self, volume_id, description, *args, **kwargs)
    if snapshot.volume.encrypted:
        snapshot.kms_key_id = snapshot.volume.kms_key_id
    return snapshot


def copy_snapshot(
    self: EBSBackend, source_snapshot_id: str, source_region: str, description: str, kms_key_id: str | None
) -> Snapshot:
    from moto.ec2.models import ec2_backends

    source = ec2_backends[self.account_id][source_region].get_snapshot(source_snapshot_id)  # type: ignore[attr-defined]
    snapshot = _moto_copy_snapshot(self, source_snapshot_id, source_region, description, kms_key_id)
    if kms_key_id is None and source.encrypted:
        snapshot.kms_key_id = source.kms_key_id
    return snapshot


def describe_snapshots(self: EBSBackend, snapshot_ids: list[str] | None = None, filters: Any = None) -> list[Snapshot]:
    """Snapshots named by ID are looked up (in the order named), not searched for among all of the
    account's: a vault of 10,000 recovery points keeps 10,000 snapshots. moto's scan answers the rest."""
    if not snapshot_ids:
        return _moto_describe_snapshots(self, snapshot_ids, filters)
    named = dict.fromkeys(snapshot_ids)
    found = [self.snapshots[snapshot_id] for snapshot_id in named if snapshot_id in self.snapshots]
    if len(found) < len(named):
        raise InvalidSnapshotIdError()
    return generic_filter(filters, found) if filters else found


def get_tags(self: TaggedEC2Resource) -> list[dict[str, str]]:
    """The resource's tags, as moto's get_tags returns them, from the resource's own entry.

    moto asks describe_tags with a resource-id filter, which walks every tag in the account and
    Region: each volume's tags cost as much as all volumes' (DescribeVolumes by tag over 200 tagged
    volumes: 80,000 pattern matches, half a second).
    """
    resource_id = getattr(self, "id", None)
    if not resource_id:
        return []
    resource_type = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
    tags = self.ec2_backend.tags.get(resource_id, {})  # type: ignore[attr-defined]  # every EC2 resource has one
    return [
        {"resource_id": resource_id, "key": key, "value": value, "resource_type": resource_type}
        for key, value in tags.items()
    ]


def default_kms_key_id(backend: Any) -> str:
    """The account's EBS default key in this Region: aws/ebs unless someone changed it."""
    if not backend.default_kms_key_id:
        backend._create_default_encryption_key()
    return backend.default_kms_key_id


def load_amis(self: AmiBackend) -> None:
    """What moto loads with MOTO_EC2_LOAD_DEFAULT_AMIS=false: none of its public AMIs (only those of
    a MOTO_AMIS_PATH file, if one is set), without setting the variable.

    moto reads it each time it builds an EC2 backend, in whichever request thread first needs one.
    Set for good, it would reach every process the server starts and every other use of moto in
    this one; set around each construction, it would change the environment under other threads.
    """
    if "MOTO_AMIS_PATH" in os.environ:
        _moto_load_amis(self)


def install() -> None:
    """Also skips moto's public AMIs: the runbook uses none, and loading them costs each EC2 backend
    (one per account and Region, rebuilt on every reset) about 0.3 s and thousands of objects."""
    AmiBackend._load_amis = load_amis  # type: ignore[method-assign]
    EBSBackend.create_snapshot = create_snapshot  # type: ignore[method-assign]
    EBSBackend.copy_snapshot = copy_snapshot  # type: ignore[method-assign]
    EBSBackend.describe_snapshots = describe_snapshots  # type: ignore[method-assign]
    TaggedEC2Resource.get_tags = get_tags  # type: ignore[method-assign]
