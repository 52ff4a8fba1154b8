"""The parameters of every step, in one place: names, defaults, meaning and what is allowed.

Parameter files are flat YAML mappings of these names, so that plain `papermill -f FILE` works on
any one notebook. `validate` checks a whole mapping without calling AWS (profiles are looked up in
the AWS config files, Regions in botocore's endpoint data) and stops at the first bad value with
one line naming the field and what is allowed: each value by its check (param_values.py), then what
holds between them (param_relations.py). `load` reads the files (param_files.py) and validates them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import botocore.session

from . import arns, param_files, param_relations, resource_types
from .errors import ParameterError, quoted
from .param_values import (
    AVAILABILITY_ZONE,
    COPY_JOB_ID,
    KEY_FORMS,
    MAX_RESOURCES,
    PLAN_NAME,
    RESOURCE_ARN,
    ROLE_NAME,
    SCENARIO_NAME,
    SCHEDULE,
    TAG_RULES,
    TOPIC_NAME,
    VAULT_NAME,
    is_int,
    is_key,
    is_minutes,
    is_tags,
    is_types,
    matches,
    plain_text,
    resources_problem,
    selector_tags_problem,
    tags_problem,
)


@dataclass(frozen=True)
class Parameter:
    name: str
    default: Any
    meaning: str
    allowed: str
    check: Callable[[Any], bool]


def parameter(default: Any, meaning: str, allowed: str, check: Callable[[Any], bool]) -> Any:
    """A field of Parameters with what the parameters reference and the validation messages say of it."""
    metadata = {"meaning": meaning, "allowed": allowed, "check": check}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class Parameters:
    """One run's parameters, typed: the schema that validation, the parameters reference and every step read."""

    source_profile: str = parameter(
        "sandbox-source",
        "AWS profile of the source account (owns the resource)",
        "a profile in your AWS config",
        lambda v: isinstance(v, str) and bool(v),
    )
    source_region: str = parameter(
        "us-east-1",
        "Region of the resource and the source vault",
        "an AWS Region name, e.g. us-east-1",
        lambda v: isinstance(v, str),
    )
    target_profile: str = parameter(
        "sandbox-target",
        "AWS profile of the destination account",
        "a profile in your AWS config",
        lambda v: isinstance(v, str) and bool(v),
    )
    target_region: str = parameter(
        "eu-west-1",
        "Region of the destination vault",
        "an AWS Region name, e.g. eu-west-1",
        lambda v: isinstance(v, str),
    )
    management_profile: str = parameter(
        "sandbox-management",
        "AWS profile of the Organization's management account (enables cross-account backup); "
        "empty when you cannot use it",
        "a profile in your AWS config, or empty",
        lambda v: isinstance(v, str),
    )
    resource_arn: str = parameter(
        "",
        "ARN of the EBS volume (or RDS DB instance, Aurora, Neptune or DocumentDB cluster, or EFS file system) to back "
        "up; empty to find it by resource_name",
        "empty, or an EBS volume, RDS DB instance, DB cluster or EFS file system ARN in source_region",
        lambda v: v == "" or (isinstance(v, str) and bool(RESOURCE_ARN.match(v))),
    )
    resource_name: str = parameter(
        "walkthrough-volume",
        "used when resource_arn is empty: the Name tag of the EBS volume, else the RDS DB instance's "
        "identifier, else the DB cluster's (Aurora, Neptune, DocumentDB), else the EFS file system's Name",
        "up to 256 characters, no control characters",
        plain_text(256),
    )
    resources: list[str] = parameter(
        [],
        "many resources in one run: EBS volume or RDS DB instance ARNs, or EBS volumes' Name tags; empty "
        "for resource_arn or resource_name",
        f"a list of up to {MAX_RESOURCES} ARNs in source_region or Name tags (each up to 256 characters), no repeats",
        lambda v: not resources_problem(v),
    )
    resource_tags: dict[str, str] = parameter(
        {},
        "many resources in one run: every EBS volume of source_region carrying all these tags; empty for "
        "resource_arn, resource_name or resources",
        "a mapping of up to 50 tags (keys 1-128, values up to 256 characters, no control characters)",
        lambda v: not selector_tags_problem(v),
    )
    max_concurrent_jobs: int = parameter(
        50,
        f"most backup or copy jobs a run keeps running at once, one per resource at most (AWS Backup's quotas: "
        f"{resource_types.quota(resource_types.COPIES_PER_DESTINATION_REGION)} concurrent copies per account to one "
        f"destination Region, {resource_types.quota(resource_types.COPIES_PER_VAULT_BEYOND)} more per vault once that "
        f"is reached, {resource_types.quota(resource_types.JOBS_PER_RESOURCE)} backup or copy job per resource at a "
        "time: the default leaves half for other copies)",
        f"a whole number 1-{resource_types.quota(resource_types.COPIES_PER_DESTINATION_REGION)}",
        is_int(1, resource_types.quota(resource_types.COPIES_PER_DESTINATION_REGION)),
    )
    one_action_types: list[str] = parameter(
        [],
        "resource types to copy across account and Region in one copy job although the capability table says "
        "two hops (since October 2025 it says one job for every type; kept for parameter files that name RDS "
        "or Aurora here)",
        f"a list of resource types of the capability table ({', '.join(resource_types.TYPES)}), no repeats",
        lambda v: is_types(v),
    )
    two_hop_types: list[str] = parameter(
        [],
        "resource types to copy in two hops although the capability table says one copy job: where AWS refuses "
        "one job across account and Region for them (known failure rds-single-hop), or by choice; in a run of "
        "many resources, each resource of these types",
        f"a list of resource types of the capability table ({', '.join(resource_types.TYPES)}), no repeats, none "
        "that one_action_types names",
        lambda v: is_types(v),
    )
    two_hops: bool = parameter(
        True,
        "copy in two hops the types two_hop_types names (or the capability table, where it says two hops): across "
        "Regions into hop_vault_name of the source account, then across accounts; false starts one copy job for "
        "every type",
        "true or false",
        lambda v: isinstance(v, bool),
    )
    hop_vault_name: str = parameter(
        "",
        "two hops: the source account's vault in target_region the copy passes through; empty for source_vault_name",
        "empty, or 2-50 letters, digits, - or _",
        lambda v: v == "" or matches(VAULT_NAME)(v),
    )
    hop_vault_key: str = parameter(
        "alias/cmkSourceHop",
        "two hops: customer managed KMS key of the source account in target_region that encrypts the hop vault "
        "(step 03 shares it with the destination account, whose copy is made from it)",
        KEY_FORMS,
        is_key,
    )
    source_vault_name: str = parameter(
        "SourceVault", "backup vault in the source account", "2-50 letters, digits, - or _", matches(VAULT_NAME)
    )
    source_vault_key: str = parameter(
        "alias/cmkSourceVault", "KMS key that encrypts the source vault", KEY_FORMS, is_key
    )
    target_vault_name: str = parameter(
        "CABTargetVault", "backup vault in the destination account", "2-50 letters, digits, - or _", matches(VAULT_NAME)
    )
    target_vault_key: str = parameter(
        "alias/cmkTarget",
        "customer managed KMS key of the destination vault (AWS managed alias/aws/backup only for a type whose "
        "copies may go under it: EFS)",
        f"{KEY_FORMS}; alias/aws/backup only for EFS",
        lambda v: is_key(v) and ("alias/aws/" not in v or v.endswith("alias/aws/backup")),
    )
    iam_role_name: str = parameter(
        "service-role/AWSBackupDefaultServiceRole",
        "IAM role AWS Backup uses in the source account; the jobs use the ARN IAM returns for it",
        "an IAM role name, with or without its path",
        matches(ROLE_NAME),
    )
    restore_role_name: str = parameter(
        "service-role/AWSBackupDefaultServiceRole",
        "restore drill: IAM role AWS Backup restores with in the destination account",
        "an IAM role name, with or without its path",
        matches(ROLE_NAME),
    )
    restore_availability_zone: str = parameter(
        "",
        "restore drill: Availability Zone of the restored EBS volume; empty for target_region's first (e.g. "
        "eu-west-1a)",
        "empty, or an Availability Zone of target_region, e.g. eu-west-1b",
        matches(AVAILABILITY_ZONE),
    )
    keep_restored: bool = parameter(
        False,
        "restore drill: keep the restored volume instead of deleting it once it is verified",
        "true or false",
        lambda v: isinstance(v, bool),
    )
    delete_after_days: int = parameter(
        35, "retention of the backup and of its copy, in days", "a whole number 1-36500", is_int(1, 36500)
    )
    move_to_cold_storage_after_days: int | None = parameter(
        None,
        "days before moving to cold storage; empty for never (cold recovery points cannot be copied)",
        "empty, or a whole number 1-36500",
        lambda v: v is None or is_int(1, 36500)(v),
    )
    recovery_point_tags: dict[str, str] = parameter(
        {"Project": "cross-account-backup"}, "tags on the recovery point", TAG_RULES, is_tags
    )
    poll_seconds: int = parameter(
        5, "seconds between two looks at a running job", "a whole number 1-300", is_int(1, 300)
    )
    max_wait_minutes: float = parameter(
        60,
        "how long a step waits for its job before it stops; the job goes on in "
        "AWS and the next run with the same run folder waits for it",
        "a number of minutes above 0, at most 10080",
        is_minutes,
    )
    step_timeout_minutes: float | None = parameter(
        None,
        "`runbook run` stops a step that takes longer than this (a hung call, "
        "a kernel that never answers) with one line; a job it started goes on in AWS and a rerun resumes",
        "empty for max_wait_minutes + 60, or a number of minutes above max_wait_minutes, at most 20160",
        lambda v: v is None or is_minutes(v, high=20160),
    )
    force_copy: bool = parameter(
        False,
        "for trainers: start the copy (or the restore drill's restore) even when a blocking check says it will fail",
        "true or false",
        lambda v: isinstance(v, bool),
    )
    strict_checks: bool = parameter(
        False,
        "a check that cannot decide (`unknown`) blocks like a failed one",
        "true or false",
        lambda v: isinstance(v, bool),
    )
    copy_job_id: str = parameter(
        "",
        "troubleshooting: the copy job to diagnose; empty for every failed job",
        "empty, or a copy job ID (up to 100 printable ASCII characters, no spaces)",
        matches(COPY_JOB_ID),
    )
    reencrypt_key: str = parameter(
        "alias/cmkSource",
        "troubleshooting: customer managed key that re-encrypts a snapshot under an AWS managed key",
        KEY_FORMS,
        is_key,
    )
    revert_sharing: bool = parameter(
        False,
        "cleanup: also take out what this run added to the key policy, the vault "
        "policy and the organization's cross-account backup setting (read from its change log)",
        "true or false",
        lambda v: isinstance(v, bool),
    )
    take_back_shared: bool = parameter(
        False,
        "cleanup, with revert_sharing: also take back what other runs may use and the run cannot see them use "
        "(the organization's cross-account backup setting); without it a batch cleanup keeps that, planned, and "
        "says so (`runbook run --yes` sets it; in JupyterLab the Apply button is the confirmation)",
        "true or false",
        lambda v: isinstance(v, bool),
    )
    plan_name: str = parameter(
        "CrossAccountCopy",
        "automation: the AWS Backup plan step 09 keeps in the source account",
        "1-50 letters, digits, - or _",
        matches(PLAN_NAME),
    )
    plan_schedule: str = parameter(
        "cron(0 5 ? * * *)",
        "automation: when the plan's rule backs up (an AWS Backup schedule expression, in UTC)",
        "cron(...) or rate(...)",
        matches(SCHEDULE),
    )
    selection_tags: dict[str, str] = parameter(
        {},
        "automation: the plan backs up every resource carrying all these tags; empty for the run's resources by ARN",
        "a mapping of up to 50 tags (keys 1-128, values up to 256 characters, no control characters)",
        lambda v: not selector_tags_problem(v),
    )
    take_over_plan: bool = parameter(
        False,
        "automation: update the backup plan plan_name (and its selection) although another run folder, or "
        "someone else, made it; false shows their plan as it is and refuses to overwrite it",
        "true or false",
        lambda v: isinstance(v, bool),
    )
    alert_topic_name: str = parameter(
        "runbook-copy-failures",
        "automation: SNS topic where EventBridge announces every copy job that ends FAILED",
        "1-256 letters, digits, - or _",
        matches(TOPIC_NAME),
    )
    apply: bool = parameter(
        False,
        "make the changes; false is a dry run: every step plans (against what earlier "
        "plans will produce), nothing changes in AWS, and JupyterLab shows an Apply button per change",
        "true or false",
        lambda v: isinstance(v, bool),
    )
    run_dir: str = parameter(
        "",
        "folder of this run's state and change log; empty keeps them in the repository's runs/adhoc",
        "a folder path, or empty",
        lambda v: isinstance(v, str),
    )
    sandbox_scenario: str = parameter(
        "",
        "trainers: the sandbox scenario these parameters are written for; against a sandbox in another "
        "scenario the runbook stops and names the reset (`runbook sandbox scenarios` lists them); ignored on AWS",
        "empty, or a scenario name: lowercase letters, digits and -",
        matches(SCENARIO_NAME),
    )

    def as_dict(self) -> dict[str, Any]:
        """The values by name, as parameter files and notebooks hold them."""
        return {name: getattr(self, name) for name in BY_NAME}

    def step_timeout(self) -> float:
        """How long `runbook run` gives a step: the parameter, or an hour more than a wait may take."""
        return self.step_timeout_minutes or self.max_wait_minutes + 60

    def lifecycle(self) -> dict[str, int]:
        """The Backup Lifecycle the parameters ask for."""
        result = {"DeleteAfterDays": self.delete_after_days}
        if self.move_to_cold_storage_after_days is not None:
            result["MoveToColdStorageAfterDays"] = self.move_to_cold_storage_after_days
        return result


