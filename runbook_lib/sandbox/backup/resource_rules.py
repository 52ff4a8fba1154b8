"""What AWS Backup allows per resource type, as the sandbox plays it.

The sandbox's own copy of the runbook's capability table (runbook_lib/data/resource_types.json): the
sandbox plays AWS and reads none of the runbook's knowledge; tests/sandbox/test_resource_rules.py
holds the two to agree. Names are AWS Backup's resource types.
"""

from __future__ import annotations

# Types whose copy may change account and Region in one job.
ONE_ACTION_TYPES = frozenset({"EBS", "EC2", "EFS"})
# Types AWS's guide copies in two hops; settings.one_action_types may move them to one job, as AWS is
# reported to since 2025-10-30.
TWO_HOP_TYPES = frozenset({"RDS", "Aurora"})
# Types whose copies may go into a vault under the AWS managed key aws/backup (fully managed by AWS Backup).
ANY_DESTINATION_KEY_TYPES = frozenset({"EFS"})
# Types whose backups keep the source resource's key, which must then be customer managed to be shared.
SOURCE_KEY_TYPES = frozenset({"EBS", "EC2", "RDS", "Aurora"})
TYPES = ONE_ACTION_TYPES | TWO_HOP_TYPES
# Types fully managed by AWS Backup: backed up under the vault's key, into recovery points of AWS Backup's
# own (arn:aws:backup:REGION:ACCOUNT:recovery-point:ID) rather than the service's snapshots.
FULLY_MANAGED_TYPES = TYPES - SOURCE_KEY_TYPES


def copies_in_one_action(resource_type: str, one_action_types: frozenset[str]) -> bool:
    """Whether one copy job may change both account and Region for this type."""
    return resource_type in ONE_ACTION_TYPES or resource_type in one_action_types
