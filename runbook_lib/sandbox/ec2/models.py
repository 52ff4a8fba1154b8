"""EBS fidelity: a snapshot is encrypted with its volume's key, and a copy keeps it by default.

moto's CreateSnapshot marks a snapshot of an encrypted volume encrypted but drops the key, and its
CopySnapshot drops it too unless KmsKeyId is given. On AWS both keep the source's key.
"""

from __future__ import annotations

import os
from typing import Any

from moto.ec2.models.elastic_block_store import EBSBackend, Snapshot

_moto_create_snapshot = EBSBackend.create_snapshot
_moto_copy_snapshot = EBSBackend.copy_snapshot


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


def default_kms_key_id(backend: Any) -> str:
    """The account's EBS default key in this Region: aws/ebs unless someone changed it."""
    if not backend.default_kms_key_id:
        backend._create_default_encryption_key()
    return backend.default_kms_key_id


def install() -> None:
    """Also skips moto's public AMIs: the runbook uses none, and loading them costs each EC2 backend
    (one per account and Region, rebuilt on every reset) about 0.3 s and thousands of objects."""
    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
    EBSBackend.create_snapshot = create_snapshot  # type: ignore[method-assign]
    EBSBackend.copy_snapshot = copy_snapshot  # type: ignore[method-assign]
