"""Identity policies the sandbox enforces when they are set: opt-in, per account.

Unset (the default), an account's key may call every operation, as the sandbox has always let it. Once
an account has an identity policy (control API POST /_sandbox/identity-policies, `Sandbox.set_identity_policy`),
every request signed with that account's key is evaluated against it before any service sees it, as IAM
evaluates a user who has that one policy attached (the signer is the IAM user `sandbox-<role>`, user_arn):
the action is `<IAM prefix>:<Operation>`, the resources are those AWS authorizes the operation on, read from
the request (REQUIRED_RESOURCES, for every operation the runbook calls), and a request passing a role to
AWS Backup (IamRoleArn) needs iam:PassRole on that role with iam:PassedToService backup.amazonaws.com.
Evaluation is runbook_policy.iam_policy's, with the request's context complete (a key not set is absent):
KMS calls carry kms:ResourceAliases (the key's aliases), a PassRole carries iam:PassedToService, a
CreateVolume that tags the new volume carries ec2:CreateAction. A denied request is answered with AWS's
refusal in the service's protocol (`denial`, which gate.py answers with protocols.aws_error).

Simplifications: an operation the runbook does not call is authorized on resource "*" (the sandbox does not
read its resources); a KMS call naming a key that does not exist is left to KMS, which answers NotFound, as
KMS finds the key before it authorizes; sts:GetCallerIdentity needs no permission, as on AWS. Policies are
the sandbox's setup, not the world's: a scenario reset keeps them, like settings.py's knobs.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from moto.iam.models import iam_backends
from moto.kms.models import Key, kms_backends

from runbook_lib.core import arns, permissions
from runbook_policy import iam_policy

from . import protocols
from .accounts import ACCOUNT_BY_ID, ACCOUNTS, SandboxAccount

logger = logging.getLogger(__name__)

BACKUP_SERVICE = "backup.amazonaws.com"
# IAM's limit on a managed policy's size, whitespace not counted.
MAX_POLICY_CHARACTERS = 6144
# Where a service's IAM prefix is not its signing name (botocore models name no signingName for most).
IAM_PREFIXES = {"monitoring": "cloudwatch", "email": "ses"}
FREE_ACTIONS = frozenset({"sts:GetCallerIdentity"})


class PolicyError(ValueError):
    """An identity policy or account the sandbox cannot take; the message says which and why."""


def user_arn(account: SandboxAccount) -> str:
    """The IAM user the account's key signs as while it has an identity policy (root has none)."""
    return f"arn:aws:iam::{account.account_id}:user/{account.profile}"


