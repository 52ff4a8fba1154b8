"""What must hold between parameters: one copy needs another account or Region in the same partition, one
way of choosing resources, keys in their own Region, retention past cold storage. Checked after each value
on its own (params.validate)."""

from __future__ import annotations

from typing import Any

from . import arns, resource_kinds
from .errors import ParameterError, quoted
from .param_values import KEY_ARN, RESOURCE_ARN


def check(merged: dict[str, Any]) -> None:
    """What holds between parameters (the Regions, the resource selectors, keys and retention): ParameterError
    at the first that does not, naming the parameter to change."""
    if merged["source_profile"] == merged["target_profile"] and merged["source_region"] == merged["target_region"]:
        raise ParameterError(
            "target_region", "same profile and Region as the source; a copy needs another account or another Region"
        )
    source_partition = arns.partition(merged["source_region"])
    target_partition = arns.partition(merged["target_region"])
    if source_partition != target_partition:
        raise ParameterError(
            "target_region",
            f"is in partition {target_partition}; allowed: a Region of partition "
            f"{source_partition}, the source's (AWS Backup copies within a partition)",
        )
    chosen = [name for name in ("resource_arn", "resources", "resource_tags") if merged[name]]
    if len(chosen) > 1:
        raise ParameterError(
            chosen[1], f"given with {chosen[0]}; allowed: one of resource_arn, resources and resource_tags"
        )
    if not chosen and not merged["resource_name"]:
        raise ParameterError("resource_name", "empty while resource_arn is empty too; give one of them")
    both = [name for name in merged["two_hop_types"] if name in merged["one_action_types"]]
    if both:
        raise ParameterError(
            "two_hop_types",
            f"names {both[0]}, which one_action_types names too; allowed: each type in one of the two lists",
        )
    for item in merged["resources"]:
        if item.startswith("arn:") and (
            not RESOURCE_ARN.match(item) or not any(resource_kinds.is_a(item, kind) for kind in resource_kinds.FLEET)
        ):
            raise ParameterError(
                "resources", f"{quoted(item)} is not an {resource_kinds.FLEET_NOUNS} ARN; allowed: those, or Name tags"
            )
        listed = RESOURCE_ARN.match(item)
        if listed and listed["region"] != merged["source_region"]:
            raise ParameterError("resources", f"{item} is in {listed['region']}; allowed: resources in source_region")
    arn = RESOURCE_ARN.match(merged["resource_arn"] or "")
    kind = resource_kinds.kind_of(merged["resource_arn"]) if arn else None
    if "alias/aws/" in merged["target_vault_key"] and kind is not None:
        if not resource_kinds.destination_key_allowed(kind, customer_managed=False):
            raise ParameterError(
                "target_vault_key",
                f"is AWS managed while resource_arn is an {kind.type_name} resource; "
                + resource_kinds.aws_managed_destination_refused(kind),
            )
    if arn and arn["region"] != merged["source_region"]:
        raise ParameterError(
            "resource_arn", f"is in {arn['region']}; allowed: a resource in source_region {merged['source_region']}"
        )
    if arn and arn["partition"] != arns.partition(merged["source_region"]):
        raise ParameterError(
            "resource_arn",
            f"is in partition {arn['partition']}; allowed: partition "
            f"{arns.partition(merged['source_region'])} of {merged['source_region']}",
        )
    for key_name, region_name in (
        ("source_vault_key", "source_region"),
        ("target_vault_key", "target_region"),
        ("hop_vault_key", "target_region"),
        ("reencrypt_key", "source_region"),
    ):
        key = KEY_ARN.match(merged[key_name])
        if key and key["region"] != merged[region_name]:
            raise ParameterError(
                key_name, f"is in {key['region']}; allowed: a key in {region_name} {merged[region_name]}"
            )
        if key and key["partition"] != arns.partition(merged[region_name]):
            raise ParameterError(
                key_name,
                f"is in partition {key['partition']}; allowed: partition "
                f"{arns.partition(merged[region_name])} of {merged[region_name]}",
            )
    zone = merged["restore_availability_zone"]
    if zone and zone[:-1] != merged["target_region"] and not zone.startswith(f"{merged['target_region']}-"):
        raise ParameterError(
            "restore_availability_zone",
            f"got {quoted(zone)}; allowed: an Availability Zone of target_region {merged['target_region']}, "
            f"e.g. {merged['target_region']}a",
        )
    if merged["step_timeout_minutes"] is not None and merged["step_timeout_minutes"] <= merged["max_wait_minutes"]:
        raise ParameterError(
            "step_timeout_minutes",
            f"got {merged['step_timeout_minutes']}; allowed: more than "
            f"max_wait_minutes ({merged['max_wait_minutes']}), so that a wait ends on its own first",
        )
    cold = merged["move_to_cold_storage_after_days"]
    if cold is not None and merged["delete_after_days"] < cold + 90:
        raise ParameterError(
            "delete_after_days",
            f"got {merged['delete_after_days']}; allowed: at least "
            f"move_to_cold_storage_after_days + 90 = {cold + 90} (AWS refuses less)",
        )
