"""Facts read once per run: what AWS says about accounts, organizations, keys, aliases, policies, vaults and DB
clusters.

Every client carries two event handlers (registered by clients.py). After a call that reads a fact
(FACT_OPERATIONS), the answer AWS gave (status, headers and body, as received) is kept in the active
store; the same call again is answered from the store, parsed by botocore as if AWS had sent it, so
callers (and their `client.exceptions.X` handlers) cannot tell the difference. A call that changes
facts (CHANGED_BY) makes the store forget them, whoever made it: a step, an Apply button, a fix.

A run activates a store when it starts (context.Run). In `runbook run` the store is a file in the
run folder (RUNBOOK_FACTS, cleared when the run starts), so a step in its own kernel reuses what an
earlier step read; in a notebook run alone it lives as long as the kernel's Run. Outside a run no
store is active and every call goes to AWS. Stored answers never hold credentials: requests are not
kept, and the key of a fact is the operation and its parameters.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from botocore import parsers
from botocore.awsrequest import AWSResponse, HeadersDict

log = logging.getLogger(__name__)

FACTS_ENV = "RUNBOOK_FACTS"
KEY = "runbook_fact"
FROM_STORE = "runbook_fact_from_store"
CHANGED = "runbook_changed_resource"

# Reads whose answer a run keeps (service signing name: operations).
FACT_OPERATIONS: dict[str, frozenset[str]] = {
    "sts": frozenset({"GetCallerIdentity"}),
    "organizations": frozenset({"DescribeOrganization"}),
    "kms": frozenset({"DescribeKey", "ListAliases", "GetKeyPolicy"}),
    "backup": frozenset({"DescribeBackupVault", "GetBackupVaultAccessPolicy", "DescribeGlobalSettings"}),
    "iam": frozenset(
        {"GetRole", "ListAttachedRolePolicies", "GetPolicy", "GetPolicyVersion", "ListRolePolicies", "GetRolePolicy"}
    ),
    "ec2": frozenset({"DescribeVolumes"}),
    # A DB cluster's Engine says its type (Aurora, Neptune or DocumentDB: clusters.py); its key never changes.
    "rds": frozenset({"DescribeDBClusters"}),
}

# Errors that say what is (nothing by that name, no organization): facts too. Throttling and other
# errors are not kept: the next call asks AWS again.
ABSENCE_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "NotFoundException",
        "NoSuchEntity",
        "AWSOrganizationsNotInUseException",
        "DBClusterNotFoundFault",
    }
)

# Each call that changes AWS, with the reads whose answers it may change (every account and Region:
# the management account's UpdateGlobalSettings changes what the source account reads).
CHANGED_BY: dict[str, tuple[str, ...]] = {
    "kms:PutKeyPolicy": ("kms:GetKeyPolicy",),
    "kms:ScheduleKeyDeletion": ("kms:DescribeKey", "kms:GetKeyPolicy"),
    "kms:CancelKeyDeletion": ("kms:DescribeKey",),
    "kms:CreateKey": (),
    "kms:CreateAlias": ("kms:ListAliases",),
    "kms:DeleteAlias": ("kms:ListAliases",),
    "backup:CreateBackupVault": ("backup:DescribeBackupVault", "backup:GetBackupVaultAccessPolicy"),
    "backup:DeleteBackupVault": ("backup:DescribeBackupVault", "backup:GetBackupVaultAccessPolicy"),
    "backup:PutBackupVaultAccessPolicy": ("backup:GetBackupVaultAccessPolicy",),
    "backup:DeleteBackupVaultAccessPolicy": ("backup:GetBackupVaultAccessPolicy",),
    "backup:UpdateGlobalSettings": ("backup:DescribeGlobalSettings",),
    # Jobs and recovery points are not facts (a run reads them as they are); a vault's count of
    # recovery points changes with them, and no step reads it.
    "backup:StartBackupJob": (),
    "backup:StartCopyJob": (),
    "backup:StartRestoreJob": ("ec2:DescribeVolumes",),  # the restore makes a volume
    "backup:PutRestoreValidationResult": (),
    "backup:DeleteRecoveryPoint": (),
    # Step 09's plan, selection, topic and rule are read as they are, never kept.
    "backup:CreateBackupPlan": (),
    "backup:UpdateBackupPlan": (),
    "backup:DeleteBackupPlan": (),
    "backup:CreateBackupSelection": (),
    "backup:DeleteBackupSelection": (),
    "sns:CreateTopic": (),
    "sns:SetTopicAttributes": (),
    "sns:DeleteTopic": (),
    "events:PutRule": (),
    "events:PutTargets": (),
    "events:RemoveTargets": (),
    "events:DeleteRule": (),
    "iam:CreateRole": ("iam:GetRole",),
    "ec2:CreateVolume": ("ec2:DescribeVolumes",),
    "ec2:DeleteVolume": ("ec2:DescribeVolumes",),
    "ec2:CreateTags": ("ec2:DescribeVolumes",),
    "ec2:CreateSnapshot": (),
    "ec2:DeleteSnapshot": (),
    "ec2:CopySnapshot": (),
}


# Services whose answers do not depend on the Region a client was made for.
GLOBAL_SERVICES = frozenset({"sts", "iam", "organizations"})


def _described_key_names(parsed: dict[str, Any]) -> list[dict[str, Any]]:
    meta = parsed["KeyMetadata"]
    return [{"KeyId": meta["KeyId"]}, {"KeyId": meta["Arn"]}]


def _the_one_volume(parsed: dict[str, Any]) -> list[dict[str, Any]]:
    found = parsed["Volumes"]
    return [{"Filters": [{"Name": "volume-id", "Values": [found[0]["VolumeId"]]}]}] if len(found) == 1 else []


# Other requests that the same answer answers: a key described by alias is the key by ID and by ARN;
# the one volume a Name tag finds is the volume by ID.
SAME_ANSWER: dict[str, Callable[[dict[str, Any]], list[dict[str, Any]]]] = {
    "kms:DescribeKey": _described_key_names,
    "ec2:DescribeVolumes": _the_one_volume,
}


def _changed_resource(params: dict[str, Any]) -> str:
    """What a change names (a key's ID, a vault's name), so that only facts naming it are forgotten;
    '' (every fact of the kind) for a change that names nothing, like UpdateGlobalSettings."""
    if params.get("KeyId"):
        return json.dumps(str(params["KeyId"]).rsplit("/", 1)[-1])[1:-1]
    if params.get("BackupVaultName"):
        return json.dumps({"BackupVaultName": params["BackupVaultName"]})[1:-1]
    return ""


def fact_key(profile: str, region: str, action: str, params: dict[str, Any]) -> str:
    where = "" if action.split(":")[0] in GLOBAL_SERVICES else region
    return f"{profile}|{where}|{action}|{json.dumps(params, sort_keys=True, default=str)}"


class Store:
    """Answers kept by fact key; in a file too when a run's steps share them across kernels."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self.answers: dict[str, dict[str, Any]] = {}
        self.fresh = False
        if path is not None and path.exists():
            for line in path.read_text().splitlines():
                self._take(json.loads(line))

    def _take(self, entry: dict[str, Any]) -> None:
        if "forget" in entry:
            self._drop(entry["forget"], entry.get("resource", ""))
        elif "clear" in entry:
            self.answers.clear()
        else:
            self.answers[entry["key"]] = entry

    def _write(self, entry: dict[str, Any]) -> None:
        if self.path is not None:
            with self.path.open("a") as handle:
                handle.write(json.dumps(entry) + "\n")

    def _drop(self, actions: list[str], resource: str = "") -> None:
        for key in [k for k in self.answers if k.split("|")[2] in actions and resource in k.split("|", 3)[3]]:
            del self.answers[key]

    def keep(self, key: str, status: int, headers: dict[str, str], body: bytes) -> None:
        entry = {"key": key, "status": status, "headers": headers, "body": base64.b64encode(body).decode()}
        self.answers[key] = entry
        self._write(entry)

    def forget(self, actions: tuple[str, ...], resource: str = "") -> None:
        """Forget the answers of these reads: those naming `resource` when one is given, else all."""
        self._drop(list(actions), resource)
        self._write({"forget": list(actions), "resource": resource})

    def clear(self) -> None:
        self.answers.clear()
        self._write({"clear": True})


