"""A check that rests on a policy the evaluator cannot decide says `unknown`, never `pass`."""

from __future__ import annotations

import json
import re

import pytest

from runbook_lib.aws.context import Run
from runbook_lib.core.errors import StepFailed
from runbook_lib.steps.walkthrough import start_copy
from runbook_lib.troubleshooting import checks
from runbook_sandbox.accounts import SOURCE, TARGET
from runbook_sandbox.testing.walkthrough import add_key_statements
from tests.runbook_steps import command, copy, parameter_file, prepare, values

DECRYPT_AND_GRANT = ["kms:Decrypt", "kms:CreateGrant"]
UNDECIDABLE_DENIES = {
    "not-principal": {
        "Sid": "DenyAllButTheOwners",
        "Effect": "Deny",
        "Action": DECRYPT_AND_GRANT,
        "Resource": "*",
        "NotPrincipal": {"AWS": [SOURCE.root_arn, TARGET.root_arn]},
    },
    "unmodelled-condition-key": {
        "Sid": "DenyUnlessTaggedForCopies",
        "Effect": "Deny",
        "Principal": "*",
        "Action": DECRYPT_AND_GRANT,
        "Resource": "*",
        "Condition": {"StringNotEquals": {"aws:ResourceTag/backup-copy": "allowed"}},
    },
    "network-perimeter-with-a-tag-exemption": {
        "Sid": "DenyOutsideTheEndpointUnlessExempt",
        "Effect": "Deny",
        "Principal": "*",
        "Action": DECRYPT_AND_GRANT,
        "Resource": "*",
        "Condition": {
            "StringNotEqualsIfExists": {
                "aws:SourceVpce": "vpce-0123456789abcdef0",
                "aws:PrincipalTag/dp:exclude:network": "true",
            }
        },
    },
    "organization-path": {
        "Sid": "DenyOutsideTheBackupOu",
        "Effect": "Deny",
        "Principal": "*",
        "Action": DECRYPT_AND_GRANT,
        "Resource": "*",
        "Condition": {"ForAnyValue:StringNotLike": {"aws:PrincipalOrgPaths": "o-*/r-*/ou-backup/*"}},
    },
}


@pytest.fixture
def shared(world, aws, tmp_path):  # type: ignore[no-untyped-def]
    run_values = values(tmp_path)
    prepare(run_values)
    return run_values


def source_key_shared(run_values: dict) -> checks.Finding:
    return checks.run_checks(Run("check", run_values), ("source-key-shared",))[0]


def test_a_shared_key_without_such_statements_passes(shared):
    assert source_key_shared(shared).status == checks.PASS


@pytest.mark.parametrize("statement", UNDECIDABLE_DENIES.values(), ids=UNDECIDABLE_DENIES.keys())
def test_an_undecidable_deny_makes_source_key_shared_unknown(aws, shared, statement):
    add_key_statements(aws, "alias/cmkSource", [statement])
    finding = source_key_shared(shared)
    assert finding.status == checks.UNKNOWN
    assert f"statement '{statement['Sid']}'" in finding.finding
    assert finding.evidence["undecided statements"] == [statement]
    assert not finding.blocks() and finding.blocks(strict=True)
    with pytest.raises(StepFailed, match=rf"\[source-key-shared\] .*'{statement['Sid']}'"):
        start_copy(Run("04_copy_to_target", {**shared, "strict_checks": True}))
    assert aws.source("backup").list_copy_jobs()["CopyJobs"] == []


def test_unknown_does_not_block_by_default_and_the_copy_meets_what_aws_decides(aws, shared):
    """Listing the account's root in NotPrincipal does not exclude its roles: AWS denies the copy."""
    add_key_statements(aws, "alias/cmkSource", [UNDECIDABLE_DENIES["not-principal"]])
    with pytest.raises(StepFailed, match=r"\[source-key-shared\] copy job \S+ ended FAILED: EBS snapshot copy failed"):
        copy(shared)


