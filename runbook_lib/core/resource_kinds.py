"""One class per kind of resource the runbook backs up and copies, each keyed to its row of the capability table.

A kind says what the rest of the runbook would otherwise work out from ARN text: how its ARN is recognised
and what identifier it carries, how it is found by name and what reading it calls (`Lookup`: aws/context.py
performs it, so this layer calls no AWS), where its description holds its KMS key, whether its backups keep
that key or take the vault's, the copy rules of its row, the IAM actions and scopes looking it up needs, and
what AWS Backup makes of it (the recovery points the policy files name). `KINDS` holds them, and
`kind_of(arn)` is how every other module tells one kind from another.

The ARN form itself (service and resource prefix, and a DB cluster's engines) is data in the table's row
(data/resource_types.json), which resource_types.py matches: Aurora, Neptune and DocumentDB share one form
and are told apart by their Engine, so `kind_of` takes it, and `looked_up_as` gives the kind to look a
cluster up by before its Engine is known (the three are read alike). A new kind is its row plus its class here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from . import arns, resource_types
from .resource_types import ResourceType

# How a lookup finds one resource: by a filter of a Describe call (EC2), by the identifier a Describe call
# takes (RDS), or in the listing of the account's Region, read once (EFS).
BY_FILTER = "filter"
BY_IDENTIFIER = "identifier"
BY_LISTING = "listing"

# What RDS takes as a DB instance's or DB cluster's identifier: 1-63 letters, digits and single hyphens, a letter
# first; RDS refuses to look up any other name.
DB_IDENTIFIER = re.compile(r"\A[A-Za-z](?!.*--)[A-Za-z0-9-]{0,62}(?<!-)\Z")

# Recovery points as the policy files name them: (service, resource pattern, whether the ARN names the account).
RecoveryPoints = tuple[tuple[str, str, bool], ...]
# What AWS Backup names the recovery points it manages fully (EFS's among them).
BACKUP_RECOVERY_POINTS: RecoveryPoints = (("backup", "recovery-point:*", True),)


@dataclass(frozen=True)
class Lookup:
    """What reading a resource of a kind calls, for aws/context.py to perform: the client and operation,
    the IAM action that allows it, the response's list, and the fields and parameters it is read by."""

    service: str  # the boto3 client
    operation: str  # the client's method
    action: str  # the IAM action the call needs
    items: str  # the response's list of resources
    by: str  # BY_FILTER, BY_IDENTIFIER or BY_LISTING
    id_parameter: str  # the filter or request parameter that takes the identifier ("" for a listing)
    name_parameter: str  # the filter, request parameter or field that takes resource_name
    id_field: str  # the field holding the identifier its ARN carries
    arn_field: str = ""  # the field holding the ARN ("": built from the identifier)
    key_field: str = "KmsKeyId"  # the field holding the resource's KMS key
    not_found: str = ""  # the client's exception for an identifier that names nothing
    scope: str = ""  # the policy files' Sid for the action's resources ("": IAM defines no resource type for it)


