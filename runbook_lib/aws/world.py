"""Who and where a run talks to: each profile's account, alias, Region, partition and endpoint, and
whether the answers come from the local sandbox (by the header only it sends, core/guard.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from botocore.exceptions import ClientError

from ..core import guard, permissions
from ..core.changes import Change
from ..core.params import Parameters
from . import clients

log = logging.getLogger(__name__)

SOURCE, DESTINATION, MANAGEMENT = "source", "destination", "management"
NOT_READABLE = "alias not readable"
CHANGED_SERVICES = ("backup", "kms", "ec2", "iam", "organizations", "events", "sns")


ROLE_OF_ACCOUNT = {permissions.SOURCE: SOURCE, permissions.TARGET: DESTINATION, permissions.MANAGEMENT: MANAGEMENT}


def roles_of(steps: Iterable[str]) -> set[str]:
    """The accounts these steps use (what they declare they call in each, permissions.py); every account for
    a step that declares none (a command of its own: fix, permissions)."""
    found = {ROLE_OF_ACCOUNT[account] for step in steps for account in permissions.STEP_PERMISSIONS.get(step, {})}
    return found or set(ROLE_OF_ACCOUNT.values())


def sides_of(values: Parameters, steps: Iterable[str] = ()) -> list[tuple[str, str, str]]:
    """(role, profile, Region) of each account the run (or these steps of it) uses, those with a profile; the
    management account answers in the source Region, where the runbook reads it."""
    chosen = tuple(steps)
    roles = roles_of(chosen) if chosen else set(ROLE_OF_ACCOUNT.values())
    every = [
        (SOURCE, values.source_profile, values.source_region),
        (DESTINATION, values.target_profile, values.target_region),
        (MANAGEMENT, values.management_profile, values.source_region),
    ]
    return [(role, profile, region) for role, profile, region in every if profile and role in roles]


def sides_of_changes(values: Parameters, changes: Iterable[Change]) -> list[tuple[str, str, str]]:
    """(role, profile, Region) of the accounts these changes are made in."""
    roles = {values.management_profile: MANAGEMENT, values.target_profile: DESTINATION, values.source_profile: SOURCE}
    return [(roles.get(change.profile, change.profile), change.profile, change.region) for change in changes]


def _alias(profile: str, region: str) -> str:
    """The account's alias (an account has at most one), '' for none; reading it needs
    iam:ListAccountAliases, and a refusal only means it is not shown."""
    iam = clients.client(profile, "iam", region)
    try:
        aliases = iam.list_account_aliases()["AccountAliases"]
    except ClientError as error:
        log.info("the alias of profile %s is not shown: %s", profile, error.response["Error"].get("Code"))
        return NOT_READABLE
    return aliases[0] if aliases else ""


def side(role: str, profile: str, region: str, with_alias: bool = True) -> guard.Side:
    """One profile as AWS answers it. The sandbox is told by its answer's header, never by account number."""
    sts = clients.client(profile, "sts", region)
    answer = sts.get_caller_identity()
    headers = {name.lower() for name in answer.get("ResponseMetadata", {}).get("HTTPHeaders", {})}
    # Every service the runbook changes must answer where STS did: a profile that sends one service elsewhere
    # (a per-service endpoint, or none: AWS's own) is not all sandbox.
    endpoints = {clients.configured_endpoint(profile, service) for service in ("sts", *CHANGED_SERVICES)}
    sandbox = guard.SANDBOX_HEADER in headers and len(endpoints) == 1 and None not in endpoints
    return guard.Side(
        role=role,
        profile=profile,
        account=answer["Account"],
        alias=_alias(profile, region) if with_alias and not sandbox else "",
        region=region,
        partition=answer["Arn"].split(":")[1],
        endpoint=clients.client(profile, "backup", region).meta.endpoint_url,
        sandbox=sandbox,
    )


def identify(sides: Iterable[tuple[str, str, str]], with_alias: bool = True) -> guard.World:
    """The world of these (role, profile, Region) sides, each profile and Region read once."""
    found: list[guard.Side] = []
    for role, profile, region in sides:
        if any(s.profile == profile and s.region == region and s.role == role for s in found):
            continue
        found.append(side(role, profile, region, with_alias))
    return guard.World(tuple(found))
