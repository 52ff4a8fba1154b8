"""The policy evaluator, against cases written from AWS's documented evaluation logic.

Sources: IAM User Guide, "Policy evaluation logic" (an explicit Deny wins; otherwise an Allow is
needed), "Condition operators" (a key missing from the request makes a condition false, except for
negated operators, ...IfExists and Null), "Single-valued vs. multivalued context keys"
(ForAllValues holds for a missing key, ForAnyValue does not) and "NotPrincipal" (a Deny with
NotPrincipal applies to everyone not listed; a role session is excluded only when its account and
role are listed). A prediction never says Allow while a statement it cannot decide could deny.
"""

import pytest

from runbook_policy import iam_policy
from runbook_policy.iam_policy import ALLOW, DENY, IMPLICIT_DENY, UNDETERMINED, Principal, Request, decide, evaluate

TARGET_ROLE = "arn:aws:iam::333333333333:role/aws-service-role/backup.amazonaws.com/AWSServiceRoleForBackup"
TARGET = Principal("333333333333", TARGET_ROLE, org_id="o-abc")
KEY = "arn:aws:kms:us-east-1:222222222222:key/k"


def doc(*statements):  # type: ignore[no-untyped-def]
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(**extra):  # type: ignore[no-untyped-def]
    return {"Effect": "Allow", "Principal": {"AWS": "333333333333"}, "Action": "kms:*", "Resource": "*", **extra}


def deny(**extra):  # type: ignore[no-untyped-def]
    return {**allow(**extra), "Effect": "Deny"}


def decrypt(principal=TARGET, complete=False, **context):  # type: ignore[no-untyped-def]
    return Request(principal, "kms:Decrypt", KEY, context, complete=complete)


def test_explicit_deny_wins_over_allow_and_no_allow_is_implicit_deny():
    assert evaluate(doc(allow()), decrypt()) == ALLOW
    assert evaluate(doc(allow(), deny()), decrypt()) == DENY
    assert evaluate(doc(), decrypt()) == IMPLICIT_DENY
    assert evaluate(doc(allow(Principal={"AWS": "444444444444"})), decrypt()) == IMPLICIT_DENY


def test_action_wildcards_are_case_insensitive_and_not_action_inverts():
    assert evaluate(doc(allow(Action=["KMS:ReEncrypt*"])), Request(TARGET, "kms:ReEncryptFrom", KEY)) == ALLOW
    assert evaluate(doc(allow(Action=["KMS:ReEncrypt*"])), decrypt()) == IMPLICIT_DENY
    not_action = {k: v for k, v in deny().items() if k != "Action"} | {"NotAction": "kms:Describe*"}
    assert evaluate(doc(allow(), not_action), decrypt()) == DENY
    assert evaluate(doc(allow(), not_action), Request(TARGET, "kms:DescribeKey", KEY)) == ALLOW


def test_not_resource_in_a_deny_applies_to_every_other_resource():
    other = {k: v for k, v in deny().items() if k != "Resource"} | {"NotResource": "arn:aws:kms:*:*:key/other"}
    assert evaluate(doc(allow(), other), decrypt()) == DENY
    mine = {k: v for k, v in deny().items() if k != "Resource"} | {"NotResource": KEY}
    assert evaluate(doc(allow(), mine), decrypt()) == ALLOW


def test_a_statement_without_resource_has_no_effect():
    no_resource = {k: v for k, v in allow().items() if k != "Resource"}
    assert evaluate(doc(no_resource), decrypt()) == IMPLICIT_DENY


def test_deny_with_not_principal_naming_other_accounts_applies():
    statement = {k: v for k, v in deny().items() if k != "Principal"} | {
        "NotPrincipal": {"AWS": "arn:aws:iam::222222222222:root"}
    }
    assert evaluate(doc(allow(), statement), decrypt()) == DENY


def test_deny_with_not_principal_naming_the_callers_account_cannot_be_predicted():
    statement = {k: v for k, v in deny().items() if k != "Principal"} | {
        "NotPrincipal": {"AWS": ["arn:aws:iam::222222222222:root", "arn:aws:iam::333333333333:root"]}
    }
    decision = decide(doc(allow(), statement), decrypt())
    assert decision.outcome == UNDETERMINED
    assert decision.statements == (statement,)