class ResourceKind:
    """A kind of resource: its row of the capability table, and how the runbook recognises, finds and reads it."""

    type_name: ClassVar[str]  # its row of the capability table
    noun: ClassVar[str]  # what a message calls one ("EBS volume")
    plural: ClassVar[str]  # and more than one
    one: ClassVar[str]  # what a message allows instead ("a volume")
    identifier_pattern: ClassVar[str]  # the identifier an ARN of it may carry (a regular expression)
    lookup: ClassVar[Lookup | None] = None  # None: the runbook does not look one up (nor back one up)
    name_pattern: ClassVar[re.Pattern[str] | None] = None  # the names its lookup takes; None: any
    in_fleet: ClassVar[bool] = False  # whether `resources` may list it
    tagged: ClassVar[bool] = False  # whether a fleet's Name tags and resource_tags select it
    sized: ClassVar[bool] = False  # whether its description gives the size the cost estimate reads
    # The service's own recovery points AWS Backup makes of it; () for AWS Backup's (BACKUP_RECOVERY_POINTS).
    service_recovery_points: ClassVar[RecoveryPoints] = ()

    def __repr__(self) -> str:
        return f"<kind {self.type_name}>"

    @property
    def row(self) -> ResourceType:
        return resource_types.TYPES[self.type_name]

    @property
    def engines(self) -> tuple[str, ...]:
        return self.row.arn_engines

    @property
    def arn_pattern(self) -> str:
        """The resource part of its ARN as a regular expression (param_values.RESOURCE_ARN joins them)."""
        return re.escape(self.row.arn_resource_prefix) + self.identifier_pattern

    def recognises(self, resource_arn: str) -> bool:
        """Whether the ARN has this kind's form (a DB cluster's is all three cluster kinds' alike)."""
        return self.row in resource_types.candidates(resource_arn)

    def identifier(self, resource_arn: str) -> str:
        """The identifier its ARN carries: a volume ID, a DB identifier, a file system ID."""
        return arns.parts(resource_arn)["resource"].removeprefix(self.row.arn_resource_prefix)

    def identifiers_in(self, items: Iterable[str]) -> list[str]:
        """The identifiers of the ARNs of this kind among these (names and other kinds' ARNs left out)."""
        return [self.identifier(item) for item in items if is_a(item, self)]

    def shown(self, resource_arn: str) -> str:
        """How a message names it when it is not found."""
        return self.identifier(resource_arn)

    def arn(self, account: str, region: str, identifier: str) -> str:
        prefix = self.row.arn_resource_prefix
        return f"arn:{arns.partition(region)}:{self.row.arn_service}:{region}:{account}:{prefix}{identifier}"

    def arn_of(self, described: Mapping[str, Any], account: str, region: str) -> str:
        """The ARN of a resource as its lookup describes it."""
        assert self.lookup is not None
        if self.lookup.arn_field:
            return str(described[self.lookup.arn_field])
        return self.arn(account, region, str(described[self.lookup.id_field]))

    def key_of(self, described: Mapping[str, Any]) -> str | None:
        """The KMS key its description names (as the service reports it), or None (unencrypted)."""
        return described.get(self.lookup.key_field) if self.lookup else None

    def refusal(self, described: Mapping[str, Any]) -> str:
        """Why AWS Backup cannot back up this one ('' when it can)."""
        return ""

    def takes_name(self, name: str) -> bool:
        return self.name_pattern is None or bool(self.name_pattern.match(name))

    @property
    def keeps_resource_key(self) -> bool:
        """Whether its backups stay under its own key (a snapshot), which must then be customer managed to
        leave the account; else they take the vault's key (EFS and the types AWS Backup manages fully)."""
        return not takes_vault_key(self)

    @property
    def any_destination_key(self) -> bool:
        """Whether its copies may go under any key of the destination vault, aws/backup included."""
        return self.row.any_destination_key

    def copies_in_one_action(self, one_action_types: Iterable[str] = (), two_hop_types: Iterable[str] = ()) -> bool:
        return self.row.copies_in_one_action(one_action_types, two_hop_types)

    @property
    def recovery_points(self) -> RecoveryPoints:
        return self.service_recovery_points or BACKUP_RECOVERY_POINTS

    @property
    def lookup_actions(self) -> tuple[str, ...]:
        """The IAM actions finding it by name or ARN and reading its key need."""
        return (self.lookup.action,) if self.lookup else ()


class EbsVolume(ResourceKind):
    type_name = "EBS"
    noun, plural, one = "EBS volume", "EBS volumes", "a volume"
    identifier_pattern = "vol-[0-9a-f]{8,17}"
    lookup = Lookup(
        "ec2",
        "describe_volumes",
        "ec2:DescribeVolumes",
        "Volumes",
        BY_FILTER,
        id_parameter="volume-id",
        name_parameter="tag:Name",
        id_field="VolumeId",
    )
    in_fleet = tagged = sized = True
    service_recovery_points = (("ec2", "snapshot/*", False),)
    # The states AWS Backup can back up (creating, deleting, deleted and error cannot be).
    usable_states = ("available", "in-use")

    def refusal(self, described: Mapping[str, Any]) -> str:
        if described["State"] in self.usable_states:
            return ""
        return (
            f"volume {described['VolumeId']} is {described['State']}; allowed: a volume that is "
            f"{' or '.join(self.usable_states)}"
        )


