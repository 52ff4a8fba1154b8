"""What the checks read: each fact once per check run, as AWS is or, in a dry run, as the run's plans
will leave it (checks.py says what the checks make of it)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from ..aws import clusters, keys, vaults
from ..aws.context import Run, fleet_row, focus, resource_key
from ..core import resource_kinds
from ..core.resource_types import ResourceType
from ..core.steps import CREATE_BACKUP


def planned_note(effect: dict[str, Any] | None) -> str:
    return f" (as planned in {effect['step']}, not made yet)" if effect else ""


class Facts:
    """What the checks read, each read once per check run; in a dry run, as earlier plans leave it."""

    def __init__(
        self,
        run: Run,
        as_planned: bool = False,
        resource: str | None = None,
        recovery_point: dict[str, Any] | None = None,
    ):
        """`resource` and `recovery_point` (as a vault listing gives it) name one resource of a fleet,
        whose checks share the run's reads; by default, the run's one resource and its recovery point."""
        self.run = run
        self.as_planned = as_planned and run.dry_run
        if resource is not None:
            self.__dict__["resource"] = resource
            self.__dict__["recovery_point"] = recovery_point

    def planned(self, kind: str, **match: Any) -> dict[str, Any] | None:
        return self.run.state.planned_effect(kind, **match) if self.as_planned else None

    @cached_property
    def target_vault(self) -> dict[str, Any] | None:
        """The target vault, or the one step 00 plans (with its planning step)."""
        run = self.run
        return vaults.find(run.target_profile, run.target_region, run.target_vault_name) or self.planned(
            "vault", profile=run.target_profile, region=run.target_region, name=run.target_vault_name
        )

    @cached_property
    def source_vault(self) -> dict[str, Any] | None:
        run = self.run
        return vaults.find(run.source_profile, run.source_region, run.source_vault_name) or self.planned(
            "vault", profile=run.source_profile, region=run.source_region, name=run.source_vault_name
        )

    @cached_property
    def target_vault_policy(self) -> tuple[str | None, dict[str, Any] | None]:
        """(policy text, the plan it comes from) of the target vault."""
        run = self.run
        plan = self.planned(
            "vault-policy", profile=run.target_profile, region=run.target_region, name=run.target_vault_name
        )
        if plan:
            return plan["policy"], plan
        if self.target_vault is None or self.target_vault.get("step"):
            return None, None
        return vaults.current_policy(run.target_profile, run.target_region, run.target_vault_name), None

    @cached_property
    def resource(self) -> str:
        return focus(self.run)

    @cached_property
    def resource_type(self) -> ResourceType | None:
        """The resource's row of the capability table (a DB cluster's by its Engine), or None."""
        return clusters.type_of(self.run.source_profile, self.run.source_region, self.resource)

    @cached_property
    def recovery_point(self) -> dict[str, Any] | None:
        """This run's recovery point (while it exists), or the newest of the resource in the source vault
        (completed first), or in a dry run the one the backup planned in step 01 will make."""
        run = self.run
        backup = run.source("backup")
        if self.source_vault is not None and not self.source_vault.get("step"):
            recorded = fleet_row(run, CREATE_BACKUP, self.resource).get("recovery_point_arn") or run.state.get(
                CREATE_BACKUP, "recovery_point_arn"
            )

            def described(arn: str | None) -> dict[str, Any] | None:
                """The point, while it exists and is of this resource (a run folder may hold another's)."""
                try:
                    point = run.recovery_point(arn) if arn else None
                except backup.exceptions.ResourceNotFoundException:
                    return None
                return point if point and point.get("ResourceArn") in (None, self.resource) else None

            found = described(recorded)  # None once deleted: then the resource's newest, AWS as it is now
            if found is None:
                found = described(
                    vaults.newest_recovery_point(
                        run.source_profile, run.source_region, run.source_vault_name, self.resource, any_status=True
                    )
                )
            if found is not None:
                return found
        plan = self.planned("backup", resource_arn=self.resource)
        if plan:
            return {
                "RecoveryPointArn": None,
                "Status": "PLANNED",
                "EncryptionKeyArn": plan.get("key_arn"),
                "step": plan["step"],
            }
        return None

    @cached_property
    def key_side(self) -> str:
        """Where the key the destination account must use lives: the source's, or for a copy in two
        hops the hop vault's (the source account in the target Region)."""
        return "hop" if self.run.copies_in_two_hops(self.resource) else "source"

    @cached_property
    def hop_vault(self) -> dict[str, Any] | None:
        """The hop vault of a copy in two hops, or the one step 00 plans."""
        profile, region = self.run.side("hop")
        name = self.run.hop_vault
        return vaults.find(profile, region, name) or self.planned("vault", profile=profile, region=region, name=name)

    @cached_property
    def source_key_arn(self) -> str | None:
        """The key that encrypts (or will encrypt) what the destination account copies: the recovery
        point's, else the resource's; for a copy in two hops, the hop vault's."""
        if self.key_side == "hop":
            if self.hop_vault is not None:
                return str(self.hop_vault["EncryptionKeyArn"])
            profile, region = self.run.side("hop")
            kms = self.run.source("kms")
            try:
                return keys.describe(profile, region, self.run.hop_vault_key).arn
            except kms.exceptions.NotFoundException:
                return None
        if self.recovery_point is not None and self.recovery_point.get("EncryptionKeyArn"):
            return self.recovery_point["EncryptionKeyArn"]
        row = self.resource_type
        if resource_kinds.takes_vault_key(row):  # fully managed: the vault's key
            return self.source_vault.get("EncryptionKeyArn") if self.source_vault else None
        return resource_key(self.run, self.resource)

    @cached_property
    def source_key(self) -> keys.KeyInfo | None:
        if not self.source_key_arn:
            return None
        return keys.describe(*self.run.side(self.key_side), self.source_key_arn)

    @cached_property
    def source_key_policy(self) -> tuple[str, dict[str, Any] | None]:
        """(policy text, the plan it comes from) of the source key."""
        key = self.source_key
        assert key is not None, "source_key_policy is read only for a key that exists"
        plan = self.planned("key-policy", key_arn=key.arn)
        if plan:
            return plan["policy"], plan
        if key.policy is not None:
            return key.policy, None
        return keys.current_policy(*self.run.side(self.key_side), key.arn), None

    @cached_property
    def restore_key(self) -> keys.KeyInfo | None:
        """The key a restore of the copy makes its volume under: the target vault's, or before the vault
        exists the key step 00 will make it with (target_vault_key); None when neither is found."""
        run = self.run
        vault = self.target_vault
        key_ref = vault["EncryptionKeyArn"] if vault is not None and vault.get("EncryptionKeyArn") else None
        kms = run.target("kms")
        try:
            return keys.describe(run.target_profile, run.target_region, key_ref or run.target_vault_key)
        except kms.exceptions.NotFoundException:
            return None