def test_deny_with_not_principal_excludes_a_role_only_with_its_account_when_complete():
    account_only = {k: v for k, v in deny().items() if k != "Principal"} | {
        "NotPrincipal": {"AWS": "arn:aws:iam::333333333333:root"}
    }
    assert evaluate(doc(allow(), account_only), decrypt(complete=True)) == DENY
    account_and_role = {**account_only, "NotPrincipal": {"AWS": ["arn:aws:iam::333333333333:root", TARGET_ROLE]}}
    assert evaluate(doc(allow(), account_and_role), decrypt(complete=True)) == ALLOW


def test_not_principal_with_allow_grants_nothing():
    statement = {k: v for k, v in allow().items() if k != "Principal"} | {
        "NotPrincipal": {"AWS": "arn:aws:iam::444444444444:root"}
    }
    assert evaluate(doc(statement), decrypt()) == IMPLICIT_DENY


def test_a_service_principal_in_a_deny_cannot_be_predicted_but_a_role_is_not_a_service():
    statement = deny(Principal={"Service": "backup.amazonaws.com"})
    assert evaluate(doc(allow(), statement), decrypt()) == UNDETERMINED
    assert evaluate(doc(allow(), statement), decrypt(complete=True)) == ALLOW


def test_principal_forms():
    for principal in (
        "*",
        {"AWS": "*"},
        {"AWS": "333333333333"},
        {"AWS": "arn:aws:iam::333333333333:root"},
        {"AWS": TARGET_ROLE},
        {"AWS": ["arn:aws:iam::444444444444:root", "333333333333"]},
    ):
        assert evaluate(doc(allow(Principal=principal)), decrypt()) == ALLOW, principal
    other_role = {"AWS": "arn:aws:iam::333333333333:role/SomebodyElse"}
    assert evaluate(doc(allow(Principal=other_role)), decrypt()) == IMPLICIT_DENY
    someone = Principal("333333333333")
    assert evaluate(doc(allow(Principal=other_role)), decrypt(someone)) == UNDETERMINED


def test_missing_key_makes_a_condition_false_except_negated_operators():
    grants = {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    assert evaluate(doc(allow(Condition=grants)), decrypt()) == IMPLICIT_DENY
    assert evaluate(doc(allow(Condition=grants)), decrypt(**{"kms:GrantIsForAWSResource": "true"})) == ALLOW
    negated = {"StringNotEquals": {"kms:GrantIsForAWSResource": "false"}}
    assert evaluate(doc(allow(Condition=negated)), decrypt()) == ALLOW
    assert (
        evaluate(doc(allow(), deny(Condition={"StringNotLike": {"kms:GrantIsForAWSResource": "x*"}})), decrypt())
        == DENY
    )


def test_if_exists_holds_when_the_key_is_missing():
    outsider = Principal("333333333333", TARGET_ROLE, org_id=None)
    statement = allow(Condition={"StringEqualsIfExists": {"aws:PrincipalOrgID": "o-abc"}})
    assert evaluate(doc(statement), decrypt(outsider)) == ALLOW
    assert evaluate(doc(statement), decrypt()) == ALLOW
    assert evaluate(doc(statement), decrypt(Principal("333333333333", TARGET_ROLE, "o-other"))) == IMPLICIT_DENY


def test_null_tests_presence():
    outsider = Principal("333333333333", TARGET_ROLE, org_id=None)
    statement = deny(Condition={"Null": {"aws:PrincipalOrgID": "true"}})
    assert evaluate(doc(allow(), statement), decrypt(outsider)) == DENY
    assert evaluate(doc(allow(), statement), decrypt()) == ALLOW


def test_organization_condition():
    statement = allow(Principal="*", Condition={"StringEquals": {"aws:PrincipalOrgID": "o-abc"}})
    assert evaluate(doc(statement), decrypt()) == ALLOW
    assert evaluate(doc(statement), decrypt(Principal("444444444444", org_id="o-zzz"))) == IMPLICIT_DENY


def test_multivalued_keys_and_set_operators():
    pathed = Principal("333333333333", TARGET_ROLE, "o-abc", org_paths=("o-abc/r-1/ou-a/ou-b/",))
    any_value = allow(Condition={"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": "o-abc/r-1/ou-a/*"}})
    assert evaluate(doc(any_value), decrypt(pathed)) == ALLOW
    elsewhere = allow(Condition={"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": "o-abc/r-1/ou-z/*"}})
    assert evaluate(doc(elsewhere), decrypt(pathed)) == IMPLICIT_DENY
    all_values = allow(Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}})
    assert evaluate(doc(all_values), decrypt(complete=True)) == ALLOW, "ForAllValues holds for a missing key"
    any_missing = allow(Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}})
    assert evaluate(doc(any_missing), decrypt(complete=True)) == IMPLICIT_DENY, "ForAnyValue does not"
    plain = allow(Condition={"StringLike": {"aws:PrincipalOrgPaths": "o-abc/*"}})
    two_paths = Principal("333333333333", TARGET_ROLE, "o-abc", org_paths=("o-abc/r-1/", "o-abc/r-2/"))
    assert evaluate(doc(plain), decrypt(two_paths)) == UNDETERMINED