SCHEMA: tuple[Parameter, ...] = tuple(
    Parameter(
        f.name,
        f.default_factory() if callable(f.default_factory) else f.default,
        f.metadata["meaning"],
        f.metadata["allowed"],
        f.metadata["check"],
    )
    for f in fields(Parameters)
)
BY_NAME = {p.name: p for p in SCHEMA}
# What a bad value of these parameters gets said of it (others: the value itself).
PROBLEMS: dict[str, Callable[[Any], str]] = {
    "recovery_point_tags": tags_problem,
    "resources": resources_problem,
    "resource_tags": selector_tags_problem,
    "selection_tags": selector_tags_problem,
}
DEFAULTS = {p.name: p.default for p in SCHEMA}


def _profiles() -> set[str]:
    return set(botocore.session.Session().available_profiles)


def validate(values: Mapping[str, Any], check_profiles: bool = True) -> Parameters:
    """Defaults filled in and every value checked; ParameterError at the first bad one.

    Profiles are looked up only where `values` names them: a default is not the caller's choice.
    """
    unknown = sorted((name for name in values if name not in BY_NAME), key=str)
    if unknown:
        raise ParameterError(str(unknown[0]), f"unknown parameter; allowed: {', '.join(BY_NAME)}")
    for name, value in values.items():
        placeholder = _placeholder_in(value)
        if placeholder:
            meaning = BY_NAME[name].meaning
            raise ParameterError(
                str(name), f"is still the placeholder {quoted(placeholder)}; replace it with your own: {meaning}"
            )
    merged = {**DEFAULTS, **values}
    for parameter in SCHEMA:
        value = merged[parameter.name]
        if not parameter.check(value):
            got = PROBLEMS.get(parameter.name, lambda v: f"got {quoted(v)}")(value)
            raise ParameterError(parameter.name, f"{got}; allowed: {parameter.allowed}")
    regions = arns.regions()
    for name in ("source_region", "target_region"):
        if merged[name] not in regions:
            raise ParameterError(name, f"got {quoted(merged[name])}; allowed: an AWS Region name, e.g. us-east-1")
    if check_profiles:
        profiles = _profiles()
        for name in ("source_profile", "target_profile", "management_profile"):
            if values.get(name) and values[name] not in profiles:
                known = ", ".join(sorted(profiles)) or "none: is AWS_CONFIG_FILE set?"
                raise ParameterError(name, f"no profile {quoted(values[name])} in your AWS config; profiles: {known}")
    param_relations.check(merged)
    return Parameters(**merged)


