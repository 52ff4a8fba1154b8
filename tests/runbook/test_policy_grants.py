"""Sharing the key and opening the vault, whatever the policies already say; fixes that converge."""

from __future__ import annotations

import json

import pytest

from runbook_lib.aws.context import Run
from runbook_lib.aws.keys import GRANT_ACTIONS, USE_ACTIONS
from runbook_lib.core import policy_text
from runbook_lib.core.errors import StepFailed
from runbook_lib.steps.walkthrough import prerequisites, share_source_key
from runbook_lib.troubleshooting import checks, fixes
from runbook_sandbox.accounts import OUTSIDER, SOURCE, TARGET
from tests.runbook_steps import copy, prepare, values

OUTSIDER_ROOT = OUTSIDER.root_arn
OWNER = {
    "Sid": "Enable IAM User Permissions",
    "Effect": "Allow",
    "Principal": {"AWS": SOURCE.root_arn},
    "Action": "kms:*",
    "Resource": "*",
}
THROUGH_EBS_ONLY = {
    "Sid": "Allow use of the key",
    "Effect": "Allow",
    "Principal": "*",
    "Action": [*USE_ACTIONS, "kms:CreateGrant"],
    "Resource": "*",
    "Condition": {
        "StringEquals": {"kms:CallerAccount": SOURCE.account_id, "kms:ViaService": "ec2.us-east-1.amazonaws.com"}
    },
}
CONDITIONAL_USE = {
    "Sid": "Allow use of the key",
    "Effect": "Allow",
    "Principal": {"AWS": OUTSIDER_ROOT},
    "Action": USE_ACTIONS,
    "Resource": "*",
    "Condition": {"StringEquals": {"kms:ViaService": "backup.us-east-1.amazonaws.com"}},
}
MIXED_PRINCIPALS = {
    "Sid": "Allow attachment of persistent resources",
    "Effect": "Allow",
    "Principal": {"AWS": OUTSIDER_ROOT, "Service": "backup.amazonaws.com"},
    "Action": GRANT_ACTIONS,
    "Resource": "*",
    "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
}


def compact_30_kb() -> str:
    readers = [
        {
            "Sid": f"ReadOnlyForAuditTeam{n:03d}",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{SOURCE.account_id}:role/audit/team-{n:03d}"},
            "Action": ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:ListResourceTags"],
            "Resource": "*",
        }
        for n in range(150)
    ]
    text = json.dumps(
        {"Version": "2012-10-17", "Id": "key-consolepolicy-3", "Statement": [OWNER, *readers]}, separators=(",", ":")
    )
    assert 29_000 < policy_text.size(text) < 31_000
    assert policy_text.size(json.dumps(json.loads(text))) > policy_text.MAX_KEY_POLICY_BYTES, "only compact fits"
    return text


POLICIES = {
    "principal-star": json.dumps({"Version": "2012-10-17", "Statement": [OWNER, THROUGH_EBS_ONLY]}, indent=2),
    "conditional-use-statement": json.dumps({"Version": "2012-10-17", "Statement": [OWNER, CONDITIONAL_USE]}),
    "mixed-principal-statement": json.dumps(
        {"Version": "2012-10-17", "Statement": [OWNER, MIXED_PRINCIPALS]}, indent=4
    ),
    "compact-30-kb": compact_30_kb(),
}


def key_policy(aws) -> str:  # type: ignore[no-untyped-def]
    kms = aws.source("kms")
    key_id = kms.describe_key(KeyId="alias/cmkSource")["KeyMetadata"]["KeyId"]
    return kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]


@pytest.mark.parametrize("original", POLICIES.values(), ids=POLICIES.keys())
def test_step_03_shares_any_key_policy_keeping_every_statement(world, aws, tmp_path, original):
    kms = aws.source("kms")
    key_id = kms.describe_key(KeyId="alias/cmkSource")["KeyMetadata"]["KeyId"]
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=original)
    run_values = values(tmp_path)
    prepare(run_values)

    shared = key_policy(aws)
    before, after = json.loads(original)["Statement"], json.loads(shared)["Statement"]
    assert after[: len(before)] == before, "every original statement stays, in its place"
    run_id = Run("03_share_source_key", run_values).state.run_id()
    assert [s["Sid"] for s in after[len(before) :]] == [
        f"RunbookAllowUseOfTheKey{TARGET.account_id}Run{run_id}",
        f"RunbookAllowGrantsForAWSResources{TARGET.account_id}Run{run_id}",
    ], "the statements name the account and the run folder that added them"
    assert shared.startswith(original[: original.rindex("]")].rstrip()), "the document keeps its formatting"
    assert policy_text.size(shared) <= policy_text.MAX_KEY_POLICY_BYTES

    assert copy(run_values)["State"] == "COMPLETED"
    again = share_source_key(Run("03_share_source_key", run_values))
    assert not again.needed
    assert key_policy(aws) == shared