def test_unmodelled_condition_keys_are_undetermined_for_a_prediction():
    vpce = deny(Principal="*", Condition={"StringNotEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}})
    decision = decide(doc(allow(), vpce), decrypt())
    assert decision.outcome == UNDETERMINED and decision.statements == (vpce,)
    org_paths = deny(
        Principal="*", Condition={"ForAnyValue:StringNotLike": {"aws:PrincipalOrgPaths": "o-abc/r-1/ou-allowed/*"}}
    )
    assert evaluate(doc(allow(), org_paths), decrypt()) == UNDETERMINED
    assert evaluate(doc(allow(), vpce), decrypt(complete=True)) == DENY, "complete: the key is absent"


def test_an_undetermined_deny_cannot_spoil_an_answer_that_is_already_no():
    vpce = deny(Condition={"StringNotEquals": {"aws:SourceVpce": "vpce-1"}})
    assert evaluate(doc(vpce), decrypt()) == IMPLICIT_DENY
    assert evaluate(doc(allow(), deny(), vpce), decrypt()) == DENY


def test_unknown_operators_and_policy_variables_are_undetermined():
    binary = deny(Condition={"BinaryEquals": {"kms:CallerAccount": "QUJD"}})
    assert evaluate(doc(allow(), binary), decrypt()) == UNDETERMINED
    variable = deny(Condition={"StringEquals": {"aws:PrincipalArn": "${aws:username}"}})
    assert evaluate(doc(allow(), variable), decrypt()) == UNDETERMINED
    uncertain_allow = allow(Condition={"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}})
    assert evaluate(doc(uncertain_allow), decrypt()) == UNDETERMINED
    assert evaluate(doc(uncertain_allow, allow()), decrypt()) == ALLOW


def test_numeric_date_and_address_operators():
    context = {"aws:MultiFactorAuthAge": "1", "aws:SourceIp": "10.1.2.3"}
    numbers = allow(Condition={"NumericLessThan": {"aws:MultiFactorAuthAge": "2"}})
    assert evaluate(doc(numbers), decrypt(complete=True, **context)) == ALLOW
    address = deny(Condition={"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}})
    assert evaluate(doc(allow(), address), decrypt(complete=True, **context)) == ALLOW
    dates = allow(Condition={"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}})
    assert evaluate(doc(dates), decrypt(complete=True, **{"aws:CurrentTime": "2026-11-28T00:00:00Z"})) == ALLOW


def test_all_requests_must_be_allowed_and_the_weakest_answer_wins():
    requests = [decrypt(), Request(TARGET, "kms:CreateGrant", KEY, {"kms:GrantIsForAWSResource": "true"})]
    assert iam_policy.decide_all(doc(allow()), requests).outcome == ALLOW
    only_decrypt = allow(Action="kms:Decrypt")
    assert iam_policy.decide_all(doc(only_decrypt), requests).outcome == IMPLICIT_DENY
    vpce = deny(Action="kms:CreateGrant", Condition={"StringNotEquals": {"aws:SourceVpce": "vpce-1"}})
    assert iam_policy.decide_all(doc(allow(), vpce), requests).outcome == UNDETERMINED
    assert not iam_policy.is_allowed(doc(allow(), vpce), requests)


@pytest.mark.parametrize("document", ["{not json", "", None, "[]"])
def test_unreadable_document_allows_nothing(document):
    assert iam_policy.evaluate(document, decrypt()) == IMPLICIT_DENY
