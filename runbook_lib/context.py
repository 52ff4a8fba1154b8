"""One run's parameters and state, and the resource it protects: what every step and check shares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import aws, params, vaults
from .changes import Change, carry_out
from .errors import StepFailed
from .runstate import RunState


@dataclass
class Run:
    """One run's parameters and state, shared by the steps."""

    step: str
    values: dict[str, Any]
    state: RunState = field(init=False)
    _accounts: dict[str, str] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.state = RunState(self.values["run_dir"])

    @classmethod
    def from_namespace(cls, step: str, namespace: Mapping[str, Any]) -> Run:
        """Build from a notebook's variables: the parameters it declares, defaults for the rest."""
        given = {name: namespace[name] for name in params.BY_NAME if name in namespace}
        return cls(step, params.validate(given))

    def __getattr__(self, name: str) -> Any:
        if name in params.BY_NAME:
            return self.values[name]
        raise AttributeError(name)

    def account(self, side: str) -> str:
        if side not in self._accounts:
            profile, region = (self.source_profile, self.source_region) if side == "source" else (
                self.target_profile, self.target_region)
            self._accounts[side] = aws.account_id(profile, region)
        return self._accounts[side]

    def source(self, service: str) -> Any:
        return aws.client(self.source_profile, service, self.source_region)

    def target(self, service: str) -> Any:
        return aws.client(self.target_profile, service, self.target_region)

    @property
    def role_arn(self) -> str:
        return f"arn:aws:iam::{self.account('source')}:role/{self.iam_role_name}"

    @property
    def target_vault_arn(self) -> str:
        return vaults.vault_arn(self.account("target"), self.target_region, self.target_vault_name)

    def carry_out(self, changes: list[Change]) -> list[Change]:
        """Apply every needed change when `apply` is true; show each either way."""
        return [carry_out(change, self.apply, self.state.changes) for change in changes]


def resource_arn(run: Run) -> str:
    """The resource to back up: resource_arn, or the one EBS volume whose Name tag is resource_name."""
    if run.resource_arn:
        return run.resource_arn
    ec2 = run.source("ec2")
    volumes = [
        v
        for page in ec2.get_paginator("describe_volumes").paginate(
            Filters=[{"Name": "tag:Name", "Values": [run.resource_name]}])
        for v in page["Volumes"]
    ]
    if len(volumes) != 1:
        raise StepFailed(run.step, f"{len(volumes)} EBS volumes are tagged Name={run.resource_name} in "
                         f"{run.source_region}", "set resource_arn to the volume's ARN")
    return f"arn:aws:ec2:{run.source_region}:{run.account('source')}:volume/{volumes[0]['VolumeId']}"


def resource_key(run: Run, arn: str) -> str | None:
    """The KMS key (as the service reports it) of the EBS volume or RDS DB instance to back up."""
    if ":volume/" in arn:
        return run.source("ec2").describe_volumes(VolumeIds=[arn.rsplit("/", 1)[1]])["Volumes"][0].get("KmsKeyId")
    if ":db:" in arn:
        databases = run.source("rds").describe_db_instances(DBInstanceIdentifier=arn.rsplit(":", 1)[1])
        return databases["DBInstances"][0].get("KmsKeyId")
    return None