def test_the_target_vault_fix_removes_a_deny_naming_only_the_source_once(world, aws, tmp_path):
    world.reset("target-vault-denies-source")
    run_values = values(tmp_path)
    with pytest.raises(StepFailed) as refused:
        prerequisites(Run("00_prerequisites", run_values))
    assert (
        "[target-vault-policy] statement 'DenySourceAccount' of the access policy of CABTargetVault denies "
        "account 222222222222"
    ) in str(refused.value)
    assert "runbook fix target-vault-policy plans its removal" in str(refused.value)
    prepare({**run_values, "force_copy": True})

    for _ in range(2):
        run = Run("06_troubleshoot", run_values)
        run.carry_out(fixes.plan(run, "target-vault-policy"))
    policy = json.loads(aws.target("backup").get_backup_vault_access_policy(BackupVaultName="CABTargetVault")["Policy"])
    sids = [s["Sid"] for s in policy["Statement"]]
    assert sids == [f"RunbookAllowCopyInFrom{SOURCE.account_id}Run{run.state.run_id()}"]
    applied = [e for e in run.state.changes.entries() if e["step"] == "06_troubleshoot"]
    assert len(applied) == 1 and "remove 'DenySourceAccount'" in applied[0]["summary"]
    assert checks.run_checks(run, ("target-vault-policy",))[0].status == checks.PASS
    assert copy(run_values)["State"] == "COMPLETED"


def test_a_deny_that_names_others_too_is_named_and_left_to_its_owner(world, aws, tmp_path):
    run_values = values(tmp_path)
    prepare(run_values)
    broad = {
        "Sid": "DenyCopiesFromOthers",
        "Effect": "Deny",
        "Action": "backup:CopyIntoBackupVault",
        "Resource": "*",
        "Principal": {"AWS": [SOURCE.root_arn, OUTSIDER_ROOT]},
    }
    backup = aws.target("backup")
    policy = json.loads(backup.get_backup_vault_access_policy(BackupVaultName="CABTargetVault")["Policy"])
    policy["Statement"].append(broad)
    backup.put_backup_vault_access_policy(BackupVaultName="CABTargetVault", Policy=json.dumps(policy))
    finding = checks.run_checks(Run("check", run_values), ("target-vault-policy",))[0]
    assert finding.status == checks.FAIL and "'DenyCopiesFromOthers'" in finding.fix
    assert "also applies to others: the destination account (333333333333) must change it" in finding.fix
    with pytest.raises(StepFailed, match="'DenyCopiesFromOthers' also applies to others"):
        fixes.plan(Run("06_troubleshoot", run_values), "target-vault-policy")


def test_the_key_fix_removes_a_deny_for_the_target_then_shares_and_converges(world, aws, tmp_path):
    world.reset("key-policy-denies-target")
    run_values = values(tmp_path)
    prepare(run_values, share=False)
    with pytest.raises(
        StepFailed,
        match=r"\[source-key-shared\] statement 'Deny the target account' of the policy "
        r"of alias/cmkSource denies account 333333333333",
    ):
        share_source_key(Run("03_share_source_key", run_values))
    original = key_policy(aws)
    for _ in range(2):
        run = Run("06_troubleshoot", run_values)
        run.carry_out(fixes.plan(run, "source-key-shared"))
    sids = [s.get("Sid") for s in json.loads(key_policy(aws))["Statement"]]
    assert "Deny the target account" not in sids and len(sids) == len(set(sids))
    assert [e["action"] for e in run.state.changes.entries() if e["step"] == "06_troubleshoot"] == ["kms:PutKeyPolicy"]
    kept = [s for s in json.loads(original)["Statement"] if s.get("Sid") != "Deny the target account"]
    assert json.loads(key_policy(aws))["Statement"][: len(kept)] == kept
    assert copy(run_values)["State"] == "COMPLETED"


def test_step_03_names_a_deny_outside_the_endpoint_and_leaves_it_to_the_keys_administrators(world, aws, tmp_path):
    """AWS Backup's calls carry no aws:SourceVpce, so the Deny applies to them: sharing cannot win while
    it stays, and a Deny on everyone is not the runbook's to remove."""
    run_values = values(tmp_path)
    prepare(run_values, share=False)
    outside = {
        "Sid": "DenyOutsideTheEndpoint",
        "Effect": "Deny",
        "Principal": "*",
        "Action": ["kms:Decrypt", "kms:CreateGrant"],
        "Resource": "*",
        "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-0123456789abcdef0"}},
    }
    kms = aws.source("kms")
    key_id = kms.describe_key(KeyId="alias/cmkSource")["KeyMetadata"]["KeyId"]
    policy = json.loads(key_policy(aws))
    policy["Statement"].append(outside)
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))
    with pytest.raises(StepFailed, match=r"\[source-key-shared\] statement 'DenyOutsideTheEndpoint' of the policy"):
        share_source_key(Run("03_share_source_key", run_values))
    with pytest.raises(StepFailed, match="'DenyOutsideTheEndpoint' also applies to others"):
        fixes.plan(Run("06_troubleshoot", run_values), "source-key-shared")
    assert json.loads(key_policy(aws)) == policy, "nothing written"
