"""Evaluate a resource policy (KMS key policy, Backup vault access policy) for one request.

Used twice, from one definition: the sandbox enforces cross-account rules with it, and the runbook's
checks predict with it whether a copy will be allowed. It implements the part of the IAM policy
language those two policies use in practice; anything it does not understand does not match, so an
unknown condition can neither grant nor deny access here (the conservative reading for an Allow).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ALLOW = "Allow"
DENY = "Deny"
IMPLICIT_DENY = "ImplicitDeny"


@dataclass(frozen=True)
class Principal:
    """Who is asking: an account, optionally through one IAM role or user ARN."""

    account_id: str
    arn: str | None = None
    org_id: str | None = None

    def matches(self, value: str) -> bool:
        if value == "*":
            return True
        if value == self.account_id or value == f"arn:aws:iam::{self.account_id}:root":
            return True
        return self.arn is not None and value == self.arn


@dataclass(frozen=True)
class Request:
    """One action on one resource by one principal, with the context keys AWS would set."""

    principal: Principal
    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)

    def context_value(self, key: str) -> str | None:
        lowered = {k.lower(): v for k, v in self.context.items()}
        builtin = {
            "aws:principalaccount": self.principal.account_id,
            "kms:calleraccount": self.principal.account_id,
            "aws:principalorgid": self.principal.org_id,
            "aws:principalarn": self.principal.arn or f"arn:aws:iam::{self.principal.account_id}:root",
        }
        if key.lower() in lowered:
            return lowered[key.lower()]
        return builtin.get(key.lower())


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _wildcard(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    if not case_sensitive:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern)


def _principal_matches(statement: Mapping[str, Any], principal: Principal) -> bool:
    if "NotPrincipal" in statement:
        return False
    value = statement.get("Principal")
    if value == "*":
        return True
    if not isinstance(value, Mapping) or set(value) - {"AWS"}:
        return False
    return any(principal.matches(str(p)) for p in _as_list(value.get("AWS")))


def _action_matches(statement: Mapping[str, Any], action: str) -> bool:
    if "NotAction" in statement:
        return not any(_wildcard(a, action, False) for a in _as_list(statement["NotAction"]))
    return any(_wildcard(a, action, False) for a in _as_list(statement.get("Action")))


def _resource_matches(statement: Mapping[str, Any], resource: str) -> bool:
    if "NotResource" in statement:
        return False
    return any(_wildcard(r, resource) for r in _as_list(statement.get("Resource", "*")))


def _condition_operator(name: str, expected: list[str], actual: str | None) -> bool | None:
    """True/False for an operator it knows, None for one it does not."""
    base = name.removesuffix("IfExists")
    if actual is None:
        return name.endswith("IfExists") if base in _OPERATORS else None
    test = _OPERATORS.get(base)
    if test is None:
        return None
    return test(expected, actual)


_OPERATORS = {
    "StringEquals": lambda exp, act: act in exp,
    "StringNotEquals": lambda exp, act: act not in exp,
    "StringEqualsIgnoreCase": lambda exp, act: act.lower() in [e.lower() for e in exp],
    "StringLike": lambda exp, act: any(_wildcard(e, act) for e in exp),
    "StringNotLike": lambda exp, act: not any(_wildcard(e, act) for e in exp),
    "ArnEquals": lambda exp, act: act in exp,
    "ArnLike": lambda exp, act: any(_wildcard(e, act) for e in exp),
    "Bool": lambda exp, act: act.lower() in [e.lower() for e in exp],
}

KNOWN_CONDITION_KEYS = {
    "kms:grantisforawsresource",
    "kms:calleraccount",
    "aws:principalorgid",
    "aws:principalaccount",
    "aws:principalarn",
    "kms:viaservice",
}


def _conditions_match(statement: Mapping[str, Any], request: Request) -> bool:
    for operator, tests in (statement.get("Condition") or {}).items():
        if not isinstance(tests, Mapping):
            return False
        for key, expected in tests.items():
            if key.lower() not in KNOWN_CONDITION_KEYS:
                return False
            expected_values = [str(v).lower() if isinstance(v, bool) else str(v) for v in _as_list(expected)]
            outcome = _condition_operator(operator, expected_values, request.context_value(key))
            if not outcome:
                return False
    return True


def statement_applies(statement: Mapping[str, Any], request: Request) -> bool:
    return (
        _principal_matches(statement, request.principal)
        and _action_matches(statement, request.action)
        and _resource_matches(statement, request.resource)
        and _conditions_match(statement, request)
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


def evaluate(document: str | Mapping[str, Any] | None, request: Request) -> str:
    """ALLOW, DENY (an explicit Deny matched: it always wins) or IMPLICIT_DENY."""
    matched = [s for s in statements(document) if statement_applies(s, request)]
    if any(s.get("Effect") == DENY for s in matched):
        return DENY
    if any(s.get("Effect") == ALLOW for s in matched):
        return ALLOW
    return IMPLICIT_DENY


def is_allowed(document: str | Mapping[str, Any] | None, requests: Iterable[Request]) -> bool:
    return all(evaluate(document, r) == ALLOW for r in requests)
