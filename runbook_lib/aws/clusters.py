"""DB clusters: Aurora, Neptune and DocumentDB share one ARN form (arn:aws:rds:REGION:ACCOUNT:cluster:NAME),
so a cluster's type is its Engine, as DescribeDBClusters reports it, not its ARN.

Every answer is a fact of the run (facts.py keeps DescribeDBClusters): the preflight, the checks and the
steps that ask what a resource is share one read. The RDS API answers for Neptune and DocumentDB
clusters too (their own APIs are the same service), so one client reads all three.
"""

from __future__ import annotations

import re
from typing import Any

from ..core import arns, resource_types
from ..core.resource_types import ResourceType
from . import clients

# What DescribeDBClusters takes as an identifier: 1-63 letters, digits and single hyphens, a letter first.
CLUSTER_IDENTIFIER = re.compile(r"\A[A-Za-z](?!.*--)[A-Za-z0-9-]{0,62}(?<!-)\Z")


def is_cluster(resource_arn: str) -> bool:
    found = arns.parts(resource_arn)
    return found["service"] == "rds" and found["resource"].startswith("cluster:")


def identifier(resource_arn: str) -> str:
    return arns.parts(resource_arn)["resource"].split(":", 1)[1]


def describe(profile: str, region: str, name: str) -> dict[str, Any] | None:
    """The DB cluster of this identifier as DescribeDBClusters reports it, or None when there is none (or the
    name is not one RDS would look up)."""
    if not CLUSTER_IDENTIFIER.match(name):
        return None
    rds = clients.client(profile, "rds", region)
    try:
        found = rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"]
    except rds.exceptions.DBClusterNotFoundFault:
        return None
    return dict(found[0]) if found else None


def of_arn(profile: str, region: str, resource_arn: str) -> dict[str, Any] | None:
    """The DB cluster an ARN names, or None (not a cluster's ARN, or no such cluster)."""
    return describe(profile, region, identifier(resource_arn)) if is_cluster(resource_arn) else None


def type_of(profile: str, region: str, resource_arn: str) -> ResourceType | None:
    """The capability table's row of a resource: by its ARN, or for a DB cluster by its Engine (one
    DescribeDBClusters, a fact of the run). None for a type the table does not hold, or no such cluster."""
    if not resource_types.needs_engine(resource_arn):
        return resource_types.type_of(resource_arn)
    cluster = of_arn(profile, region, resource_arn)
    return resource_types.type_of(resource_arn, str(cluster.get("Engine", ""))) if cluster else None
