"""ARNs in the partition of their Region (aws, aws-cn, aws-us-gov, ...), from botocore's partitions data.

Every ARN the runbook builds comes from here, so that a run in cn-north-1 names
`arn:aws-cn:...` and never `arn:aws:...`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from .botocore_data import LOADER

BACKUP_SERVICE_LINKED_ROLE = "role/aws-service-role/backup.amazonaws.com/AWSServiceRoleForBackup"


@lru_cache(maxsize=None)
def _partitions() -> tuple[dict[str, Any], ...]:
    """botocore's partitions data: each partition's ID, Regions and the pattern of its Region names
    (a few kilobytes; botocore's endpoint data, a megabyte, is not needed for this)."""
    return tuple(LOADER.load_data("partitions")["partitions"])


@lru_cache(maxsize=None)
def partition(region: str) -> str:
    """The partition a Region belongs to (params admits only Regions botocore lists)."""
    for found in _partitions():
        if region in found["regions"]:
            return str(found["id"])
    for found in _partitions():
        if re.match(found["regionRegex"], region):
            return str(found["id"])
    return "aws"


@lru_cache(maxsize=None)
def regions() -> frozenset[str]:
    """Every Region botocore lists, in every partition (not the partitions' global pseudo-Regions)."""
    return frozenset(name for found in _partitions() for name in found["regions"] if name != f"{found['id']}-global")


def account_root(account: str, region: str) -> str:
    return f"arn:{partition(region)}:iam::{account}:root"


def backup_vault(account: str, region: str, name: str) -> str:
    return f"arn:{partition(region)}:backup:{region}:{account}:backup-vault:{name}"


def volume(account: str, region: str, volume_id: str) -> str:
    return f"arn:{partition(region)}:ec2:{region}:{account}:volume/{volume_id}"


def backup_service_role(account: str, region: str) -> str:
    """AWS Backup's service-linked role: what the destination account uses a shared key through."""
    return f"arn:{partition(region)}:iam::{account}:{BACKUP_SERVICE_LINKED_ROLE}"


def parts(arn: str) -> dict[str, str]:
    """partition, service, region, account and resource of an ARN (empty strings where it has none)."""
    fields = arn.split(":", 5)
    fields += [""] * (6 - len(fields))
    return dict(zip(("arn", "partition", "service", "region", "account", "resource"), fields, strict=True))


def snapshot_id(arn: str) -> str | None:
    """The EBS snapshot ID an EC2 snapshot ARN names, or None for any other ARN."""
    found = parts(arn)
    if found["service"] == "ec2" and found["resource"].startswith("snapshot/"):
        return found["resource"].split("/", 1)[1]
    return None