class IdentityPolicies:
    """The identity policy of each account that has one; thread-safe (the server answers in threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._policies: dict[str, dict[str, Any]] = {}

    def set(self, account_id: str, policy: dict[str, Any] | None) -> None:
        with self._lock:
            if policy is None:
                self._policies.pop(account_id, None)
            else:
                self._policies[account_id] = policy

    def get(self, account_id: str) -> dict[str, Any] | None:
        return self._policies.get(account_id)

    def as_dict(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(sorted(self._policies.items()))

    def __bool__(self) -> bool:
        return bool(self._policies)


identity_policies = IdentityPolicies()


def account_named(name: Any) -> SandboxAccount:
    """A sandbox account by ID or by role (source, target, management, outsider)."""
    found = ACCOUNT_BY_ID.get(str(name)) or next((a for a in ACCOUNTS if a.role == name), None)
    if found is None:
        choices = ", ".join(f"{a.account_id} ({a.role})" for a in ACCOUNTS)
        raise PolicyError(f"unknown account {name!r}; accounts are {choices}")
    return found


def checked_policy(policy: Any) -> dict[str, Any]:
    """The policy as IAM would take it, or PolicyError with what IAM says of it (MalformedPolicyDocument)."""
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            raise PolicyError("MalformedPolicyDocument: the policy is not valid JSON") from None
    if not isinstance(policy, dict) or not isinstance(policy.get("Statement"), (list, dict)):
        raise PolicyError("MalformedPolicyDocument: a policy is a JSON object with a Statement")
    if len(re.sub(r"\s", "", json.dumps(policy))) > MAX_POLICY_CHARACTERS:
        raise PolicyError(f"LimitExceeded: the policy is over {MAX_POLICY_CHARACTERS} characters (whitespace aside)")
    given = policy["Statement"]
    for statement in given if isinstance(given, list) else [given]:
        if not isinstance(statement, dict) or statement.get("Effect") not in (iam_policy.ALLOW, iam_policy.DENY):
            raise PolicyError("MalformedPolicyDocument: each statement needs Effect Allow or Deny")
        if "Principal" in statement or "NotPrincipal" in statement:
            raise PolicyError("MalformedPolicyDocument: Policy document should not specify a principal.")
        if ("Action" in statement) == ("NotAction" in statement):
            raise PolicyError("MalformedPolicyDocument: each statement needs Action or NotAction")
        if ("Resource" in statement) == ("NotResource" in statement):
            raise PolicyError("MalformedPolicyDocument: each statement needs Resource or NotResource")
    return policy


def set_policy(account: Any, policy: Any) -> dict[str, dict[str, Any]]:
    """Attach an identity policy to an account's signer (None takes it off); every account's policy after."""
    chosen = account_named(account)
    identity_policies.set(chosen.account_id, None if policy is None else checked_policy(policy))
    logger.info("identity policy of %s %s", chosen.account_id, "removed" if policy is None else "set")
    return identity_policies.as_dict()


# ----- the request, as IAM reads it ---------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request: who, where, and its parameters by member name (query forms keep their flat names)."""

    account: str
    region: str
    params: Mapping[str, Any]

    @property
    def partition(self) -> str:
        return arns.partition(self.region)

    def arn(self, service: str, resource: str, region: str | None = None, account: str | None = None) -> str:
        where = self.region if region is None else region
        return f"arn:{self.partition}:{service}:{where}:{self.account if account is None else account}:{resource}"

    def text(self, name: str) -> str:
        value = self.params.get(name)
        return value if isinstance(value, str) else ""

    def listed(self, name: str) -> list[str]:
        """A list parameter: a JSON list, or a query form's NAME.1, NAME.2..."""
        value = self.params.get(name)
        if isinstance(value, list):
            return [str(v) for v in value]
        numbered = sorted((k for k in self.params if re.fullmatch(rf"{re.escape(name)}\.\d+", k)), key=_index)
        return [str(self.params[k]) for k in numbered]


def _index(name: str) -> int:
    return int(name.rsplit(".", 1)[1])


@dataclass(frozen=True)
class Needed:
    """One authorization a request needs: an action on a resource, with the context keys IAM sets."""

    action: str
    resource: str
    context: Mapping[str, str | list[str]] = field(default_factory=dict)


def _credential_region(environ: Mapping[str, Any]) -> str:
    try:
        return str(environ.get("HTTP_AUTHORIZATION", "").split("Credential=", 1)[1].split("/")[2])
    except IndexError:
        return ""


def _rest_parameters(operation: Any, environ: Mapping[str, Any], body: bytes) -> dict[str, Any]:
    """A REST request's members: the body's, the URI labels' and the query string's."""
    params: dict[str, Any] = _json_body(body)
    template = operation.http["requestUri"].split("?", 1)[0].strip("/").split("/")
    path = urlsplit(environ.get("RAW_URI") or environ.get("PATH_INFO", "")).path.strip("/").split("/")
    labels = {part[1:-1]: unquote(value) for part, value in zip(template, path, strict=False) if part.startswith("{")}
    query = protocols.query_params(dict(environ), b"")
    shape = operation.input_shape
    for name, member in shape.members.items() if shape is not None else ():
        where, wire = member.serialization.get("location"), member.serialization.get("name", name)
        if where == "uri" and wire in labels:
            params[name] = labels[wire]
        elif where == "querystring" and wire in query:
            params[name] = query[wire]
    return params


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body) if body.strip() else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def parameters(backend: str, protocol: str, operation: str, environ: Mapping[str, Any], body: bytes) -> dict[str, Any]:
    """The request's parameters by member name, in whichever protocol it came."""
    if protocol == protocols.JSON:
        return _json_body(body)
    if protocol in (protocols.QUERY, protocols.EC2):
        return protocols.query_params(dict(environ), body)
    model = protocols.model_of(backend)
    return _rest_parameters(model.operation_model(operation), environ, body) if model is not None else {}


