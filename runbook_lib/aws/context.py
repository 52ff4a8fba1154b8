"""One run's parameters and state, and the resource it protects: what every step and check shares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core import arns, params
from ..core.changes import Change
from ..core.errors import StepFailed
from ..core.params import Parameters
from ..core.runstate import RunState, carry_out
from . import clients, facts

ROLE_FIX = "create the AWS Backup default role, or set iam_role_name to a role AWS Backup can assume"


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
        """(profile, Region) of the source or target side."""
        return (
            (self.source_profile, self.source_region) if side == "source" else (self.target_profile, self.target_region)
        )

    def account(self, side: str) -> str:
        return self._once(f"account:{side}", lambda: clients.account_id(*self.side(side)))

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

    def recovery_point(self, arn: str) -> dict[str, Any]:
        """A source recovery point as AWS Backup describes it, read once per Run (each check run of a
        step shares it). ResourceNotFoundException when the vault does not hold it."""
        return self._once(
            f"recovery-point:{arn}",
            lambda: self.source("backup").describe_recovery_point(
                BackupVaultName=self.source_vault_name, RecoveryPointArn=arn
            ),
        )

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

    def carry_out(self, changes: list[Change]) -> list[Change]:
        """Apply every needed change when `apply` is true; otherwise keep them as planned. Show each."""
        return [carry_out(change, self.apply, self.state) for change in changes]


def volumes(run: Run, name: str, value: str) -> list[dict[str, Any]]:
    """The source account's EBS volumes in the source Region that match one filter (tag:Name,
    volume-id), read once per run: the resource lookup, the preflight and the checks share the read."""

    def read() -> list[dict[str, Any]]:
        ec2 = run.source("ec2")
        pages = ec2.get_paginator("describe_volumes").paginate(Filters=[{"Name": name, "Values": [value]}])
        found = [volume for page in pages for volume in page["Volumes"]]
        for volume in found:
            run._cache.setdefault(f"volumes:volume-id={volume['VolumeId']}", [volume])
        return found

    return run._once(f"volumes:{name}={value}", read)


def resource_arn(run: Run) -> str:
    """The resource to back up: resource_arn, or the one EBS volume whose Name tag is resource_name."""
    if run.resource_arn:
        return run.resource_arn
    found = volumes(run, "tag:Name", run.resource_name)
    if len(found) != 1:
        raise StepFailed(
            run.step,
            f"{len(found)} EBS volumes are tagged Name={run.resource_name} in {run.source_region}",
            "set resource_arn to the volume's ARN",
        )
    return arns.volume(run.account("source"), run.source_region, found[0]["VolumeId"])


def resource_key(run: Run, arn: str) -> str | None:
    """The KMS key (as the service reports it) of the EBS volume or RDS DB instance to back up."""
    found = arns.parts(arn)
    if found["service"] == "ec2" and found["resource"].startswith("volume/"):
        matching = volumes(run, "volume-id", found["resource"].split("/", 1)[1])
        return matching[0].get("KmsKeyId") if matching else None
    if found["service"] == "rds" and found["resource"].startswith("db:"):
        databases = run.source("rds").describe_db_instances(DBInstanceIdentifier=found["resource"].split(":", 1)[1])
        return databases["DBInstances"][0].get("KmsKeyId")
    return None