# A value an example file leaves for the user to fill in: <SOURCE_PROFILE>, arn:aws:ec2:...:volume/<VOLUME_ID>.
PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*>")


def _placeholder_in(value: Any) -> str:
    """The first placeholder in a value (strings, and those in lists and mappings), or ''."""
    if isinstance(value, str):
        found = PLACEHOLDER.search(value)
        return found.group(0) if found else ""
    if isinstance(value, dict):
        return next((p for item in value.items() for p in map(_placeholder_in, item) if p), "")
    if isinstance(value, list):
        return next((p for p in map(_placeholder_in, value) if p), "")
    return ""


def load(*paths: str | Path, check_profiles: bool = True) -> Parameters:
    """Read and validate flat YAML parameter files, later files overriding earlier ones (like papermill -f)."""
    if not paths:
        raise ParameterError("file", "no parameter file given; allowed: one or more YAML files")
    merged: dict[str, Any] = {}
    for path in paths:
        data = param_files.read(path)
        if not isinstance(data, dict):
            raise ParameterError("file", f"{path} must be a flat mapping of parameter names to values")
        merged.update(data)
    return validate(merged, check_profiles=check_profiles)


def reference_table() -> str:
    """The parameters reference as a Markdown table, for the site (docs/reference/parameters.md)."""
    rows = ["| parameter | default | meaning | allowed |", "| --- | --- | --- | --- |"]
    for p in SCHEMA:
        default = "" if p.default in ("", None) else f"`{p.default}`"
        rows.append(f"| `{p.name}` | {default} | {p.meaning} | {p.allowed} |")
    return "\n".join(rows)
