"""DB clusters: Aurora, Neptune and DocumentDB share one ARN form (arn:aws:rds:REGION:ACCOUNT:cluster:NAME),
so a cluster's kind is its Engine, as DescribeDBClusters reports it, not its ARN.

Every answer is a fact of the run (facts.py keeps DescribeDBClusters): the preflight, the checks and the
steps that ask what a resource is share one read. The RDS API answers for Neptune and DocumentDB
clusters too (their own APIs are the same service), so one client reads all three.
"""

from __future__ import annotations

from typing import Any

from ..core import resource_kinds, resource_types
from ..core.resource_types import ResourceType
from . import clients


def describe(profile: str, region: str, name: str) -> dict[str, Any] | None:
    """The DB cluster of this identifier as DescribeDBClusters reports it, or None when there is none (or the
    name is not one RDS would look up)."""
    if not resource_kinds.DB_IDENTIFIER.match(name):
        return None
    rds = clients.client(profile, "rds", region)
    try:
        found = rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"]
    except rds.exceptions.DBClusterNotFoundFault:
        return None
    return dict(found[0]) if found else None


def of_arn(profile: str, region: str, resource_arn: str) -> dict[str, Any] | None:
    """The DB cluster an ARN names, or None (not a cluster's ARN, or no such cluster)."""
    kind = resource_kinds.looked_up_as(resource_arn)
    return describe(profile, region, kind.identifier(resource_arn)) if kind and kind.engines else None


def type_of(profile: str, region: str, resource_arn: str) -> ResourceType | None:
    """The capability table's row of a resource: by its ARN, or for a DB cluster by its Engine (one
    DescribeDBClusters, a fact of the run). None for a type the table does not hold, or no such cluster."""
    if not resource_types.needs_engine(resource_arn):
        return resource_types.type_of(resource_arn)
    cluster = of_arn(profile, region, resource_arn)
    return resource_types.type_of(resource_arn, str(cluster.get("Engine", ""))) if cluster else None


def kind_of(profile: str, region: str, resource_arn: str) -> resource_kinds.ResourceKind | None:
    """The kind of a resource: by its ARN, or for a DB cluster by its Engine (as `type_of`)."""
    row = type_of(profile, region, resource_arn)
    return resource_kinds.KINDS.get(row.name) if row else None