def iam_prefix(backend: str, signed_for: str) -> str:
    """The IAM service prefix of a service's actions: its model's signing name (elasticfilesystem for efs)."""
    model = protocols.model_of(backend)
    name = signed_for
    if model is not None:
        name = str(model.metadata.get("signingName") or model.metadata.get("endpointPrefix") or signed_for)
    return IAM_PREFIXES.get(name, name)


# ----- the resources each operation the runbook calls is authorized on ----------------------------------

Resources = Callable[[Call], list[str]]


def _vault(call: Call) -> list[str]:
    owner = call.text("BackupVaultAccountId") or call.account
    return [call.arn("backup", f"backup-vault:{call.text('BackupVaultName')}", account=owner)]


def _recovery_point(call: Call) -> list[str]:
    return [call.text("RecoveryPointArn") or "*"]


def _plan(call: Call) -> list[str]:
    """A backup plan by ID; a plan not made yet has no ID: any plan of the account and Region."""
    return [call.arn("backup", f"backup-plan:{call.text('BackupPlanId') or '*'}")]


def _named(member: str) -> Resources:
    return lambda call: [call.text(member) or "*"]


def _snapshot(call: Call, snapshot_id: str = "*", region: str | None = None) -> str:
    return call.arn("ec2", f"snapshot/{snapshot_id}", region=region, account="")


def _volume(call: Call, volume_id: str = "*") -> str:
    return call.arn("ec2", f"volume/{volume_id}")


EC2_PREFIXES = {"vol": "volume", "snap": "snapshot", "ami": "image", "i": "instance"}


def _ec2_resource(call: Call, resource_id: str) -> str:
    kind = EC2_PREFIXES.get(resource_id.split("-", 1)[0], "")
    if kind in ("snapshot", "image"):
        return call.arn("ec2", f"{kind}/{resource_id}", account="")
    return call.arn("ec2", f"{kind}/{resource_id}") if kind else "*"


def _role(call: Call) -> list[str]:
    """A role by name, with the path IAM keeps for it."""
    name = call.text("RoleName")
    role = next((r for r in iam_backends[call.account]["global"].roles.values() if r.name == name), None)
    return [role.arn if role is not None else call.arn("iam", f"role/{name}", region="")]


def _rule(member: str) -> Resources:
    def rule(call: Call) -> list[str]:
        bus = call.text("EventBusName").rsplit("/", 1)[-1]
        name = call.text(member)
        return [call.arn("events", f"rule/{bus}/{name}" if bus and bus != "default" else f"rule/{name}")]

    return rule


