"""A resource kind is one class keyed to its row of the capability table: each is recognised from its ARN, says
whether its backups keep its own key and which destination keys its copies take, and which IAM actions
looking it up needs; no other module tells kinds apart by ARN text, and a new kind is one row and one class."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from runbook_lib.core import param_values, permissions, policy_files, resource_kinds, resource_types
from runbook_lib.core.resource_kinds import AURORA, DOCUMENTDB, EBS, EC2, EFS, NEPTUNE, RDS
from tests import fixture_diffs

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = fixture_diffs.FIXTURES / "add_resource_kind.diff"
VOLUME = "arn:aws:ec2:eu-west-1:111122223333:volume/vol-0123456789abcdef0"
INSTANCE = "arn:aws:ec2:eu-west-1:111122223333:instance/i-0123456789abcdef0"
DATABASE = "arn:aws:rds:eu-west-1:111122223333:db:walkthrough-db"
CLUSTER = "arn:aws:rds:eu-west-1:111122223333:cluster:walkthrough-cluster"
FILE_SYSTEM = "arn:aws:elasticfilesystem:eu-west-1:111122223333:file-system/fs-0123456789abcdef0"
# Each kind, an ARN of it, its identifier, and (a DB cluster's) one engine of it.
CASES = [
    (EBS, VOLUME, "vol-0123456789abcdef0", None),
    (EC2, INSTANCE, "i-0123456789abcdef0", None),
    (RDS, DATABASE, "walkthrough-db", None),
    (AURORA, CLUSTER, "walkthrough-cluster", "aurora-postgresql"),
    (NEPTUNE, CLUSTER, "walkthrough-cluster", "neptune"),
    (DOCUMENTDB, CLUSTER, "walkthrough-cluster", "docdb"),
    (EFS, FILE_SYSTEM, "fs-0123456789abcdef0", None),
]
IDS = [kind.type_name for kind, *_ in CASES]
OTHERS = [
    "arn:aws:ec2:eu-west-1:111122223333:snapshot/snap-0123456789abcdef0",
    "arn:aws:rds:eu-west-1:111122223333:snapshot:awsbackup:job-1",
    "arn:aws:s3:::a-bucket",
    "vol-0123456789abcdef0",
    "walkthrough-db",
]
# Looking a kind up needs these IAM actions (the kinds AWS Backup manages fully and EC2 instances: none the
# runbook looks up).
LOOKUP_ACTIONS = {
    "EBS": ("ec2:DescribeVolumes",),
    "EC2": (),
    "RDS": ("rds:DescribeDBInstances",),
    "Aurora": ("rds:DescribeDBClusters",),
    "Neptune": ("rds:DescribeDBClusters",),
    "DocumentDB": ("rds:DescribeDBClusters",),
    "EFS": ("elasticfilesystem:DescribeFileSystems",),
}
# Whether each kind's backups keep its own key, and whether its copies may go under any destination key.
KEY_RULES = {
    "EBS": (True, False),
    "EC2": (True, False),
    "RDS": (True, False),
    "Aurora": (True, False),
    "Neptune": (True, False),
    "DocumentDB": (True, False),
    "EFS": (False, True),
}
# What tells kinds apart by ARN text; only the table's data and the kinds' module may hold it.
ARN_SWITCH = re.compile(r'":volume/"|":rds:"|elasticfilesystem"|":cluster:"|":db:"')


def test_every_row_of_the_table_is_one_kind_in_the_tables_order():
    assert list(resource_kinds.KINDS) == list(resource_types.TYPES)
    for name, kind in resource_kinds.KINDS.items():
        assert kind.type_name == name and kind.row is resource_types.TYPES[name]
        assert isinstance(kind, resource_kinds.ResourceKind) and type(kind).__name__ != "ResourceKind"
    assert len({type(kind) for kind in resource_kinds.KINDS.values()}) == len(resource_kinds.KINDS)


@pytest.mark.parametrize(("kind", "arn", "identifier", "engine"), CASES, ids=IDS)
def test_a_kind_is_recognised_from_its_arn(kind, arn, identifier, engine):
    assert kind.recognises(arn) and resource_kinds.is_a(arn, kind)
    assert kind.identifier(arn) == identifier
    assert resource_kinds.kind_of(arn, engine) is kind
    assert kind.row is resource_types.type_of(arn, engine)
    assert kind.arn("111122223333", "eu-west-1", identifier) == arn
    if engine is None:
        assert resource_kinds.kinds_of(arn) == (kind,)
    else:
        assert resource_kinds.kind_of(arn) is None, "a DB cluster's ARN alone does not say its kind"
        assert resource_kinds.kinds_of(arn) == (AURORA, NEPTUNE, DOCUMENTDB)
        assert resource_kinds.looked_up_as(arn) is AURORA and kind.lookup == AURORA.lookup
        assert engine in kind.engines and resource_kinds.engines()[engine] == kind.type_name


@pytest.mark.parametrize(("kind", "arn", "identifier", "engine"), CASES, ids=IDS)
def test_a_kind_recognises_no_other_kinds_arn(kind, arn, identifier, engine):
    for other, other_arn, *_ in CASES:
        if other_arn != arn:
            assert not kind.recognises(other_arn), (kind, other)
            assert kind.identifiers_in([other_arn]) == []
    for text in OTHERS:
        assert not kind.recognises(text) and resource_kinds.kind_of(text) is None
    assert kind.identifiers_in([arn, "a-name"]) == [identifier]


def test_a_multi_az_cluster_of_mysql_or_postgres_is_no_kind():
    assert resource_kinds.kind_of(CLUSTER, "postgres") is None
    assert resource_kinds.kind_of(CLUSTER, "mysql") is None


@pytest.mark.parametrize(("kind", "arn", "identifier", "engine"), CASES, ids=IDS)
def test_a_kinds_key_rule_is_its_rows(kind, arn, identifier, engine):
    keeps, any_key = KEY_RULES[kind.type_name]
    assert kind.keeps_resource_key is keeps is bool(kind.row.source_key_customer_managed.value)
    assert resource_kinds.takes_vault_key(kind) is resource_kinds.takes_vault_key(kind.row) is (not keeps)
    assert kind.any_destination_key is any_key is kind.row.any_destination_key
    assert resource_kinds.destination_key_allowed(kind, customer_managed=True)
    assert resource_kinds.destination_key_allowed(kind, customer_managed=False) is any_key
    assert resource_kinds.destination_key_allowed(kind.row, customer_managed=False) is any_key
    assert kind.recovery_points == (kind.service_recovery_points if keeps else resource_kinds.BACKUP_RECOVERY_POINTS), (
        "a kind whose backups keep its key is backed up as the service's own snapshot or image"
    )


def test_an_unknown_kind_is_held_to_the_customer_managed_rule():
    assert not resource_kinds.destination_key_allowed(None, customer_managed=False)
    assert resource_kinds.destination_key_allowed(None, customer_managed=True)
    assert not resource_kinds.takes_vault_key(None)
    assert resource_kinds.aws_managed_destination_refused(RDS) == (
        "allowed: a customer managed key (copies of RDS cannot go under an AWS managed key)"
    )


@pytest.mark.parametrize(("kind", "arn", "identifier", "engine"), CASES, ids=IDS)
def test_a_kinds_lookup_permissions_are_read_from_it(kind, arn, identifier, engine):
    assert kind.lookup_actions == LOOKUP_ACTIONS[kind.type_name]
    assert set(kind.lookup_actions) <= set(permissions.RESOURCE_LOOKUP)
    for action in kind.lookup_actions:
        assert action in policy_files.ACTION_KINDS
        assert kind.lookup is not None
        if kind.lookup.scope:  # IAM scopes the action to resources: the kind says which statement
            assert policy_files.ACTION_KINDS[action] == (kind.lookup.scope,)
            assert policy_files.LOOKUPS[kind.lookup.scope].lookup == kind.lookup
    assert bool(param_values.RESOURCE_ARN.match(arn)) is (kind.lookup is not None)


def test_the_resource_lookup_reads_what_the_kinds_declare_in_their_order():
    assert permissions.RESOURCE_LOOKUP == (
        "sts:GetCallerIdentity",
        "ec2:DescribeVolumes",
        "rds:DescribeDBInstances",
        "rds:DescribeDBClusters",
        "elasticfilesystem:DescribeFileSystems",
    )
    assert resource_kinds.NAMED == (EBS, RDS, AURORA, EFS)
    assert resource_kinds.FLEET == (EBS, RDS)


def test_messages_name_the_kinds_as_they_did():
    assert resource_kinds.NAMED_NOUNS == "EBS volume, RDS DB instance, DB cluster or EFS file system"
    assert resource_kinds.FLEET_NOUNS == "EBS volume or RDS DB instance"
    assert EFS.shown(FILE_SYSTEM) == "file-system/fs-0123456789abcdef0"
    assert EBS.refusal({"VolumeId": "vol-1", "State": "in-use"}) == ""
    assert EBS.refusal({"VolumeId": "vol-1", "State": "error"}) == (
        "volume vol-1 is error; allowed: a volume that is available or in-use"
    )
    assert RDS.refusal({"DBInstanceIdentifier": "db-1", "Engine": "aurora-mysql"}).startswith(
        "db-1 is an Aurora DB instance (aurora-mysql); allowed: an RDS DB instance"
    )


def test_nothing_outside_the_kinds_tells_kinds_apart_by_arn_text():
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "runbook_lib").rglob("*.py"))
        if path.name != "resource_kinds.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if ARN_SWITCH.search(line)
    ]
    assert found == []


PROBE = """
import json, runbook_lib
from runbook_lib.core import param_values, permissions, policy_files, resource_kinds
arn = "arn:aws:dynamodb:eu-west-1:111122223333:table/orders"
kind = resource_kinds.kind_of(arn)
print(json.dumps({
    "file": runbook_lib.__file__,
    "kind": type(kind).__name__,
    "identifier": kind.identifier(arn),
    "takes_vault_key": resource_kinds.takes_vault_key(kind),
    "any_destination_key": kind.any_destination_key,
    "lookup_actions": list(kind.lookup_actions),
    "resource_lookup": list(permissions.RESOURCE_LOOKUP),
    "policy_scope": list(policy_files.ACTION_KINDS.get("dynamodb:DescribeTable", ())),
    "arn_allowed": bool(param_values.RESOURCE_ARN.match(arn)),
    "volume": type(resource_kinds.kind_of("arn:aws:ec2:eu-west-1:111122223333:volume/vol-0123456789abcdef0")).__name__,
    "key": kind.key_of({"SSEDescription": {"KMSMasterKeyArn": "arn:aws:kms:eu-west-1:111122223333:key/k"}}),
}))
"""


def test_a_new_kind_is_one_row_and_one_class(tmp_path):
    assert fixture_diffs.touched(FIXTURE) == [
        "runbook_lib/core/resource_kinds.py",
        "runbook_lib/data/resource_types.json",
    ]
    fixture_diffs.applied(FIXTURE, tmp_path, ("runbook_lib",))
    environment = {**os.environ, "PYTHONPATH": str(tmp_path)}
    probed = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60
    )
    assert probed.returncode == 0, probed.stderr
    found = json.loads(probed.stdout)
    assert found.pop("file").startswith(str(tmp_path))
    assert found == {
        "kind": "DynamoDbTable",
        "identifier": "orders",
        "takes_vault_key": True,
        "any_destination_key": False,
        "lookup_actions": ["dynamodb:DescribeTable"],
        "resource_lookup": [*permissions.RESOURCE_LOOKUP, "dynamodb:DescribeTable"],
        "policy_scope": ["Tables"],
        "arn_allowed": True,
        "volume": "EbsVolume",
        "key": "arn:aws:kms:eu-west-1:111122223333:key/k",
    }
    table = json.loads((tmp_path / "runbook_lib" / "data" / "resource_types.json").read_text())
    row = next(row for row in table["types"] if row["name"] == "DynamoDB")
    assert all(row[fact]["source"] in table["sources"] and row[fact]["checked"] for fact in resource_types.FACTS)
