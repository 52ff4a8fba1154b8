"""What AWS Backup allows per resource type, as the sandbox plays it.

The sandbox's own copy of the runbook's capability table (runbook_lib/data/resource_types.json): the
sandbox plays AWS and reads none of the runbook's knowledge; sandbox/tests/test_resource_rules.py
holds the two to agree. Names are AWS Backup's resource types.
"""

from __future__ import annotations

# Types whose copy may change account and Region in one job: every type, since October 2025 for the
# databases (AWS What's New: "cross-region, cross-account copies in a single action for Amazon RDS, Amazon
# Aurora, Amazon Neptune, and Amazon DocumentDB snapshots").
ONE_ACTION_TYPES = frozenset({"EBS", "EC2", "EFS", "RDS", "Aurora", "Neptune", "DocumentDB"})
# Types AWS's guide copies in two hops: none any more.
TWO_HOP_TYPES: frozenset[str] = frozenset()
# Types AWS copied in two hops before October 2025: settings.refuse_one_action_types makes StartCopyJob refuse
# one job across account and Region for them again, as AWS does where it still refuses it.
REFUSABLE_TYPES = frozenset({"RDS", "Aurora", "Neptune", "DocumentDB"})
# Types whose copies may go into a vault under the AWS managed key aws/backup (fully managed by AWS Backup).
ANY_DESTINATION_KEY_TYPES = frozenset({"EFS"})
# Types whose backups keep the source resource's key, which must then be customer managed to be shared.
SOURCE_KEY_TYPES = frozenset({"EBS", "EC2", "RDS", "Aurora", "Neptune", "DocumentDB"})
TYPES = ONE_ACTION_TYPES | TWO_HOP_TYPES
# Types fully managed by AWS Backup: backed up under the vault's key, into recovery points of AWS Backup's
# own (arn:aws:backup:REGION:ACCOUNT:recovery-point:ID) rather than the service's snapshots.
FULLY_MANAGED_TYPES = TYPES - SOURCE_KEY_TYPES
# AWS Backup's resource type of a DB cluster, by the cluster's Engine (its ARN is the same for all three).
CLUSTER_TYPES = {
    "aurora": "Aurora",
    "aurora-mysql": "Aurora",
    "aurora-postgresql": "Aurora",
    "neptune": "Neptune",
    "docdb": "DocumentDB",
}


def copies_in_one_action(resource_type: str, refused: frozenset[str]) -> bool:
    """Whether one copy job may change both account and Region for this type: AWS's rule, unless the sandbox
    is set to refuse it for the type (`refused`)."""
    return resource_type in ONE_ACTION_TYPES and resource_type not in refused
