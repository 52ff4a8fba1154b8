"""ARNs in the partition of their Region (aws, aws-cn, aws-us-gov, ...), from botocore's endpoint data.

Every ARN the runbook builds comes from here, so that a run in cn-north-1 names
`arn:aws-cn:...` and never `arn:aws:...`.
"""

from __future__ import annotations

from functools import lru_cache

import botocore.session

BACKUP_SERVICE_LINKED_ROLE = "role/aws-service-role/backup.amazonaws.com/AWSServiceRoleForBackup"


@lru_cache(maxsize=None)
def partition(region: str) -> str:
    """The partition a Region belongs to (botocore's endpoint data; params admits only Regions it lists)."""
    return botocore.session.get_session().get_partition_for_region(region)


@lru_cache(maxsize=None)
def regions() -> frozenset[str]:
    """Every Region botocore knows for AWS Backup or EC2, in every partition."""
    session = botocore.session.get_session()
    found: set[str] = set()
    for name in session.get_available_partitions():
        for service in ("backup", "ec2"):
            found.update(session.get_available_regions(service, partition_name=name))
    return frozenset(found)


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
