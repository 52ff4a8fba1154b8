"""Evaluate a resource policy (KMS key policy, Backup vault access policy) for one request.

Used twice, from one definition: the sandbox enforces cross-account rules with it, and the runbook's
checks predict with it whether a copy will be allowed. The answer has three values, not two:
allowed, denied, or undetermined, when a statement that could change the answer uses an element
or a condition the evaluator does not model (a condition key whose value it cannot know, an
unknown operator, `NotPrincipal` naming the caller's own account, a service principal). A check
that rests on an undetermined answer says `unknown`, never `pass`.

The sandbox plays AWS and knows every key its own requests carry: it evaluates with
`Request(complete=True)`, where a key it did not set is absent (not unknown), and it treats an
undetermined answer as a refusal.

A call an AWS service makes itself, with a service role or a service-linked role (a copy's KMS calls
and its copy into the destination vault), comes from the service's network, not the caller's:
`Request(by_service=True)` knows what AWS documents for such calls (SERVICE_CALL_CONTEXT: no VPC
endpoint, no source IP, no CalledVia chain), so a Deny on `aws:SourceVpce` decides instead of
leaving the answer undetermined.

Evaluation follows AWS's documented logic: an explicit Deny wins; otherwise an Allow is needed;
a key missing from the request makes a condition false, except for negated operators, `...IfExists`
and `Null`; `ForAllValues` holds for a missing key, `ForAnyValue` does not.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

ALLOW = "Allow"
DENY = "Deny"
IMPLICIT_DENY = "ImplicitDeny"
UNDETERMINED = "Undetermined"

# Three-valued truth: True, False, or None for "cannot tell".
Maybe = bool | None

# Keys whose presence the runbook knows for the requests it predicts (a copy's KMS calls and the
# source account's copy into the destination vault): set in the context when present, else absent.
KNOWN_WHEN_ABSENT = {"kms:grantisforawsresource"}

# What AWS documents about the request context of a call an AWS service makes itself, with a service
# role or a service-linked role: not with the caller's credentials (forward access sessions), not as a
# service principal. Such a call comes from the service's network, not through the caller's VPC
# endpoint or from the caller's address, so those keys are absent, and a negated operator on them
# (StringNotEquals, NotIpAddress) is true. Each key names the sources that say so, and their words;
# all were read on SERVICE_CALL_CHECKED.
SERVICE_CALL_CHECKED = "2026-12-07"
SERVICE_CALL_SOURCES: dict[str, tuple[str, str]] = {
    "iam-keys": (
        "IAM User Guide: AWS global condition context keys",
        "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html",
    ),
    "s3-keys": (
        "Amazon S3 User Guide: Bucket policy examples using condition keys (Example 6, note)",
        "https://docs.aws.amazon.com/AmazonS3/latest/userguide/amazon-s3-policy-keys.html",
    ),
    "kms-vpce": (
        "AWS KMS Developer Guide: Use VPC endpoints to control access to AWS KMS resources",
        "https://docs.aws.amazon.com/kms/latest/developerguide/vpce-policy-condition.html",
    ),
}
_REDACTED = (
    "When AWS services make calls to other AWS services on your behalf (service-to-service calls), certain "
    "network-specific authorization context is redacted"
)
_VPC_ENDPOINT_ONLY = (
    "This key is included in the request context only if the requester uses a VPC endpoint to make the request"
)
_NO_CHAIN = (
    "This key is not present if the service uses a service role or service-linked role to make a call on the "
    "principal's behalf"
)


@dataclass(frozen=True)
class ServiceCallKey:
    """One key of a service's own call, as documented: its value (None: absent), the sources
    (SERVICE_CALL_SOURCES) that say so, and their words."""

    value: str | None
    sources: tuple[str, ...]
    says: str


SERVICE_CALL_CONTEXT: dict[str, ServiceCallKey] = {
    "aws:sourceip": ServiceCallKey(
        None,
        ("iam-keys", "s3-keys"),
        f"{_REDACTED}, including s3:TlsVersion, aws:SecureTransport, aws:SourceIp, and aws:VpcSourceIp",
    ),
    "aws:sourcevpc": ServiceCallKey(None, ("iam-keys", "kms-vpce"), f"{_VPC_ENDPOINT_ONLY}. {_REDACTED}"),
    "aws:sourcevpce": ServiceCallKey(None, ("iam-keys", "kms-vpce"), f"{_VPC_ENDPOINT_ONLY}. {_REDACTED}"),
    "aws:sourcevpcarn": ServiceCallKey(
        None,
        ("iam-keys",),
        "This key is included in the request context for supported services when a request is made through a "
        f"VPC endpoint. The key is not included for requests made through public service endpoints. {_REDACTED}",
    ),
    "aws:vpcsourceip": ServiceCallKey(
        None,
        ("iam-keys", "s3-keys"),
        f"This key is included in the request context only if the request is made using a VPC endpoint. {_REDACTED}",
    ),
    "aws:calledvia": ServiceCallKey(None, ("iam-keys",), _NO_CHAIN),
    "aws:calledviafirst": ServiceCallKey(None, ("iam-keys",), _NO_CHAIN),
    "aws:calledvialast": ServiceCallKey(None, ("iam-keys",), _NO_CHAIN),
    "aws:principalisawsservice": ServiceCallKey(
        "false",
        ("iam-keys",),
        "It is also set to false if the service uses a service role or service-linked role to make a call on the "
        "principal's behalf",
    ),
}
# Not decided: aws:ViaAWSService is true when a service calls with forward access sessions, and AWS does not
# document whether EBS's side of a copy does; a statement conditioned on it stays undetermined.
ABSENT_IN_SERVICE_CALLS = frozenset(key for key, fact in SERVICE_CALL_CONTEXT.items() if fact.value is None)


@dataclass(frozen=True)
class Principal:
    """Who is asking: an account, optionally through one IAM role or user ARN.

    `arn` None means some principal of the account, not known which. `org_paths` None means not
    known (the runbook does not read organization paths); `org_id` None means outside any
    organization.
    """

    account_id: str
    arn: str | None = None
    org_id: str | None = None
    org_paths: tuple[str, ...] | None = None
    partition: str = "aws"

    @property
    def root_arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:root"


@dataclass(frozen=True)
class Request:
    """One action on one resource by one principal, with the context keys AWS would set.

    `complete` says the context holds every key the request carries (true for the sandbox, which
    plays AWS); otherwise a key the evaluator was not told about is unknown, not absent.
    `by_service` says an AWS service makes the call itself, with a service role or a service-linked
    role: the keys AWS documents for such calls (SERVICE_CALL_CONTEXT) are known, absent or set.
    """

    principal: Principal
    action: str
    resource: str
    context: Mapping[str, str | list[str]] = field(default_factory=dict)
    complete: bool = False
    by_service: bool = False

    def lookup(self, key: str) -> tuple[bool, list[str] | None]:
        """(known, values): values None means the key is absent from the request."""
        wanted = key.lower()
        for name, value in self.context.items():
            if name.lower() == wanted:
                return True, [str(v) for v in value] if isinstance(value, list) else [str(value)]
        if self.by_service and wanted in SERVICE_CALL_CONTEXT:
            documented = SERVICE_CALL_CONTEXT[wanted].value
            return True, None if documented is None else [documented]
        principal = self.principal
        builtin: dict[str, list[str] | None] = {
            "aws:principalaccount": [principal.account_id],
            "kms:calleraccount": [principal.account_id],
            "aws:principalarn": [principal.arn or principal.root_arn] if principal.arn or self.complete else None,
            "aws:principalorgid": [principal.org_id] if principal.org_id else None,
        }
        if wanted in builtin:
            known = builtin[wanted] is not None or wanted == "aws:principalorgid" or self.complete
            return known, builtin[wanted]
        if wanted == "aws:principalorgpaths":
            if principal.org_paths is None:
                return self.complete, None
            return True, list(principal.org_paths) or None
        if self.complete or wanted in KNOWN_WHEN_ABSENT:
            return True, None
        return False, None


@dataclass(frozen=True)
class Decision:
    """The outcome and the statements behind it (the Denies that matched, the Allows that granted,
    or the statements the evaluator could not decide)."""

    outcome: str
    statements: tuple[dict[str, Any], ...] = ()

    @property
    def allowed(self) -> bool:
        return self.outcome == ALLOW


# ----- three-valued logic ---------------------------------------------------------------------------


def _all(values: Iterable[Maybe]) -> Maybe:
    result: Maybe = True
    for value in values:
        if value is False:
            return False
        if value is None:
            result = None
    return result


def _any(values: Iterable[Maybe]) -> Maybe:
    result: Maybe = False
    for value in values:
        if value is True:
            return True
        if value is None:
            result = None
    return result


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@lru_cache(maxsize=512)
def _wildcard_pattern(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.S if case_sensitive else re.S | re.I)


def _wildcard(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    return bool(_wildcard_pattern(pattern, case_sensitive).match(value))


# ----- principal, action, resource ------------------------------------------------------------------


def _account_of(value: str) -> str | None:
    if value.isdigit() and len(value) == 12:
        return value
    parts = value.split(":")
    if len(parts) >= 6 and parts[0] == "arn" and parts[4].isdigit():
        return parts[4]
    return None


def _aws_principal_matches(value: str, principal: Principal, complete: bool) -> Maybe:
    """Whether one `"AWS"` principal value names the caller."""
    if value == "*":
        return True
    if _account_of(value) != principal.account_id:
        return False
    if value == principal.account_id or value.endswith(":root"):
        return True
    if principal.arn is None:
        return False if complete else None
    if value == principal.arn:
        return True
    role_name = principal.arn.rsplit("/", 1)[-1]
    if ":assumed-role/" in value and value.split(":assumed-role/", 1)[1].split("/", 1)[0] == role_name:
        return None
    return False


def _principal_matches(principal_element: Any, principal: Principal, complete: bool) -> Maybe:
    if principal_element == "*":
        return True
    if not isinstance(principal_element, Mapping):
        return False
    results: list[Maybe] = []
    for kind, values in principal_element.items():
        if kind == "AWS":
            results += [_aws_principal_matches(str(v), principal, complete) for v in _as_list(values)]
        else:
            # The caller is an IAM principal; whether a service acts as itself here is not modelled.
            results.append(False if complete else None)
    return _any(results)


def _not_principal_applies(element: Any, principal: Principal, complete: bool) -> Maybe:
    """Whether a Deny with NotPrincipal applies to the caller (it applies unless the caller is listed).

    AWS excludes a role session only when the policy lists its account and its role (and session);
    which sessions an account ARN excludes is not modelled, so naming the caller's account is
    undetermined unless the request is complete.
    """
    if not isinstance(element, Mapping):
        return None if element == "*" and not complete else element != "*"
    aws_values = [str(v) for v in _as_list(element.get("AWS"))]
    others = set(element) - {"AWS"}
    own = [v for v in aws_values if v == "*" or _account_of(v) == principal.account_id]
    if not own:
        return True if (complete or not others) else None
    if not complete:
        return None
    account_listed = any(v in ("*", principal.account_id) or v.endswith(":root") for v in own)
    role_listed = principal.arn is None or principal.arn in own or "*" in own
    return not (account_listed and role_listed)


def _principal_applies(statement: Mapping[str, Any], principal: Principal, complete: bool) -> Maybe:
    if "NotPrincipal" in statement:
        if statement.get("Effect") != DENY:
            return False  # AWS does not support NotPrincipal with Allow: it grants nothing here
        return _not_principal_applies(statement["NotPrincipal"], principal, complete)
    if "Principal" not in statement:
        return False
    return _principal_matches(statement["Principal"], principal, complete)


def _action_applies(statement: Mapping[str, Any], action: str) -> bool:
    if "NotAction" in statement:
        return not any(_wildcard(str(a), action, False) for a in _as_list(statement["NotAction"]))
    return any(_wildcard(str(a), action, False) for a in _as_list(statement.get("Action")))


def _resource_applies(statement: Mapping[str, Any], resource: str) -> bool:
    """A statement without Resource or NotResource has no effect (as KMS documents for key policies)."""
    if "NotResource" in statement:
        return not any(_wildcard(str(r), resource) for r in _as_list(statement["NotResource"]))
    return any(_wildcard(str(r), resource) for r in _as_list(statement.get("Resource")))


# ----- conditions -------------------------------------------------------------------------------------


def _arn_like(expected: str, actual: str) -> bool:
    want, got = expected.split(":", 5), actual.split(":", 5)
    if len(want) != len(got):
        return _wildcard(expected, actual)
    return all(_wildcard(w, g) for w, g in zip(want, got, strict=True))


def _number(text: str) -> float:
    return float(text)


def _date(text: str) -> datetime:
    if text.isdigit():
        return datetime.fromtimestamp(int(text))
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _in_network(expected: str, actual: str) -> bool:
    return ipaddress.ip_address(actual) in ipaddress.ip_network(expected, strict=False)


def _compare(parse: Callable[[str], Any], test: Callable[[Any, Any], bool]) -> Callable[[str, str], bool]:
    return lambda expected, actual: test(parse(actual), parse(expected))


# name -> (test of one policy value against one request value, negated)
OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (lambda e, a: a == e, False),
    "StringNotEquals": (lambda e, a: a == e, True),
    "StringEqualsIgnoreCase": (lambda e, a: a.lower() == e.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda e, a: a.lower() == e.lower(), True),
    "StringLike": (_wildcard, False),
    "StringNotLike": (_wildcard, True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
    "Bool": (lambda e, a: a.lower() == e.lower(), False),
    "NumericEquals": (_compare(_number, lambda a, e: a == e), False),
    "NumericNotEquals": (_compare(_number, lambda a, e: a == e), True),
    "NumericLessThan": (_compare(_number, lambda a, e: a < e), False),
    "NumericLessThanEquals": (_compare(_number, lambda a, e: a <= e), False),
    "NumericGreaterThan": (_compare(_number, lambda a, e: a > e), False),
    "NumericGreaterThanEquals": (_compare(_number, lambda a, e: a >= e), False),
    "DateEquals": (_compare(_date, lambda a, e: a == e), False),
    "DateNotEquals": (_compare(_date, lambda a, e: a == e), True),
    "DateLessThan": (_compare(_date, lambda a, e: a < e), False),
    "DateLessThanEquals": (_compare(_date, lambda a, e: a <= e), False),
    "DateGreaterThan": (_compare(_date, lambda a, e: a > e), False),
    "DateGreaterThanEquals": (_compare(_date, lambda a, e: a >= e), False),
    "IpAddress": (_in_network, False),
    "NotIpAddress": (_in_network, True),
}


def _policy_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _one_value(test: Callable[[str, str], bool], negated: bool, expected: list[str], actual: str) -> Maybe:
    """A single request value against the policy's values (any of them, or none of them when negated)."""
    if any("${" in e for e in expected):
        return None  # policy variables are not modelled
    try:
        matched = any(test(e, actual) for e in expected)
    except (ValueError, TypeError):
        return None
    return not matched if negated else matched