def test_runbook_check_reports_unknown_and_strict_checks_blocks(aws, shared, tmp_path, capsys):
    add_key_statements(aws, "alias/cmkSource", [UNDECIDABLE_DENIES["unmodelled-condition-key"]])
    relaxed = command(capsys, "check", str(parameter_file(tmp_path, run_dir=shared["run_dir"])))
    assert relaxed.returncode == 0, relaxed.stdout + relaxed.stderr
    assert re.search(r"source-key-shared\s+unknown", relaxed.stdout)
    assert "could not decide (unknown), first: [source-key-shared]" in relaxed.stderr
    strict = command(capsys, "check", str(parameter_file(tmp_path, run_dir=shared["run_dir"], strict_checks=True)))
    assert strict.returncode == 1
    assert "[source-key-shared]" in strict.stderr and "'DenyUnlessTaggedForCopies'" in strict.stderr


def test_a_deny_on_the_callers_network_is_decided_not_unknown(aws, shared):
    """AWS Backup's own calls carry no aws:SourceVpce: a Deny outside the endpoint applies (fail), where
    it once was unknown; the copy fails the same way in the sandbox (test_service_call_keys.py)."""
    outside = {**UNDECIDABLE_DENIES["unmodelled-condition-key"], "Sid": "DenyOutsideTheEndpoint"}
    outside["Condition"] = {"StringNotEquals": {"aws:SourceVpce": "vpce-0123456789abcdef0"}}
    add_key_statements(aws, "alias/cmkSource", [outside])
    finding = source_key_shared(shared)
    assert finding.status == checks.FAIL and "statement 'DenyOutsideTheEndpoint'" in finding.finding
    assert finding.evidence["denying statements"] == [outside] and "undecided statements" not in finding.evidence


def remove_key_statement(aws, sid: str) -> None:  # type: ignore[no-untyped-def]
    kms = aws.source("kms")
    key = kms.describe_key(KeyId="alias/cmkSource")["KeyMetadata"]["Arn"]
    policy = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != sid]
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))


def test_an_unknown_whose_copy_failed_is_not_tried_again_until_what_it_rests_on_changed(aws, shared):
    """`unknown` lets the first copy start (strict_checks is false); AWS fails it. A rerun would start another
    doomed copy, and another: it refuses in one line while the statement is as it was, and copies once it
    changed."""
    statement = UNDECIDABLE_DENIES["unmodelled-condition-key"]
    add_key_statements(aws, "alias/cmkSource", [statement])
    with pytest.raises(StepFailed, match=r"\[source-key-shared\] copy job \S+ ended FAILED"):
        copy(shared)
    failed = Run("04_copy_to_target", shared).state.get("04_copy_to_target", "failed_copy_jobs")
    assert len(failed) == 1 and len(failed[0]["undecided"]) == 1

    for _ in range(2):
        with pytest.raises(StepFailed) as refused:
            start_copy(Run("04_copy_to_target", shared))
        line = str(refused.value)
        assert "\n" not in line
        assert line.startswith(f"step 04_copy_to_target failed: [source-key-shared] copy job {failed[0]['job_id']}")
        assert "after this check could not decide (unknown: " in line
        assert "nothing it rests on has changed since: another copy would fail the same way" in line
    planned = start_copy(Run("04_copy_to_target", {**shared, "apply": False}))
    assert "nothing it rests on has changed since" in planned.blocked_by, "a dry run shows why it would not copy"
    copies = aws.source("backup").list_copy_jobs()["CopyJobs"]
    assert len(copies) == 1, "no second doomed copy was started"

    remove_key_statement(aws, statement["Sid"])
    assert copy(shared)["State"] == "COMPLETED", "once the policy changed, the rerun copies"


def test_an_unknown_whose_copy_failed_for_another_reason_is_tried_again(world, aws, shared):
    """The block holds only when the copy failed as the undecided check feared (its diagnosis names it): an
    internal error is tried again as any failure is."""
    never_applies = {
        "Sid": "DenyFrozenKeys",
        "Effect": "Deny",
        "Principal": "*",
        "Action": DECRYPT_AND_GRANT,
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:ResourceTag/frozen": "true"}},
    }
    add_key_statements(aws, "alias/cmkSource", [never_applies])
    assert source_key_shared(shared).status == checks.UNKNOWN
    world.configure(fail_next_copy="An internal error occurred. Try again later.")
    with pytest.raises(StepFailed, match=r"\[unknown\] copy job \S+ ended FAILED"):
        copy(shared)
    assert copy(shared)["State"] == "COMPLETED", "the rerun copies: nothing says the statement was the cause"
