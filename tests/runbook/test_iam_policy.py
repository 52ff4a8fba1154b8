"""The policy evaluator the sandbox enforces with and the runbook predicts with."""

from runbook_lib import iam_policy
from runbook_lib.iam_policy import ALLOW, DENY, IMPLICIT_DENY, Principal, Request, evaluate

TARGET = Principal("333333333333", org_id="o-abc")
KEY = "arn:aws:kms:us-east-1:222222222222:key/k"


def doc(*statements):  # type: ignore[no-untyped-def]
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(**extra):  # type: ignore[no-untyped-def]
    return {"Effect": "Allow", "Principal": {"AWS": "333333333333"}, "Action": "kms:*", "Resource": "*", **extra}


def test_allow_deny_and_implicit_deny():
    assert evaluate(doc(allow()), Request(TARGET, "kms:Decrypt", KEY)) == ALLOW
    assert evaluate(doc(allow(), allow(Effect="Deny")), Request(TARGET, "kms:Decrypt", KEY)) == DENY
    assert evaluate(doc(), Request(TARGET, "kms:Decrypt", KEY)) == IMPLICIT_DENY


def test_action_wildcards_are_case_insensitive():
    statement = allow(Action=["KMS:ReEncrypt*"])
    assert evaluate(doc(statement), Request(TARGET, "kms:ReEncryptFrom", KEY)) == ALLOW
    assert evaluate(doc(statement), Request(TARGET, "kms:Decrypt", KEY)) == IMPLICIT_DENY


def test_bool_condition_on_grants():
    statement = allow(Condition={"Bool": {"kms:GrantIsForAWSResource": "true"}})
    granted = Request(TARGET, "kms:CreateGrant", KEY, {"kms:GrantIsForAWSResource": "true"})
    assert evaluate(doc(statement), granted) == ALLOW
    assert evaluate(doc(statement), Request(TARGET, "kms:CreateGrant", KEY)) == IMPLICIT_DENY


def test_organization_condition():
    statement = allow(Principal="*", Condition={"StringEquals": {"aws:PrincipalOrgID": "o-abc"}})
    assert evaluate(doc(statement), Request(TARGET, "kms:Decrypt", KEY)) == ALLOW
    assert evaluate(doc(statement), Request(Principal("444444444444"), "kms:Decrypt", KEY)) == IMPLICIT_DENY


def test_unknown_condition_matches_neither_allow_nor_deny():
    unknown = {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}
    assert evaluate(doc(allow(Condition=unknown)), Request(TARGET, "kms:Decrypt", KEY)) == IMPLICIT_DENY
    assert evaluate(doc(allow(), allow(Effect="Deny", Condition=unknown)), Request(TARGET, "kms:Decrypt", KEY)) == ALLOW


def test_unreadable_document_allows_nothing():
    assert iam_policy.evaluate("{not json", Request(TARGET, "kms:Decrypt", KEY)) == IMPLICIT_DENY