_active: Store | None = None


def activate(store: Store | None) -> None:
    """Make `store` the one every client reads facts from (None: every call goes to AWS)."""
    global _active
    _active = store


def active() -> Store | None:
    return _active


def persist(path: Path) -> None:
    """Keep the active store in `path` from now on (a run's folder exists once its preflight passed),
    with what it holds so far: the steps' kernels start from what the preflight read."""
    store = _active
    path.write_text("".join(json.dumps(entry) + "\n" for entry in (store.answers.values() if store else ())))
    if store is not None:
        store.path = path


def for_run() -> Store:
    """The store of a run starting in this process: the run's file when `runbook run` names one."""
    named = os.environ.get(FACTS_ENV)
    return Store(Path(named) if named else None)


@contextmanager
def fresh() -> Iterator[None]:
    """Ask AWS again within the block (an Apply must see the policy as it is now), keeping the answer."""
    store = _active
    if store is None:
        yield
        return
    before, store.fresh = store.fresh, True
    try:
        yield
    finally:
        store.fresh = before


def _action(model: Any) -> str:
    return f"{model.service_model.signing_name}:{model.name}"


def register(events: Any, profile: str, region: str) -> None:
    """Attach the store to one client (first in line, so that an answer from the store is not logged
    as a call)."""

    def name_the_fact(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if model.name in FACT_OPERATIONS.get(model.service_model.signing_name, ()):
            context[KEY] = fact_key(profile, region, _action(model), params)
        elif _action(model) in CHANGED_BY:
            context[CHANGED] = _changed_resource(params)

    def answer_from_store(model: Any, context: dict[str, Any], **_: Any) -> Any:
        store, key = _active, context.get(KEY)
        if store is None or key is None or store.fresh or key not in store.answers:
            return None
        entry = store.answers[key]
        context[FROM_STORE] = True
        headers = HeadersDict(entry["headers"])
        response = {"status_code": entry["status"], "headers": headers, "body": base64.b64decode(entry["body"])}
        parsed = parsers.create_parser(model.metadata["protocol"]).parse(response, model.output_shape)
        return AWSResponse("", entry["status"], headers, None), parsed

    def keep_or_forget(http_response: Any, parsed: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
        store = _active
        if store is None or context.get(FROM_STORE) or http_response is None:
            return
        status = http_response.status_code
        key = context.get(KEY)
        if key is not None:
            code = (parsed or {}).get("Error", {}).get("Code", "")
            if status < 300 or code in ABSENCE_CODES:
                answer = (status, dict(http_response.headers), http_response.content)
                store.keep(key, *answer)
                if status < 300 and _action(model) in SAME_ANSWER:
                    for same in SAME_ANSWER[_action(model)](parsed):
                        store.keep(fact_key(profile, region, _action(model), same), *answer)
        elif status < 300 and _action(model) in CHANGED_BY:
            store.forget(CHANGED_BY[_action(model)], context.get(CHANGED, ""))

    events.register("before-parameter-build", name_the_fact)
    events.register_first("before-call", answer_from_store)
    events.register("after-call", keep_or_forget)