REQUIRED_RESOURCES: dict[str, Resources] = {
    **dict.fromkeys((*permissions.VAULT_ACTIONS, "backup:StartBackupJob"), _vault),
    **dict.fromkeys(
        (
            "backup:DescribeRecoveryPoint",
            "backup:DeleteRecoveryPoint",
            "backup:GetRecoveryPointRestoreMetadata",
            "backup:StartCopyJob",
            "backup:StartRestoreJob",
        ),
        _recovery_point,
    ),
    **dict.fromkeys(permissions.PLAN_ACTIONS, _plan),
    "backup:ListTags": _named("ResourceArn"),
    "backup:TagResource": _named("ResourceArn"),
    "ec2:CreateSnapshot": lambda call: [_volume(call, call.text("VolumeId")), _snapshot(call)],
    "ec2:CopySnapshot": lambda call: [
        _snapshot(call),
        _snapshot(call, call.text("SourceSnapshotId"), call.text("SourceRegion") or call.region),
    ],
    "ec2:DeleteSnapshot": lambda call: [_snapshot(call, call.text("SnapshotId"))],
    "ec2:CreateVolume": lambda call: (
        [_volume(call)] + ([_snapshot(call, call.text("SnapshotId"))] if call.text("SnapshotId") else [])
    ),
    "ec2:DeleteVolume": lambda call: [_volume(call, call.text("VolumeId"))],
    "ec2:CreateTags": lambda call: [_ec2_resource(call, r) for r in call.listed("ResourceId")],
    "rds:DescribeDBInstances": lambda call: [call.arn("rds", f"db:{call.text('DBInstanceIdentifier') or '*'}")],
    "rds:DescribeDBClusters": lambda call: [call.arn("rds", f"cluster:{call.text('DBClusterIdentifier') or '*'}")],
    "elasticfilesystem:DescribeFileSystems": lambda call: [
        call.arn("elasticfilesystem", f"file-system/{call.text('FileSystemId') or '*'}")
    ],
    **dict.fromkeys(
        ("iam:GetRole", "iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "iam:GetRolePolicy"), _role
    ),
    "iam:GetPolicy": _named("PolicyArn"),
    "iam:GetPolicyVersion": _named("PolicyArn"),
    "sns:CreateTopic": lambda call: [call.arn("sns", call.text("Name"))],
    **dict.fromkeys(("sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:DeleteTopic"), _named("TopicArn")),
    "sns:TagResource": _named("ResourceArn"),
    **dict.fromkeys(("events:PutRule", "events:DescribeRule", "events:DeleteRule"), _rule("Name")),
    **dict.fromkeys(("events:ListTargetsByRule", "events:PutTargets", "events:RemoveTargets"), _rule("Rule")),
    "events:TagResource": _named("ResourceARN"),
}

# Operations on the key KeyId names (by ID, ARN, alias or alias ARN): authorized on the key's ARN, with its aliases.
KEY_ACTIONS = frozenset({"kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy"})
# Every operation whose resources the sandbox reads from the request (the others: "*").
READ_RESOURCES = frozenset(REQUIRED_RESOURCES) | KEY_ACTIONS

# Operations that pass a role to AWS Backup, and where the request names it.
PASSED_ROLES: dict[str, Callable[[Call], str]] = {
    **dict.fromkeys(
        ("backup:StartBackupJob", "backup:StartCopyJob", "backup:StartRestoreJob"),
        lambda call: call.text("IamRoleArn"),
    ),
    "backup:CreateBackupSelection": lambda call: str((call.params.get("BackupSelection") or {}).get("IamRoleArn", "")),
}


# EC2 operations that tag what they make (TagSpecification): ec2:CreateTags on it, with ec2:CreateAction.
TAGGED_ON_CREATE: dict[str, Callable[[Call], str]] = {
    "ec2:CreateVolume": _volume,
    "ec2:CreateSnapshot": _snapshot,
    "ec2:CopySnapshot": _snapshot,
}


def _find_key(call: Call, reference: str) -> Key | None:
    """A key by ID, key ARN, alias or alias ARN (another account's by ARN), without making an AWS managed key
    KMS would make on first use."""
    account, region, name = call.account, call.region, reference
    if reference.startswith("arn:"):
        found = arns.parts(reference)
        account, region, name = found["account"], found["region"], found["resource"]
    if account not in ACCOUNT_BY_ID or not name:
        return None
    backend = kms_backends[account][region]
    if name.startswith("alias/"):
        return next((key for key in backend.keys.values() if name in key.aliases), None)
    return backend.keys.get(name.removeprefix("key/"))


def needed(action: str, call: Call) -> list[Needed]:
    """Every authorization the request needs: the action on each resource, then a role it passes."""
    if action in KEY_ACTIONS:
        key = _find_key(call, call.text("KeyId"))
        if key is None:
            return []  # KMS answers NotFound (it finds the key before it authorizes)
        aliases: dict[str, str | list[str]] = {"kms:ResourceAliases": sorted(key.aliases)} if key.aliases else {}
        return [Needed(action, key.arn, aliases)]
    wanted = [Needed(action, resource) for resource in REQUIRED_RESOURCES.get(action, lambda _: ["*"])(call)]
    role = PASSED_ROLES.get(action, lambda _: "")(call)
    if role:
        wanted.append(Needed("iam:PassRole", role, {"iam:PassedToService": BACKUP_SERVICE}))
    if action in TAGGED_ON_CREATE and any(name.startswith("TagSpecification.") for name in call.params):
        created = TAGGED_ON_CREATE[action](call)
        wanted.append(Needed("ec2:CreateTags", created, {"ec2:CreateAction": action.split(":", 1)[1]}))
    return wanted


# ----- the decision, and AWS's refusal ------------------------------------------------------------------


@dataclass(frozen=True)
class Denial:
    """AWS's refusal of a request its identity policy does not allow: code, message and HTTP status."""

    code: str
    message: str
    status: int


def _as_principal_statements(policy: dict[str, Any], principal: str) -> dict[str, Any]:
    """The identity policy as statements naming the user it is attached to: what the resource-policy
    evaluator (iam_policy) reads."""
    return {"Statement": [{**s, "Principal": {"AWS": principal}} for s in iam_policy.statements(policy)]}


def refusal_code(prefix: str, protocol: str) -> tuple[str, int]:
    """The code and HTTP status a service refuses an unauthorized caller with."""
    if prefix == "ec2":
        return "UnauthorizedOperation", 403
    if prefix == "sns":
        return "AuthorizationError", 403
    if protocol == protocols.QUERY:
        return "AccessDenied", 403
    return "AccessDeniedException", 400 if prefix == "kms" else 403


def refusal_message(user: str, want: Needed, outcome: str, prefix: str) -> str:
    """AWS's words: who, which action, on which resource (none for an action without one), and why."""
    on = "" if want.resource == "*" else f" on resource: {want.resource}"
    why = (
        "with an explicit deny in an identity-based policy"
        if outcome == iam_policy.DENY
        else f"because no identity-based policy allows the {want.action} action"
    )
    message = f"User: {user} is not authorized to perform: {want.action}{on} {why}"
    return f"You are not authorized to perform this operation. {message}" if prefix == "ec2" else message


def decide(account: SandboxAccount, policy: dict[str, Any], wanted: list[Needed]) -> tuple[Needed, str] | None:
    """The first authorization the policy does not give, with its outcome; None when it gives them all.
    An undetermined answer refuses: the sandbox plays AWS and knows every key its requests carry."""
    user = user_arn(account)
    statements = _as_principal_statements(policy, user)
    principal = iam_policy.Principal(account.account_id, arn=user)
    for want in wanted:
        request = iam_policy.Request(principal, want.action, want.resource, want.context, complete=True)
        outcome = iam_policy.evaluate(statements, request)
        if outcome != iam_policy.ALLOW:
            return want, outcome
    return None


def denial(
    account_id: str,
    backend: str,
    service: str,
    protocol: str,
    operation: str,
    environ: Mapping[str, Any],
    body: bytes,
) -> Denial | None:
    """AWS's refusal when the account has an identity policy that does not allow the request, else None;
    `service` is the name the request is signed for, `backend` moto's name of the service."""
    if not identity_policies:
        return None
    policy = identity_policies.get(account_id)
    if policy is None:
        return None
    account = ACCOUNT_BY_ID[account_id]
    prefix = iam_prefix(backend, service)
    action = f"{prefix}:{operation}"
    if action in FREE_ACTIONS:
        return None
    call = Call(account_id, _credential_region(environ), parameters(backend, protocol, operation, environ, body))
    refused = decide(account, policy, needed(action, call))
    if refused is None:
        return None
    want, outcome = refused
    code, status = refusal_code(prefix, protocol)
    message = refusal_message(user_arn(account), want, outcome, prefix)
    logger.info("identity policy of %s refuses %s: %s", account_id, action, message)
    return Denial(code, message, status)