def _condition(operator: str, key: str, expected_raw: Any, request: Request) -> Maybe:
    """One operator on one key, three-valued."""
    set_operator, _, name = operator.rpartition(":")
    if set_operator not in ("", "ForAllValues", "ForAnyValue"):
        return None
    if_exists = name.endswith("IfExists") and name != "IfExists"
    base = name.removesuffix("IfExists") if if_exists else name
    expected = [_policy_value(v) for v in _as_list(expected_raw)]
    known, values = request.lookup(key)
    if not known:
        return None
    if base == "Null":
        if set_operator:
            return None
        wants_absent = [e.lower() == "true" for e in expected]
        return any(w == (values is None) for w in wants_absent)
    if base not in OPERATORS:
        return None
    test, negated = OPERATORS[base]
    if values is None:
        if set_operator == "ForAllValues":
            return True
        if set_operator == "ForAnyValue":
            return False
        return if_exists or negated
    if set_operator == "ForAllValues":
        return _all(_one_value(test, negated, expected, v) for v in values)
    if set_operator == "ForAnyValue":
        return _any(_one_value(test, negated, expected, v) for v in values)
    if len(values) > 1:
        return None  # a single-valued operator on a multivalued key is not modelled
    return _one_value(test, negated, expected, values[0])


def _conditions_apply(statement: Mapping[str, Any], request: Request) -> Maybe:
    block = statement.get("Condition") or {}
    if not isinstance(block, Mapping):
        return None
    results: list[Maybe] = []
    for operator, tests in block.items():
        if not isinstance(tests, Mapping):
            results.append(None)
            continue
        results += [_condition(str(operator), str(key), expected, request) for key, expected in tests.items()]
    return _all(results)


