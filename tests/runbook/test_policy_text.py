"""Policy documents edited as text, and ARNs in the partition of their Region."""

from __future__ import annotations

import json

import pytest

from runbook_lib.aws import vaults
from runbook_lib.core import arns, grants, policy_text
from runbook_policy import iam_policy

OWNER = {
    "Sid": "Owner",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
    "Action": "kms:*",
    "Resource": "*",
}
OTHER = {"Sid": "Other", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}
NEW = {"Sid": "New", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": "*"}
DOCUMENT = {"Version": "2012-10-17", "Id": "key-1", "Statement": [OWNER, OTHER]}


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(DOCUMENT, separators=(",", ":")),
        json.dumps(DOCUMENT),
        json.dumps(DOCUMENT, indent=2),
        json.dumps(DOCUMENT, indent=4),
        json.dumps(DOCUMENT, indent="\t"),
    ],
    ids=["compact", "spaced", "indent-2", "indent-4", "tabs"],
)
def test_added_statements_follow_the_documents_style_and_the_rest_stays_byte_for_byte(text):
    edited = policy_text.edited(text, add=[NEW])
    assert json.loads(edited)["Statement"] == [OWNER, OTHER, NEW]
    assert edited == json.dumps({**DOCUMENT, "Statement": [OWNER, OTHER, NEW]}, **_style_of(text))


def _style_of(text: str) -> dict:
    if "\n" not in text:
        return {"separators": (",", ":")} if '":' in text and '": ' not in text else {}
    return {"indent": "\t" if "\t" in text else len(text.splitlines()[1]) - len(text.splitlines()[1].lstrip())}


def test_removing_statements_keeps_the_others_as_written():
    text = json.dumps(DOCUMENT, indent=2)
    assert json.loads(policy_text.edited(text, remove=[0], add=[NEW]))["Statement"] == [OTHER, NEW]
    assert json.loads(policy_text.edited(text, remove=[0, 1]))["Statement"] == []


def test_a_single_statement_object_becomes_a_list():
    text = json.dumps({**DOCUMENT, "Statement": OWNER}, indent=2)
    assert json.loads(policy_text.edited(text, add=[NEW]))["Statement"] == [OWNER, NEW]


def test_size_is_the_documents_bytes():
    assert policy_text.size('{"a":"é"}') == 10


@pytest.mark.parametrize(
    "region, partition", [("eu-west-1", "aws"), ("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")]
)
def test_arns_are_in_the_partition_of_their_region(region, partition):
    assert arns.partition(region) == partition
    vault = f"arn:{partition}:backup:{region}:333333333333:backup-vault:V"
    assert arns.backup_vault("333333333333", region, "V") == vault
    assert arns.account_root("333333333333", region) == f"arn:{partition}:iam::333333333333:root"
    assert arns.backup_service_role("333333333333", region).startswith(f"arn:{partition}:iam::333333333333:role/")
    assert arns.snapshot_id(f"arn:{partition}:ec2:{region}::snapshot/snap-0123") == "snap-0123"
    assert arns.snapshot_id(f"arn:{partition}:rds:{region}:1:snapshot:awsbackup:job-1") is None


def test_line_endings_and_an_empty_statement_list_follow_the_document():
    crlf = json.dumps(DOCUMENT, indent=2).replace("\n", "\r\n")
    edited = policy_text.edited(crlf, add=[NEW])
    assert "\n" not in edited.replace("\r\n", "") and json.loads(edited)["Statement"][-1] == NEW
    empty = json.dumps({**DOCUMENT, "Statement": []}, indent=4)
    assert policy_text.edited(empty, add=[NEW]) == json.dumps({**DOCUMENT, "Statement": [NEW]}, indent=4)


def test_separators_inside_values_do_not_fool_the_style():
    tricky = {**OTHER, "Sid": 'a, "b": [c]'}
    text = json.dumps({**DOCUMENT, "Statement": [tricky]}, separators=(",", ":"))
    assert policy_text.edited(text, add=[NEW]) == json.dumps(
        {**DOCUMENT, "Statement": [tricky, NEW]}, separators=(",", ":")
    )


VAULT = "arn:aws:backup:eu-west-1:333333333333:backup-vault:V"
SOURCE_ROLE = iam_policy.Principal("222222222222", "arn:aws:iam::222222222222:role/service-role/Backup")


def copy_in(policy: dict) -> iam_policy.Decision:
    return vaults.copy_in_decision(policy, VAULT, SOURCE_ROLE)


def own() -> list[dict]:
    return [vaults.allow_statement("222222222222", "eu-west-1")]


def test_a_grant_converges_and_keeps_what_others_wrote():
    someone = {
        "Sid": "AllowCopyInFrom222222222222",
        "Effect": "Allow",
        "Action": "backup:CopyIntoBackupVault",
        "Resource": "*",
        "Principal": {"AWS": ["222222222222", "111111111111"]},
        "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1"}},
    }
    text = json.dumps({"Version": "2012-10-17", "Statement": [someone]})
    first = grants.plan_grant(text, copy_in, own(), "222222222222")
    assert first.needed and json.loads(first.after)["Statement"] == [someone, *own()]
    second = grants.plan_grant(first.after, copy_in, own(), "222222222222")
    assert not second.needed and second.decision_before.allowed


def test_an_earlier_versions_statement_is_replaced_only_where_it_is_exactly_that():
    legacy = vaults.allow_statement("222222222222", "eu-west-1", vaults.LEGACY_SID_PREFIX)
    text = json.dumps({"Version": "2012-10-17", "Statement": [legacy]})
    deny_first = json.dumps(
        {"Version": "2012-10-17", "Statement": [{**legacy, "Effect": "Deny", "Sid": "NoCopies"}, legacy]}
    )
    plan = grants.plan_grant(deny_first, copy_in, own(), "222222222222", remove_denies=True, legacy=(legacy,))
    assert json.loads(plan.after)["Statement"] == own()
    assert plan.notes == [
        "removing 'NoCopies' lifts everything it denies account 222222222222: backup:CopyIntoBackupVault"
    ]
    assert not grants.plan_grant(text, copy_in, own(), "222222222222", legacy=(legacy,)).needed


def test_a_deny_naming_others_too_is_never_removed():
    broad = {
        "Sid": "NoCopies",
        "Effect": "Deny",
        "Action": "backup:*",
        "Resource": "*",
        "Principal": {"AWS": ["222222222222", "444444444444"]},
    }
    text = json.dumps({"Version": "2012-10-17", "Statement": [broad]})
    with pytest.raises(grants.DenyBlocks) as blocked:
        grants.plan_grant(text, copy_in, own(), "222222222222", remove_denies=True)
    assert not blocked.value.removable and blocked.value.statements == [broad]
    forced = grants.plan_grant(text, copy_in, own(), "222222222222", force=True)
    assert json.loads(forced.after)["Statement"] == [broad, *own()]
    assert forced.notes[0].startswith("statement 'NoCopies' denies account 222222222222")


def test_statements_are_counted_as_written_even_when_one_is_not_an_object():
    stale = {**own()[0], "Action": "backup:DescribeBackupVault"}
    text = json.dumps({"Version": "2012-10-17", "Statement": [None, stale, {"Sid": "Keep"}]})
    plan = grants.plan_grant(text, copy_in, own(), "222222222222")
    assert json.loads(plan.after)["Statement"] == [None, {"Sid": "Keep"}, *own()]
