"""The parameters of every step, in one place: names, defaults, meaning and what is allowed.

Parameter files are flat YAML mappings of these names, so that plain `papermill -f FILE` works on
any one notebook. `validate` checks a whole mapping without calling AWS (profiles are looked up in
the AWS config files, Regions in botocore's endpoint data) and stops at the first bad value with
one line naming the field and what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
import yaml

from . import arns
from .errors import ParameterError

VAULT_NAME = re.compile(r"^[A-Za-z0-9_-]{2,50}$")
ROLE_NAME = re.compile(r"^/?([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$")
ALIAS = re.compile(r"^alias/[A-Za-z0-9/_-]{1,250}$")
KEY_ID = re.compile(r"^(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
KEY_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"(key/[A-Za-z0-9-]+|alias/[A-Za-z0-9/_-]+)$"
)
RESOURCE_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):(?P<service>ec2|rds):(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"(volume/vol-[0-9a-f]{8,17}|db:[A-Za-z][A-Za-z0-9-]{0,62})$"
)
KEY_FORMS = "alias/NAME, a key ID, or a key or alias ARN"


@dataclass(frozen=True)
class Parameter:
    name: str
    default: Any
    meaning: str
    allowed: str
    check: Callable[[Any], bool]


def _is_int(low: int, high: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _is_tags(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and len(value) <= 50
        and all(isinstance(k, str) and isinstance(v, str) and 0 < len(k) <= 128 and len(v) <= 256
                and not k.lower().startswith("aws:") for k, v in value.items())
    )


def _is_key(value: Any) -> bool:
    return isinstance(value, str) and bool(ALIAS.match(value) or KEY_ID.match(value) or KEY_ARN.match(value))


def _is_minutes(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 10080


def _text(pattern: re.Pattern[str]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and bool(pattern.match(v))


SCHEMA: tuple[Parameter, ...] = (
    Parameter("source_profile", "sandbox-source", "AWS profile of the source account (owns the resource)",
              "a profile in your AWS config", lambda v: isinstance(v, str) and bool(v)),
    Parameter("source_region", "us-east-1", "Region of the resource and the source vault",
              "an AWS Region name, e.g. us-east-1", lambda v: isinstance(v, str)),
    Parameter("target_profile", "sandbox-target", "AWS profile of the destination account",
              "a profile in your AWS config", lambda v: isinstance(v, str) and bool(v)),
    Parameter("target_region", "eu-west-1", "Region of the destination vault",
              "an AWS Region name, e.g. eu-west-1", lambda v: isinstance(v, str)),
    Parameter("management_profile", "sandbox-management",
              "AWS profile of the Organization's management account (enables cross-account backup); "
              "empty when you cannot use it", "a profile in your AWS config, or empty",
              lambda v: isinstance(v, str)),
    Parameter("resource_arn", "", "ARN of the EBS volume (or RDS DB instance) to back up; empty to find it "
              "by resource_name", "empty, or an EBS volume or RDS DB instance ARN in source_region",
              lambda v: v == "" or (isinstance(v, str) and bool(RESOURCE_ARN.match(v)))),
    Parameter("resource_name", "walkthrough-volume", "Name tag of the EBS volume, used when resource_arn is empty",
              "a non-empty string", lambda v: isinstance(v, str)),
    Parameter("source_vault_name", "SourceVault", "backup vault in the source account", "2-50 letters, digits, - or _",
              _text(VAULT_NAME)),
    Parameter("source_vault_key", "alias/cmkSourceVault", "KMS key that encrypts the source vault",
              KEY_FORMS, _is_key),
    Parameter("target_vault_name", "CABTargetVault", "backup vault in the destination account",
              "2-50 letters, digits, - or _", _text(VAULT_NAME)),
    Parameter("target_vault_key", "alias/cmkTarget", "customer managed KMS key of the destination vault",
              f"{KEY_FORMS} (not an alias/aws/* key)",
              lambda v: _is_key(v) and "alias/aws/" not in v),
    Parameter("iam_role_name", "service-role/AWSBackupDefaultServiceRole",
              "IAM role AWS Backup uses in the source account; the jobs use the ARN IAM returns for it",
              "an IAM role name, with or without its path", _text(ROLE_NAME)),
    Parameter("delete_after_days", 35, "retention of the backup and of its copy, in days", "a whole number 1-36500",
              _is_int(1, 36500)),
    Parameter("move_to_cold_storage_after_days", None, "days before moving to cold storage; empty for never "
              "(cold recovery points cannot be copied)", "empty, or a whole number 1-36500",
              lambda v: v is None or _is_int(1, 36500)(v)),
    Parameter("recovery_point_tags", {"Project": "cross-account-backup"}, "tags on the recovery point",
              "a mapping of up to 50 text tags, keys not starting with aws:", _is_tags),
    Parameter("poll_seconds", 5, "seconds between two looks at a running job", "a whole number 1-300",
              _is_int(1, 300)),
    Parameter("max_wait_minutes", 60, "how long a step waits for its job before it stops; the job goes on in "
              "AWS and the next run with the same run folder waits for it", "a number of minutes above 0, "
              "at most 10080", _is_minutes),
    Parameter("force_copy", False, "for trainers: start the copy even when a blocking check says it will fail",
              "true or false", lambda v: isinstance(v, bool)),
    Parameter("strict_checks", False, "a check that cannot decide (`unknown`) blocks like a failed one",
              "true or false", lambda v: isinstance(v, bool)),
    Parameter("copy_job_id", "", "troubleshooting: the copy job to diagnose; empty for every failed job",
              "empty, or a copy job ID", lambda v: isinstance(v, str) and len(v) <= 100),
    Parameter("reencrypt_key", "alias/cmkSource", "troubleshooting: customer managed key that re-encrypts a "
              "snapshot under an AWS managed key", KEY_FORMS, _is_key),
    Parameter("revert_sharing", False, "cleanup: also take out what this run added to the key policy, the vault "
              "policy and the organization's cross-account backup setting (read from its change log)",
              "true or false", lambda v: isinstance(v, bool)),
    Parameter("apply", False, "make the changes; false is a dry run: every step plans (against what earlier "
              "plans will produce), nothing changes in AWS, and JupyterLab shows an Apply button per change",
              "true or false",
              lambda v: isinstance(v, bool)),
    Parameter("run_dir", "", "folder of this run's state and change log; empty keeps them in runs/adhoc",
              "a folder path, or empty", lambda v: isinstance(v, str)),
)

BY_NAME = {p.name: p for p in SCHEMA}
DEFAULTS = {p.name: p.default for p in SCHEMA}


def _profiles() -> set[str]:
    return set(botocore.session.Session().available_profiles)


def validate(values: Mapping[str, Any], check_profiles: bool = True) -> dict[str, Any]:
    """Defaults filled in and every value checked; ParameterError at the first bad one.

    Profiles are looked up only where `values` names them: a default is not the caller's choice.
    """
    unknown = sorted(set(values) - set(BY_NAME))
    if unknown:
        raise ParameterError(unknown[0], f"unknown parameter; allowed: {', '.join(BY_NAME)}")
    merged = {**DEFAULTS, **values}
    for parameter in SCHEMA:
        if not parameter.check(merged[parameter.name]):
            raise ParameterError(parameter.name, f"got {merged[parameter.name]!r}; allowed: {parameter.allowed}")
    regions = arns.regions()
    for name in ("source_region", "target_region"):
        if merged[name] not in regions:
            raise ParameterError(name, f"got {merged[name]!r}; allowed: an AWS Region name, e.g. us-east-1")
    if check_profiles:
        profiles = _profiles()
        for name in ("source_profile", "target_profile", "management_profile"):
            if values.get(name) and values[name] not in profiles:
                known = ", ".join(sorted(profiles)) or "none: is AWS_CONFIG_FILE set?"
                raise ParameterError(name, f"no profile {values[name]!r} in your AWS config; profiles: {known}")
    _check_relations(merged)
    return merged


def _check_relations(merged: dict[str, Any]) -> None:
    if merged["source_profile"] == merged["target_profile"] and merged["source_region"] == merged["target_region"]:
        raise ParameterError("target_region", "same profile and Region as the source; a copy needs another "
                             "account or another Region")
    source_partition = arns.partition(merged["source_region"])
    target_partition = arns.partition(merged["target_region"])
    if source_partition != target_partition:
        raise ParameterError("target_region", f"is in partition {target_partition}; allowed: a Region of partition "
                             f"{source_partition}, the source's (AWS Backup copies within a partition)")
    if not merged["resource_arn"] and not merged["resource_name"]:
        raise ParameterError("resource_name", "empty while resource_arn is empty too; give one of them")
    arn = RESOURCE_ARN.match(merged["resource_arn"] or "")
    if arn and arn["region"] != merged["source_region"]:
        raise ParameterError("resource_arn", f"is in {arn['region']}; allowed: a resource in source_region "
                             f"{merged['source_region']}")
    if arn and arn["partition"] != arns.partition(merged["source_region"]):
        raise ParameterError("resource_arn", f"is in partition {arn['partition']}; allowed: partition "
                             f"{arns.partition(merged['source_region'])} of {merged['source_region']}")
    for key_name, region_name in (("source_vault_key", "source_region"), ("target_vault_key", "target_region"),
                                  ("reencrypt_key", "source_region")):
        key = KEY_ARN.match(merged[key_name])
        if key and key["region"] != merged[region_name]:
            raise ParameterError(key_name, f"is in {key['region']}; allowed: a key in {region_name} "
                                 f"{merged[region_name]}")
        if key and key["partition"] != arns.partition(merged[region_name]):
            raise ParameterError(key_name, f"is in partition {key['partition']}; allowed: partition "
                                 f"{arns.partition(merged[region_name])} of {merged[region_name]}")
    cold = merged["move_to_cold_storage_after_days"]
    if cold is not None and merged["delete_after_days"] < cold + 90:
        raise ParameterError("delete_after_days", f"got {merged['delete_after_days']}; allowed: at least "
                             f"move_to_cold_storage_after_days + 90 = {cold + 90} (AWS refuses less)")


def load(path: str | Path, check_profiles: bool = True) -> dict[str, Any]:
    """Read and validate a flat YAML parameter file."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ParameterError("file", f"cannot read {path}: {error}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise ParameterError("file", f"{path} must be a flat mapping of parameter names to values")
    return validate(data, check_profiles=check_profiles)


def lifecycle(values: Mapping[str, Any]) -> dict[str, int]:
    """The Backup Lifecycle the parameters ask for."""
    result = {"DeleteAfterDays": values["delete_after_days"]}
    if values.get("move_to_cold_storage_after_days") is not None:
        result["MoveToColdStorageAfterDays"] = values["move_to_cold_storage_after_days"]
    return result


def reference_table() -> str:
    """The parameters reference as a Markdown table, for the README."""
    rows = ["| parameter | default | meaning | allowed |", "| --- | --- | --- | --- |"]
    for p in SCHEMA:
        default = "" if p.default in ("", None) else f"`{p.default}`"
        rows.append(f"| `{p.name}` | {default} | {p.meaning} | {p.allowed} |")
    return "\n".join(rows)