# ----- documents and decisions ------------------------------------------------------------------------


def statement_applies(statement: Mapping[str, Any], request: Request) -> Maybe:
    """Whether the statement applies to the request: True, False, or None when it cannot tell."""
    if not (_action_applies(statement, request.action) and _resource_applies(statement, request.resource)):
        return False
    return _all(
        [
            _principal_applies(statement, request.principal, request.complete),
            _conditions_apply(statement, request),
        ]
    )


def parse_policy(document: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """A policy as a dict; an empty or unreadable document allows nothing."""
    if document is None or document == "":
        return {"Statement": []}
    if isinstance(document, Mapping):
        return dict(document)
    try:
        parsed = json.loads(document)
    except ValueError:
        return {"Statement": []}
    return parsed if isinstance(parsed, dict) else {"Statement": []}


def statements(document: str | Mapping[str, Any] | None) -> list[dict[str, Any]]:
    return [s for s in _as_list(parse_policy(document).get("Statement")) if isinstance(s, dict)]


def decide(document: str | Mapping[str, Any] | None, request: Request) -> Decision:
    """Explicit Deny wins; then an Allow is needed; a statement it cannot decide makes it undetermined."""
    denies: dict[Maybe, list[dict[str, Any]]] = {True: [], None: []}
    allows: dict[Maybe, list[dict[str, Any]]] = {True: [], None: []}
    for statement in statements(document):
        effect = statement.get("Effect")
        if effect not in (ALLOW, DENY):
            continue
        applies = statement_applies(statement, request)
        if applies is not False:
            (denies if effect == DENY else allows)[applies].append(statement)
    if denies[True]:
        return Decision(DENY, tuple(denies[True]))
    if not allows[True] and not allows[None]:
        return Decision(IMPLICIT_DENY)
    if allows[True] and not denies[None]:
        return Decision(ALLOW, tuple(allows[True]))
    undecided = denies[None] + ([] if allows[True] else allows[None])
    return Decision(UNDETERMINED, tuple(undecided))


def decide_all(document: str | Mapping[str, Any] | None, requests: Iterable[Request]) -> Decision:
    """Every request allowed, or the weakest outcome: Deny, then implicit deny, then undetermined."""
    decisions = [decide(document, r) for r in requests]
    for outcome in (DENY, IMPLICIT_DENY, UNDETERMINED, ALLOW):
        chosen = [d for d in decisions if d.outcome == outcome]
        if chosen:
            found: list[dict[str, Any]] = []
            for decision in chosen:
                found += [s for s in decision.statements if s not in found]
            return Decision(outcome, tuple(found))
    return Decision(IMPLICIT_DENY)


def evaluate(document: str | Mapping[str, Any] | None, request: Request) -> str:
    """ALLOW, DENY (an explicit Deny matched: it always wins), IMPLICIT_DENY or UNDETERMINED."""
    return decide(document, request).outcome


def is_allowed(document: str | Mapping[str, Any] | None, requests: Iterable[Request]) -> bool:
    """True only when every request is certainly allowed."""
    return decide_all(document, requests).allowed