class Ec2Instance(ResourceKind):
    """A row of the table the runbook does not back up (resource_arn takes no instance): no lookup."""

    type_name = "EC2"
    noun, plural, one = "EC2 instance", "EC2 instances", "an instance"
    identifier_pattern = "i-[0-9a-f]{8,17}"
    service_recovery_points = (("ec2", "image/*", False), ("ec2", "snapshot/*", False))


class RdsInstance(ResourceKind):
    type_name = "RDS"
    noun, plural, one = "RDS DB instance", "RDS DB instances", "a DB instance"
    identifier_pattern = "[A-Za-z][A-Za-z0-9-]{0,62}"
    lookup = Lookup(
        "rds",
        "describe_db_instances",
        "rds:DescribeDBInstances",
        "DBInstances",
        BY_IDENTIFIER,
        id_parameter="DBInstanceIdentifier",
        name_parameter="DBInstanceIdentifier",
        id_field="DBInstanceIdentifier",
        arn_field="DBInstanceArn",
        not_found="DBInstanceNotFoundFault",
        scope="Databases",
    )
    name_pattern = DB_IDENTIFIER
    in_fleet = sized = True
    service_recovery_points = (("rds", "snapshot:awsbackup:*", True),)

    def refusal(self, described: Mapping[str, Any]) -> str:
        engine = str(described.get("Engine", ""))
        if not engine.startswith("aurora"):
            return ""
        return (
            f"{described['DBInstanceIdentifier']} is an Aurora DB instance ({engine}); allowed: an RDS DB instance "
            "that is not part of an Aurora cluster (AWS Backup backs up the cluster)"
        )


class DbCluster(ResourceKind):
    """Aurora, Neptune and DocumentDB: one ARN form and one lookup (the RDS API answers for all three)."""

    noun, one = "DB cluster", "a DB cluster"
    identifier_pattern = "[A-Za-z][A-Za-z0-9-]{0,62}"
    lookup = Lookup(
        "rds",
        "describe_db_clusters",
        "rds:DescribeDBClusters",
        "DBClusters",
        BY_IDENTIFIER,
        id_parameter="DBClusterIdentifier",
        name_parameter="DBClusterIdentifier",
        id_field="DBClusterIdentifier",
        arn_field="DBClusterArn",
        not_found="DBClusterNotFoundFault",
        scope="DbClusters",
    )
    name_pattern = DB_IDENTIFIER
    service_recovery_points = (("rds", "cluster-snapshot:awsbackup:*", True),)


class AuroraCluster(DbCluster):
    type_name = "Aurora"
    plural = "Aurora DB clusters"


class NeptuneCluster(DbCluster):
    type_name = "Neptune"
    plural = "Neptune DB clusters"


class DocumentDbCluster(DbCluster):
    type_name = "DocumentDB"
    plural = "DocumentDB clusters"


class EfsFileSystem(ResourceKind):
    type_name = "EFS"
    noun, plural, one = "EFS file system", "EFS file systems", "a file system"
    identifier_pattern = "fs-[0-9a-f]{8,40}"
    lookup = Lookup(
        "efs",
        "describe_file_systems",
        "elasticfilesystem:DescribeFileSystems",
        "FileSystems",
        BY_LISTING,
        id_parameter="",
        name_parameter="Name",
        id_field="FileSystemId",
        arn_field="FileSystemArn",
        scope="FileSystems",
    )
    sized = True

    def shown(self, resource_arn: str) -> str:
        return arns.parts(resource_arn)["resource"]


# ----- the registry: every class above that names a row, in the table's order (the order a name is looked
# up in); a row without its class fails here, at import.


def _classes(base: type[ResourceKind]) -> Iterator[type[ResourceKind]]:
    for cls in base.__subclasses__():
        if "type_name" in vars(cls):
            yield cls
        yield from _classes(cls)


