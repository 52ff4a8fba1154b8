"""Facts about the parameters that need a read, checked read-only before anything changes.

`params.validate` checks each value's form without AWS. What only AWS knows is checked here: the
resource exists in the source account and Region and is a type AWS Backup copies, the keys exist and
are usable, the backup role exists. Without this, a wrong `resource_name` was found only in step 01,
after step 00 had enabled cross-account backup, created two vaults and written a vault policy.

`runbook run` checks the facts of all its steps before the first notebook starts (in-process: a bad
resource is one line and no kernel starts); step 00 checks the resource itself before it plans
anything, for a notebook user who runs it alone. Each failure is a ParameterError, one line naming
the parameter. No vault is looked for: step 00 creates the vaults, so a dry run that only plans
them is not refused here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

from ..aws import clients, clusters, context, keys
from ..aws.context import Run
from ..core import param_values, params, resource_kinds
from ..core.errors import ParameterError, StepFailed, quoted
from ..core.params import Parameters
from ..core.steps import (
    AUTOMATE,
    CLEANUP,
    COPY_TO_TARGET,
    CREATE_BACKUP,
    PREREQUISITES,
    RESTORE_DRILL,
    SHARE_SOURCE_KEY,
    TROUBLESHOOT,
    VERIFY_SOURCE_KEY,
    VERIFY_TARGET_KEY,
)
from . import records

log = logging.getLogger(__name__)

# The facts each step needs; every read they make is one the step declares in permissions.py.
# A run checks the facts of all its steps before its first step changes anything: a parameter that only a
# later step uses (hop_vault_key, restore_role_name, reencrypt_key) is refused before step 00 makes vaults.
FACTS_OF_STEP: dict[str, tuple[str, ...]] = {
    PREREQUISITES: (
        "accounts",
        "resource",
        "resource_key",
        "single_hop",
        "source_vault_key",
        "target_vault_key",
        "hop_vault_key",
        "role",
        "management_account",
    ),
    CREATE_BACKUP: ("accounts", "resource", "resource_key", "role"),
    VERIFY_SOURCE_KEY: ("accounts", "resource"),
    SHARE_SOURCE_KEY: ("accounts", "resource", "hop_vault_key"),
    COPY_TO_TARGET: ("accounts", "resource", "single_hop", "hop_vault_key", "role"),
    VERIFY_TARGET_KEY: ("accounts",),
    TROUBLESHOOT: ("accounts", "resource", "reencrypt_key_if_needed"),
    RESTORE_DRILL: ("accounts", "restore_role"),
    AUTOMATE: ("accounts", "resource", "role"),
    CLEANUP: ("accounts",),
}
# What step 00 checks itself before it plans (its own gate already names a missing role or vault key).
IN_STEP_00 = ("accounts", "resource", "resource_key", "single_hop", "management_account")


def _source(run: Run) -> str:
    return f"the source account {run.account('source')} (source_profile {run.source_profile}) in {run.source_region}"


def _usable(field: str, volume: dict[str, Any]) -> None:
    problem = resource_kinds.EBS.refusal(volume)
    if problem:
        raise ParameterError(field, problem)


def resource(run: Run) -> None:
    """The resource to back up exists in the source account and Region, once, and AWS Backup can back it up.
    A fleet: every volume it names (by Name tag or ARN) or its tags select exists, and is usable."""
    if run.resources or run.resource_tags:
        field = "resources" if run.resources else "resource_tags"
        try:
            chosen = context.selection(run)
        except StepFailed as failed:
            raise ParameterError(field, f"{failed.what}; allowed: {params.BY_NAME[field].allowed}") from None
        ids = resource_kinds.EBS.identifiers_in(chosen)
        listed = {v["VolumeId"]: v for v in context.listed_volumes(run)}
        missing = [volume_id for volume_id in ids if volume_id not in listed]
        if missing:
            listed.update({v["VolumeId"]: v for v in context.volumes_by_id(run, missing)})
        for volume_id in ids:
            if volume_id not in listed:
                raise ParameterError(field, f"no EBS volume {volume_id} in {_source(run)}; allowed: volumes there")
            _usable(field, listed[volume_id])
        for database in resource_kinds.RDS.identifiers_in(chosen):
            if database not in _databases(run, chosen):
                raise ParameterError(
                    field, f"no RDS DB instance {database} in {_source(run)}; allowed: DB instances there"
                )
        return
    if not run.resource_arn:
        found = context.named(run)
        if len(found) != 1:
            kind = resource_kinds.looked_up_as(found[0]) if found else None
            what = f"{len(found)} {kind.plural} are" if kind else f"no {resource_kinds.NAMED_NOUNS} is"
            raise ParameterError(
                "resource_name",
                f"{what} named {quoted(run.resource_name)} in {_source(run)}; allowed: the name of exactly one "
                "resource there (a volume's or file system's Name tag, a DB instance's or DB cluster's identifier), "
                "or set resource_arn",
            )
        _backed_up("resource_name", run, found[0])
        return
    arn = param_values.RESOURCE_ARN.match(run.resource_arn)
    if arn is None:  # validate refuses it first; kept for values built by hand
        raise ParameterError(
            "resource_arn", f"got {quoted(run.resource_arn)}; allowed: {params.BY_NAME['resource_arn'].allowed}"
        )
    if arn["account"] != run.account("source"):
        raise ParameterError("resource_arn", f"is in account {arn['account']}; allowed: a resource of {_source(run)}")
    _backed_up("resource_arn", run, run.resource_arn)


def _backed_up(field: str, run: Run, arn: str) -> None:
    """The resource exists, as its kind's lookup finds it, and AWS Backup can back it up: its kind refuses
    none of it (a volume's state, an Aurora cluster's DB instance), and a DB cluster's Engine is a type's."""
    kind = resource_kinds.looked_up_as(arn)
    if kind is None or kind.lookup is None:
        return
    found = context.described(run, arn)
    if found is None:
        raise ParameterError(field, f"no {kind.noun} {kind.shown(arn)} in {_source(run)}; allowed: {kind.one} there")
    problem = kind.refusal(found)
    if problem:
        raise ParameterError(field, problem)
    if kind.engines:
        _cluster(field, arn, found)


def _cluster(field: str, arn: str, cluster: dict[str, Any]) -> None:
    """The DB cluster's Engine is one of a type AWS Backup copies (Aurora, Neptune, DocumentDB): a Multi-AZ DB
    cluster (engine mysql or postgres) is not one the runbook copies."""
    engine = str(cluster.get("Engine", ""))
    if resource_kinds.kind_of(arn, engine) is None:
        known = ", ".join(f"{name} ({engine})" for engine, name in resource_kinds.engines().items())
        raise ParameterError(
            field,
            f"{cluster['DBClusterIdentifier']} is a DB cluster of engine {engine}; allowed: a cluster of an engine "
            f"the capability table holds: {known}",
        )


def _databases(run: Run, chosen: list[str]) -> set[str]:
    """The identifiers of the fleet's RDS DB instances that exist: one DescribeDBInstances (filtered by
    their identifiers, 100 at a time)."""

    def read() -> set[str]:
        names = resource_kinds.RDS.identifiers_in(chosen)
        rds, found = run.source("rds"), set[str]()
        for start in range(0, len(names), 100):
            chunk = [{"Name": "db-instance-id", "Values": names[start : start + 100]}]
            for page in rds.get_paginator("describe_db_instances").paginate(Filters=chunk):
                found.update(database["DBInstanceIdentifier"] for database in page["DBInstances"])
        return found

    return set(run._once("fleet-databases", read))


def single_hop(run: Run) -> None:
    """A resource whose type the run copies in two hops (two_hop_types: where AWS refuses one copy job for it)
    with two_hops false would be copied in one job all the same, and AWS would refuse it only at the copy,
    after the vaults and the backup were made (force_copy, for trainers, goes on to show AWS's message)."""
    if run.force_copy or run.two_hops or run.source_region == run.target_region:
        return
    chosen = [clusters.type_of(run.source_profile, run.source_region, arn) for arn in context.selection(run)]
    row = next((r for r in chosen if r and not r.copies_in_one_action(run.one_action_types, run.two_hop_types)), None)
    if row is None:
        return
    if run.account("source") != run.account("target"):
        raise ParameterError(
            "two_hops",
            f"is false while two_hop_types names {row.name} and the resource goes to another account "
            f"({run.account('target')}) and another Region ({run.target_region}); allowed: true (copy in two hops), "
            f"or the source's Region or account, or two_hop_types without {row.name} where AWS copies it in one job",
        )


def hop_vault_key(run: Run) -> None:
    """A copy in two hops passes through a vault of the source account in the target Region, under this key."""
    if run.copies_in_two_hops():
        _key(run, "hop_vault_key", "hop", customer_managed=True)


def _target_key_managed_by_customer(run: Run) -> bool:
    """Copies go under a customer managed key, unless every selected resource's type allows any (EFS: the
    capability table)."""
    rows = [clusters.type_of(run.source_profile, run.source_region, arn) for arn in context.selection(run)]
    return not all(resource_kinds.destination_key_allowed(row, customer_managed=False) for row in rows)


def _key(run: Run, name: str, side: str, customer_managed: bool) -> None:
    """The key a parameter names exists in the side's account and Region, is enabled, and is customer
    managed where the runbook needs to share it or put copies under it."""
    profile, region = run.side(side)
    kms = clients.client(profile, "kms", region)
    reference = getattr(run, name)
    owner = "source" if side == "hop" else side
    where = f"the {owner} account {run.account(side)} ({owner}_profile {profile}) in {region}"
    try:
        meta = kms.describe_key(KeyId=reference)["KeyMetadata"]
    except kms.exceptions.NotFoundException:
        raise ParameterError(
            name, f"no KMS key {reference} in {where}; allowed: a key of that account and Region"
        ) from None
    except ClientError as error:
        if error.response["Error"]["Code"] != "AccessDeniedException":
            raise
        raise ParameterError(
            name,
            f"KMS key {reference} cannot be described by {where} (AccessDeniedException: the key's policy does not "
            "let that account in); allowed: a key of that account, or one whose policy lets it use the key",
        ) from None
    if meta["KeyState"] != "Enabled":
        raise ParameterError(name, f"KMS key {reference} is {meta['KeyState']}; allowed: an enabled key")
    if customer_managed and meta["KeyManager"] != "CUSTOMER":
        raise ParameterError(
            name, f"KMS key {reference} is AWS managed; allowed: {resource_kinds.CUSTOMER_MANAGED_KEY} of {where}"
        )


def role(run: Run) -> None:
    """The role the jobs pass to AWS Backup exists in the source account."""
    if run.role() is None:
        raise ParameterError(
            "iam_role_name",
            f"no IAM role {run.iam_role_name} in the source account "
            f"{run.account('source')} (source_profile {run.source_profile}); allowed: a role there "
            "that AWS Backup can assume, e.g. service-role/AWSBackupDefaultServiceRole",
        )


def accounts(run: Run) -> None:
    """The accounts behind the profiles, as STS names them: the same account in the same Region on both sides
    copies nothing across, whatever the profiles are called."""
    if run.source_region == run.target_region and run.account("source") == run.account("target"):
        raise ParameterError(
            "target_profile",
            f"signs as account {run.account('target')}, as source_profile {run.source_profile} does, and "
            f"target_region is the source's ({run.source_region}): nothing would cross an account or a Region; "
            "allowed: a profile of another account, or another target_region",
        )


def management_account(run: Run) -> None:
    """When step 00 must turn on cross-account backup, management_profile signs as the organization's
    management account: only that account may (AWS refuses UpdateGlobalSettings from any other)."""
    if not run.management_profile or run.organization("source") is None:
        return
    backup = run.source("backup")
    try:
        if backup.describe_global_settings()["GlobalSettings"].get("isCrossAccountBackupEnabled") == "true":
            return
    except backup.exceptions.InvalidRequestException:
        return  # outside an organization: the same-organization check says so
    managing = run.management_account()
    signs_as = clients.account_id(run.management_profile, run.source_region)
    if managing and signs_as != managing:
        raise ParameterError(
            "management_profile",
            f"signs as account {signs_as}, which is not the management account {managing} of organization "
            f"{run.organization('source')}, and step 00 must turn on its cross-account backup (only the management "
            f"account may); allowed: a profile of account {managing}, or empty to have its administrators do it",
        )


def _resource_field(run: Run) -> str:
    if run.resources or run.resource_tags:
        return "resources" if run.resources else "resource_tags"
    return "resource_arn" if run.resource_arn else "resource_name"


def _aws_managed_key(run: Run, arn: str) -> str | None:
    """The AWS managed key the resource's backup would travel under (its alias), or None: a type whose backups
    take the vault's key (EFS), a copy in two hops (the hop vault's key travels), an unencrypted resource, or
    a customer managed key."""
    kind = clusters.kind_of(run.source_profile, run.source_region, arn)
    if kind is None or not kind.keeps_resource_key:
        return None
    if run.copies_in_two_hops(arn):
        return None
    key = context.resource_key(run, arn)
    if not key:
        return None
    info = keys.describe(run.source_profile, run.source_region, key)
    return None if info.manager == "CUSTOMER" else info.alias or info.arn


def resource_key(run: Run) -> None:
    """The resource's backup travels under its own key (EBS, EC2, RDS: the capability table), so an AWS
    managed key, which no other account can use, dooms the copy: refused now, before step 00 makes vaults
    and step 01 backs it up (force_copy, for trainers, goes on to show AWS's message). A fleet is refused
    only when every resource is under an AWS managed key; otherwise each such resource fails in its row."""
    if run.force_copy:
        return
    chosen = context.selection(run)
    managed = [(arn, alias) for arn in chosen for alias in [_aws_managed_key(run, arn)] if alias]
    if managed and len(managed) == len(chosen):
        arn, alias = managed[0]
        what = f"{arn} is" if len(chosen) == 1 else f"all {len(chosen)} selected resources are"
        raise ParameterError(
            _resource_field(run),
            f"{what} encrypted with the AWS managed key {alias}, which no other account can use "
            "([source-key-customer-managed]: the copy would fail); allowed: a resource under a customer managed "
            "key (runbook fix PARAMS.yaml source-key-customer-managed makes a copy of it under reencrypt_key), "
            "or force_copy: true to see AWS refuse it",
        )


def reencrypt_key_if_needed(run: Run) -> None:
    """reencrypt_key, when step 06 would use it: the resource it looks at is under an AWS managed key."""
    if _aws_managed_key(run, context.focus(run)):
        _key(run, "reencrypt_key", "source", customer_managed=True)


def restore_role(run: Run) -> None:
    """The role the restore drill restores with exists in the destination account (force_copy, for trainers,
    goes on to show AWS's refusal)."""
    if run.force_copy or run.restore_role() is not None:
        return
    raise ParameterError(
        "restore_role_name",
        f"no IAM role {run.restore_role_name} in the destination account {run.account('target')} (target_profile "
        f"{run.target_profile}); allowed: a role there that AWS Backup can assume, e.g. "
        "service-role/AWSBackupDefaultServiceRole (the console makes it at the first restore)",
    )


FACTS: dict[str, Callable[[Run], None]] = {
    "accounts": accounts,
    "management_account": management_account,
    "resource_key": resource_key,
    "reencrypt_key_if_needed": reencrypt_key_if_needed,
    "restore_role": restore_role,
    "resource": resource,
    "single_hop": single_hop,
    "hop_vault_key": hop_vault_key,
    "source_vault_key": lambda run: _key(run, "source_vault_key", "source", customer_managed=False),
    "target_vault_key": lambda run: _key(
        run, "target_vault_key", "target", customer_managed=_target_key_managed_by_customer(run)
    ),
    "reencrypt_key": lambda run: _key(run, "reencrypt_key", "source", customer_managed=True),
    "role": role,
}


def check(run: Run, facts: Iterable[str]) -> None:
    """Check these facts, read-only, in order; ParameterError at the first that does not hold."""
    for fact in facts:
        FACTS[fact](run)
        log.debug("preflight: %s holds", fact)


@contextmanager
def _reading_for(step: str) -> Iterator[None]:
    """Account the reads to the step whose facts they are (the call log and the IAM declarations)."""
    before = os.environ.get(clients.STEP_ENV)
    os.environ[clients.STEP_ENV] = step
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(clients.STEP_ENV, None)
        else:
            os.environ[clients.STEP_ENV] = before


def before_run(values: Parameters, steps: Iterable[str]) -> None:
    """Every fact the steps need, checked before the first step starts; each fact once, read for the
    first step that needs it."""
    steps = tuple(steps)
    if not steps:
        return
    run = Run(steps[0], values)
    with _reading_for(steps[0]):
        records.accounts(run)
    done: set[str] = set()
    for step in steps:
        needed = [fact for fact in FACTS_OF_STEP.get(step, ()) if fact not in done]
        with _reading_for(step):
            records.check(run, step)
            check(run, needed)
        done.update(needed)
