"""One run's parameters and state, and the resource it protects: what every step and check shares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core import arns, guard, params, resource_kinds
from ..core.changes import Change
from ..core.errors import StepFailed
from ..core.params import Parameters
from ..core.runstate import RunState, carry_out
from . import clients, clusters, facts, restores
from . import world as worlds
from .jobs import idempotency_token

ROLE_FIX = "create the AWS Backup default role, or set iam_role_name to a role AWS Backup can assume"
RESTORE_ROLE_FIX = (
    "create AWS Backup's default role in the destination account (the console makes it at the first restore), "
    "or set restore_role_name to a role AWS Backup can assume there"
)


class Run(Parameters):
    """One step's view of a run: its typed parameters, its state, and what it read from AWS."""

    def __init__(self, step: str, parameters: Parameters | Mapping[str, Any]):
        chosen = parameters if isinstance(parameters, Parameters) else params.validate(parameters)
        super().__init__(**chosen.as_dict())
        self.step = step
        self.state = RunState(self.run_dir)
        self._cache: dict[str, Any] = {}
        self.facts = facts.for_run()
        facts.activate(self.facts)

    @classmethod
    def from_namespace(cls, step: str, namespace: Mapping[str, Any]) -> Run:
        """Build from a notebook's variables: the parameters it declares, defaults for the rest."""
        given = {name: namespace[name] for name in params.BY_NAME if name in namespace}
        return cls(step, params.validate(given))

    def use(self, parameters: Parameters) -> None:
        """Take other parameters (a picker changed them) and forget what was read with the old ones."""
        for name, value in parameters.as_dict().items():
            setattr(self, name, value)
        self.state = RunState(self.run_dir)
        self.forget()
        facts.activate(self.facts)

    def forget(self) -> None:
        """Drop what was read from AWS (the parameters changed)."""
        self._cache.clear()
        self.facts.clear()

    def _once(self, key: str, read: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = read()
        return self._cache[key]

    @property
    def dry_run(self) -> bool:
        """apply is false: every step plans, against what earlier plans will produce, and changes nothing."""
        return not self.apply

    def side(self, side: str) -> tuple[str, str]:
        """(profile, Region) of the source or target side, or of the hop: the source account in the target
        Region, where a copy in two hops passes through."""
        if side == "hop":
            return self.source_profile, self.target_region
        return (
            (self.source_profile, self.source_region) if side == "source" else (self.target_profile, self.target_region)
        )

    def account(self, side: str) -> str:
        side = "source" if side == "hop" else side
        return self._once(f"account:{side}", lambda: clients.account_id(*self.side(side)))

    @property
    def hop_vault(self) -> str:
        """The vault of the source account in the target Region that a copy in two hops passes through."""
        return self.hop_vault_name or self.source_vault_name

    @property
    def hop_vault_arn(self) -> str:
        return arns.backup_vault(self.account("source"), self.target_region, self.hop_vault)

    def copies_in_two_hops(self, arn: str | None = None) -> bool:
        """Whether this run copies the resource `arn` (without one: any resource of its selection) in two
        hops: two_hop_types names its type (where AWS refuses one copy job across account and Region for it;
        or the capability table says two hops and one_action_types does not name it), the copy changes both,
        and two_hops is true. A DB cluster's type is its Engine (clusters.py)."""
        if not self.two_hops or self.source_region == self.target_region:
            return False
        chosen = [arn] if arn else selection(self)
        rows = [clusters.type_of(self.source_profile, self.source_region, each) for each in chosen]
        if not any(row and not row.copies_in_one_action(self.one_action_types, self.two_hop_types) for row in rows):
            return False
        return self.account("source") != self.account("target")

    def organization(self, side: str) -> str | None:
        """The ID of the side's AWS Organization, or None outside any."""
        profile, region = self.side(side)

        def read() -> str | None:
            organizations = clients.client(profile, "organizations", region)
            try:
                return organizations.describe_organization()["Organization"]["Id"]
            except organizations.exceptions.AWSOrganizationsNotInUseException:
                return None

        return self._once(f"organization:{side}", read)

    def management_account(self) -> str | None:
        """The management account of the source's organization (None outside any), as the source reads it."""

        def read() -> str | None:
            organizations = clients.client(self.source_profile, "organizations", self.source_region)
            try:
                return organizations.describe_organization()["Organization"]["MasterAccountId"]
            except organizations.exceptions.AWSOrganizationsNotInUseException:
                return None

        return self._once("management-account", read)

    def source(self, service: str) -> Any:
        return clients.client(self.source_profile, service, self.source_region)

    def target(self, service: str) -> Any:
        return clients.client(self.target_profile, service, self.target_region)

    def role(self) -> dict[str, Any] | None:
        """The backup role as IAM returns it (found by its name, with or without the path), or None."""

        def read() -> dict[str, Any] | None:
            iam = clients.client(self.source_profile, "iam", self.source_region)
            try:
                return iam.get_role(RoleName=self.iam_role_name.rsplit("/", 1)[-1])["Role"]
            except iam.exceptions.NoSuchEntityException:
                return None

        return self._once("role", read)

    def restore_role(self) -> dict[str, Any] | None:
        """The role restores run as in the destination account, as IAM returns it, or None."""
        return self._once(
            "restore-role", lambda: restores.find_role(self.target_profile, self.target_region, self.restore_role_name)
        )

    def restore_role_policies(self) -> dict[str, dict[str, Any]]:
        """The restore role's identity policies by name, read once per Run."""
        return self._once(
            "restore-role-policies",
            lambda: restores.role_policies(self.target_profile, self.target_region, self.restore_role_name),
        )

    def recovery_point(self, arn: str) -> dict[str, Any]:
        """A source recovery point as AWS Backup describes it, read once per Run once it is COMPLETED (each
        check run of a step shares it). ResourceNotFoundException when the vault does not hold it."""
        key = f"recovery-point:{arn}"
        if key in self._cache:
            return dict(self._cache[key])
        point = self.source("backup").describe_recovery_point(
            BackupVaultName=self.source_vault_name, RecoveryPointArn=arn
        )
        if point.get("Status") == "COMPLETED":  # one still being made is read again next time
            self._cache[key] = point
        return dict(point)

    @property
    def role_arn(self) -> str:
        """The ARN the jobs use: the one IAM returns, whatever path the parameter gave."""
        role = self.role()
        if role is None:
            raise StepFailed(
                self.step, f"[role-exists] IAM role {self.iam_role_name} does not exist in the source account", ROLE_FIX
            )
        return role["Arn"]

    @property
    def target_vault_arn(self) -> str:
        return arns.backup_vault(self.account("target"), self.target_region, self.target_vault_name)

    def backup_request(self, arn: str, attempt: int) -> dict[str, Any]:
        """StartBackupJob's arguments for one resource: the same token for the same run, resource and
        attempt, so that a retried start returns the same job."""
        token = idempotency_token(str(self.state.directory), "backup", arn, str(attempt))
        return {
            "BackupVaultName": self.source_vault_name,
            "ResourceArn": arn,
            "IamRoleArn": self.role_arn,
            "IdempotencyToken": token,
            "Lifecycle": self.lifecycle(),
            "RecoveryPointTags": dict(self.recovery_point_tags),
        }

    def copy_request(
        self, recovery_point_arn: str | None, attempt: int, role_arn: str, hop: str = "copy"
    ) -> dict[str, Any]:
        """StartCopyJob's arguments for one recovery point (token as for backups): to the target vault from
        the source vault; for a copy in two hops, `hop` "first" goes to the hop vault and "second" from it."""
        token = idempotency_token(str(self.state.directory), hop, str(recovery_point_arn), str(attempt))
        return {
            "RecoveryPointArn": recovery_point_arn,
            "SourceBackupVaultName": self.hop_vault if hop == "second" else self.source_vault_name,
            "DestinationBackupVaultArn": self.hop_vault_arn if hop == "first" else self.target_vault_arn,
            "IamRoleArn": role_arn,
            "IdempotencyToken": token,
            "Lifecycle": self.lifecycle(),
        }

    def carry_out(self, changes: list[Change]) -> list[Change]:
        """Apply every needed change when `apply` is true (one that asks for a confirmation only with
        take_back_shared); otherwise keep them as planned. Show each. On accounts that are not the sandbox,
        nothing is made unless the person confirmed them (the guard)."""
        needed = [change for change in changes if change.needed]
        if self.apply and needed:
            found = self.world(worlds.sides_of_changes(self, needed))
            if not found.confirmed_here():
                raise guard.NotConfirmed(
                    found,
                    f"step {self.step} would make {len(needed)} change(s)",
                    "run it with `runbook run` (which shows the accounts and asks), or with apply = False press "
                    "each change's Apply button (it names the accounts)",
                )
        return [carry_out(change, self.apply, self.state, confirmed=self.take_back_shared) for change in changes]

    def world(self, sides: list[tuple[str, str, str]] | None = None) -> guard.World:
        """Who and where the run (or these sides of it) talks to: the sandbox, or real accounts."""
        chosen = sides if sides is not None else worlds.sides_of(self, (self.step,))
        key = "world:" + ";".join(sorted(":".join(side) for side in chosen))
        return self._once(key, lambda: worlds.identify(chosen, with_alias=False))


def volumes(run: Run, name: str, value: str) -> list[dict[str, Any]]:
    """The source account's EBS volumes in the source Region that match one filter (tag:Name,
    volume-id), read once per run: the resource lookup, the preflight and the checks share the read."""

    return _filtered(run, resource_kinds.EBS, name, value)


def _filtered(run: Run, kind: resource_kinds.ResourceKind, name: str, value: str) -> list[dict[str, Any]]:
    """A kind's resources that match one filter of its lookup (BY_FILTER), read once per run; each is kept
    by its identifier too, so that reading it by ARN later costs nothing."""
    lookup = kind.lookup
    assert lookup is not None
    prefix = lookup.items.lower()

    def read() -> list[dict[str, Any]]:
        client = run.source(lookup.service)
        pages = client.get_paginator(lookup.operation).paginate(Filters=[{"Name": name, "Values": [value]}])
        found = [item for page in pages for item in page[lookup.items]]
        for item in found:
            run._cache.setdefault(f"{prefix}:{lookup.id_parameter}={item[lookup.id_field]}", [item])
        return found

    return list(run._once(f"{prefix}:{name}={value}", read))


# EC2 takes up to 200 values in one filter.
FILTER_VALUES = 200


def _described_volumes(run: Run, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ec2 = run.source("ec2")
    found = [v for page in ec2.get_paginator("describe_volumes").paginate(Filters=filters) for v in page["Volumes"]]
    for volume in found:
        run._cache.setdefault(f"volumes:volume-id={volume['VolumeId']}", [volume])
    return found


def listed_volumes(run: Run) -> list[dict[str, Any]]:
    """Every volume this run has read so far (by tag, Name or ID)."""
    return [found[0] for key, found in run._cache.items() if key.startswith("volumes:volume-id=") and found]


def volumes_by_id(run: Run, volume_ids: list[str]) -> list[dict[str, Any]]:
    """The volumes of these IDs that exist, 200 IDs a call."""
    found = []
    for start in range(0, len(volume_ids), FILTER_VALUES):
        chunk = volume_ids[start : start + FILTER_VALUES]
        found += _described_volumes(run, [{"Name": "volume-id", "Values": chunk}])
    return found


def _literal(value: str) -> str:
    """A filter value EC2 matches as written: its * and ? are wildcards unless escaped."""
    return value.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")


def _name_tag(volume: dict[str, Any]) -> str:
    return next((t["Value"] for t in volume.get("Tags", []) if t["Key"] == "Name"), "")


def selection(run: Run) -> list[str]:
    """The resources the run works on, as ARNs: resource_arn, or resource_name's one volume, or `resources`
    (ARNs as given, Name tags looked up together), or every EBS volume carrying all of `resource_tags`.
    The volumes are read in one paginated DescribeVolumes (per 200 names), however many they are."""
    if not run.resources and not run.resource_tags:
        return [resource_arn(run)]

    def read() -> list[str]:
        account, region = run.account("source"), run.source_region
        if run.resource_tags:
            filters = [{"Name": f"tag:{key}", "Values": [_literal(value)]} for key, value in run.resource_tags.items()]
            found = sorted(_described_volumes(run, filters), key=lambda v: (_name_tag(v), v["VolumeId"]))
            if not found:
                tags = ", ".join(f"{k}={v}" for k, v in run.resource_tags.items())
                raise StepFailed(
                    run.step,
                    f"no EBS volume in {region} carries the tags {tags}",
                    "check resource_tags and source_region",
                )
            return [arns.volume(account, region, volume["VolumeId"]) for volume in found]
        names = [item for item in run.resources if not item.startswith("arn:")]
        by_name: dict[str, list[dict[str, Any]]] = {}
        for start in range(0, len(names), FILTER_VALUES):
            chunk = [_literal(name) for name in names[start : start + FILTER_VALUES]]
            for volume in _described_volumes(run, [{"Name": "tag:Name", "Values": chunk}]):
                by_name.setdefault(_name_tag(volume), []).append(volume)
        chosen = []
        for item in run.resources:
            if item.startswith("arn:"):
                chosen.append(item)
                continue
            matching = by_name.get(item, [])
            if len(matching) != 1:
                raise StepFailed(
                    run.step,
                    f"resources: {len(matching)} EBS volumes are tagged Name={item} in {region}",
                    "list that volume by its ARN instead",
                )
            chosen.append(arns.volume(account, region, matching[0]["VolumeId"]))
        twice = next((arn for arn in chosen if chosen.count(arn) > 1), None)
        if twice:
            raise StepFailed(
                run.step, f"resources names volume {twice} twice (by its ARN and its Name tag)", "list it once"
            )
        listed = resource_kinds.EBS.identifiers_in(run.resources)
        volumes_by_id(run, [v for v in listed if f"volumes:volume-id={v}" not in run._cache])  # their keys
        return chosen

    return run._once("selection", read)


FLEET_ROWS = "fleet"  # where a fleet step keeps its row per resource in the run state


def fleet_row(run: Run, step: str, arn: str) -> dict[str, Any]:
    return dict(run.state.get(step, FLEET_ROWS, {}).get(arn, {}))


def focus(run: Run) -> str:
    """The one resource troubleshooting looks at: the first of the selection whose row failed, else the first
    selected (a run of one resource: that resource)."""
    state = run.state.load()
    for recorded in state.values():
        if isinstance(recorded, dict):
            for arn, row in recorded.get(FLEET_ROWS, {}).items():
                if row.get("outcome") == "FAILED":
                    return str(arn)
    return selection(run)[0]


def resource_arn(run: Run) -> str:
    """The resource of a run that selects one: resource_arn, or the one resource named resource_name (see
    `named`), or the one resource `resources` or resource_tags select. A run of many has no one resource."""
    if run.resources or run.resource_tags:
        chosen = selection(run)
        if len(chosen) != 1:
            raise StepFailed(
                run.step,
                f"this cell works on one resource, and the run selects {len(chosen)} (resources or resource_tags)",
                "use the step's cells on the selection, or set resource_arn or resource_name",
            )
        return chosen[0]
    if run.resource_arn:
        return run.resource_arn
    found = named(run)
    if len(found) != 1:
        raise StepFailed(
            run.step,
            f"{len(found)} EBS volumes are tagged Name={run.resource_name} in {run.source_region}"
            if found
            else f"no {resource_kinds.NAMED_NOUNS} is named {run.resource_name} in {run.source_region}",
            "set resource_arn to the resource's ARN",
        )
    return found[0]


def named(run: Run) -> list[str]:
    """The ARNs of the resources resource_name names, looked for kind by kind (resource_kinds.NAMED): the EBS
    volumes whose Name tag it is; else the RDS DB instance of that identifier; else the DB cluster (Aurora,
    Neptune, DocumentDB) of that identifier; else the EFS file systems whose Name it is. Volumes are looked for
    first, so the walkthrough's lookup costs one read; the others only when no volume carries the name."""
    name = run.resource_name

    def read() -> list[str]:
        for kind in resource_kinds.NAMED:
            found = _by_name(run, kind, name)
            if found:
                return found
        return []

    return list(run._once(f"named:{name}", read))


def _by_name(run: Run, kind: resource_kinds.ResourceKind, name: str) -> list[str]:
    """The ARNs of the resources of a kind that resource_name names, as its lookup finds them."""
    lookup = kind.lookup
    if lookup is None or not kind.takes_name(name):  # e.g. RDS refuses to look up a name it cannot hold
        return []
    if lookup.by == resource_kinds.BY_FILTER:
        found = _filtered(run, kind, lookup.name_parameter, name)
    elif lookup.by == resource_kinds.BY_IDENTIFIER:
        one = _by_identifier(run, kind, name)
        found = [one] if one is not None else []
    else:
        found = [item for item in _listed(run, kind) if item.get(lookup.name_parameter) == name]
    if not found:
        return []
    account = "" if lookup.arn_field else run.account("source")  # an ARN the answer holds needs no account
    named = [kind.arn_of(item, account, run.source_region) for item in found]
    for arn, item in zip(named, found, strict=True):
        run._cache.setdefault(f"described:{arn}", item)  # what the preflight reads of it next costs nothing
    return named


def _by_identifier(run: Run, kind: resource_kinds.ResourceKind, identifier: str) -> dict[str, Any] | None:
    """The resource of a kind its Describe call finds by this identifier (BY_IDENTIFIER), or None."""
    lookup = kind.lookup
    assert lookup is not None
    if not kind.takes_name(identifier):
        return None
    client = run.source(lookup.service)
    try:
        found = getattr(client, lookup.operation)(**{lookup.id_parameter: identifier})[lookup.items]
    except getattr(client.exceptions, lookup.not_found):
        return None
    if isinstance(found, Mapping):  # an answer that holds the one resource itself (DynamoDB's Table)
        return dict(found)
    return dict(found[0]) if found else None


def _listed(run: Run, kind: resource_kinds.ResourceKind) -> list[dict[str, Any]]:
    """Every resource of a kind in the source account and Region (BY_LISTING), read once per run (paginated)."""
    lookup = kind.lookup
    assert lookup is not None

    def read() -> list[dict[str, Any]]:
        pages = run.source(lookup.service).get_paginator(lookup.operation).paginate()
        return [item for page in pages for item in page[lookup.items]]

    return list(run._once(f"listed:{lookup.action}", read))


def file_systems(run: Run) -> list[dict[str, Any]]:
    """The source account's EFS file systems in the source Region, read once per run (paginated)."""
    return _listed(run, resource_kinds.EFS)


def described(run: Run, arn: str) -> dict[str, Any] | None:
    """The resource an ARN names as its kind's lookup describes it (resource_kinds.Lookup), or None when there
    is none, or its kind is one the runbook does not look up."""
    kind = resource_kinds.looked_up_as(arn)
    lookup = kind.lookup if kind else None
    if kind is None or lookup is None:
        return None
    if f"described:{arn}" in run._cache:
        return dict(run._cache[f"described:{arn}"])
    if lookup.by == resource_kinds.BY_FILTER:
        found = _filtered(run, kind, lookup.id_parameter, kind.identifier(arn))
        return found[0] if found else None
    if lookup.by == resource_kinds.BY_IDENTIFIER:
        return _by_identifier(run, kind, kind.identifier(arn))
    field = lookup.arn_field or lookup.id_field
    wanted = arn if lookup.arn_field else kind.identifier(arn)
    return next((item for item in _listed(run, kind) if item.get(field) == wanted), None)


def resource_key(run: Run, arn: str) -> str | None:
    """The KMS key (as the service reports it) of the resource to back up, where its kind's description holds it."""
    kind = resource_kinds.looked_up_as(arn)
    found = described(run, arn)
    return kind.key_of(found) if kind and found else None