_BY_NAME = {cls.type_name: cls() for cls in _classes(ResourceKind)}
KINDS: dict[str, ResourceKind] = {name: _BY_NAME[name] for name in resource_types.TYPES}
EBS, EC2, RDS, EFS = KINDS["EBS"], KINDS["EC2"], KINDS["RDS"], KINDS["EFS"]
AURORA, NEPTUNE, DOCUMENTDB = KINDS["Aurora"], KINDS["Neptune"], KINDS["DocumentDB"]


def kinds_of(resource_arn: str) -> tuple[ResourceKind, ...]:
    """The kinds an ARN may name: one, every DB cluster kind for a cluster's ARN, none for another's."""
    if not resource_arn.startswith("arn:"):
        return ()
    return tuple(KINDS[row.name] for row in resource_types.candidates(resource_arn) if row.name in KINDS)


def kind_of(resource_arn: str, engine: str | None = None) -> ResourceKind | None:
    """The kind an ARN names, or None: a DB cluster's needs its `engine` (DescribeDBClusters' Engine)."""
    row = resource_types.type_of(resource_arn, engine) if resource_arn.startswith("arn:") else None
    return KINDS.get(row.name) if row else None


def looked_up_as(resource_arn: str) -> ResourceKind | None:
    """The kind to find and read the ARN's resource as: the kinds that share an ARN form share its lookup."""
    found = kinds_of(resource_arn)
    return found[0] if found else None


def is_a(resource_arn: str, kind: ResourceKind) -> bool:
    """Whether the ARN has the form of this kind's ARNs."""
    return kind in kinds_of(resource_arn)


def engines() -> dict[str, str]:
    """Each DB cluster engine a kind is told by, with the kind's name."""
    return {engine: kind.type_name for kind in KINDS.values() for engine in kind.engines}


def _distinct(kinds: Iterable[ResourceKind]) -> tuple[ResourceKind, ...]:
    """One kind per lookup (the DB cluster kinds share one)."""
    seen: dict[Lookup, ResourceKind] = {}
    for kind in kinds:
        if kind.lookup is not None:
            seen.setdefault(kind.lookup, kind)
    return tuple(seen.values())


# The kinds resource_name may name, one per lookup, in the order they are looked for (volumes first: the
# walkthrough's lookup costs one read).
NAMED = _distinct(KINDS.values())
# The kinds `resources` may list by ARN.
FLEET = tuple(kind for kind in KINDS.values() if kind.in_fleet)
# The IAM actions finding the run's resource by name reads (permissions.RESOURCE_LOOKUP).
LOOKUP_ACTIONS = tuple(dict.fromkeys(action for kind in NAMED for action in kind.lookup_actions))


def _listing(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


# What resource_name may name, as messages say it.
NAMED_NOUNS = _listing([kind.noun for kind in NAMED])
FLEET_NOUNS = _listing([kind.noun for kind in FLEET])


# The rule of the destination key: customer managed, unless the resource's kind allows any (EFS).
CUSTOMER_MANAGED_KEY = "a customer managed key"


def destination_key_allowed(kind: ResourceKind | ResourceType | None, customer_managed: bool) -> bool:
    """Whether copies of a resource of this kind (or row) may go under the destination key: a customer managed
    key always; an AWS managed one only where the kind allows any key. An unknown kind is held to the rule."""
    return customer_managed or (kind is not None and kind.any_destination_key)


def takes_vault_key(kind: ResourceKind | ResourceType | None) -> bool:
    """Whether the backups of this kind (or row) are encrypted with the vault's key (EFS, the types AWS Backup
    manages fully), so the resource's own key never travels. An unknown kind is taken to keep its own."""
    if kind is None:
        return False
    row = kind.row if isinstance(kind, ResourceKind) else kind
    return not row.source_key_customer_managed.value


def aws_managed_destination_refused(kind: ResourceKind | ResourceType) -> str:
    """Why an AWS managed destination key will not do for copies of this kind (the rule above, said once)."""
    name = kind.type_name if isinstance(kind, ResourceKind) else kind.name
    return f"allowed: {CUSTOMER_MANAGED_KEY} (copies of {name} cannot go under an AWS managed key)"
