"""The parameters of every step, in one place: names, defaults, meaning and what is allowed.

Parameter files are flat YAML mappings of these names, so that plain `papermill -f FILE` works on
any one notebook. `validate` checks a whole mapping without calling AWS (profiles are looked up in
the AWS config files, Regions in botocore's endpoint data) and stops at the first bad value with
one line naming the field and what is allowed. Every pattern is anchored on the whole value
(`\\A...\\Z`: `$` would let a trailing newline through) and ASCII-only where AWS is, so that `\\d`
takes no Arabic-Indic digit. `load` refuses what YAML would let through silently: a key given
twice (YAML keeps the last), an empty file (every default would run), and says where a YAML error is.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import botocore.session
import yaml

from . import arns, resource_types
from .errors import ParameterError, quoted

VAULT_NAME = re.compile(r"\A[A-Za-z0-9_-]{2,50}\Z")
ROLE_NAME = re.compile(r"\A/?([\w+=,.@-]+/)*[\w+=,.@-]{1,64}\Z", re.ASCII)
ALIAS = re.compile(r"\Aalias/[A-Za-z0-9/_-]{1,250}\Z")
KEY_ID = re.compile(r"\A(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\Z")
KEY_ARN = re.compile(
    r"\Aarn:(?P<partition>aws[a-z-]*):kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"(key/[A-Za-z0-9-]+|alias/[A-Za-z0-9/_-]+)\Z",
    re.ASCII,
)
RESOURCE_ARN = re.compile(
    r"\Aarn:(?P<partition>aws[a-z-]*):(?P<service>ec2|rds|elasticfilesystem):(?P<region>[a-z0-9-]+):"
    r"(?P<account>\d{12}):(?P<resource>volume/vol-[0-9a-f]{8,17}|(db|cluster):[A-Za-z][A-Za-z0-9-]{0,62}|"
    r"file-system/fs-[0-9a-f]{8,40})\Z",
    re.ASCII,
)
AVAILABILITY_ZONE = re.compile(r"\A([a-z]{2}(-[a-z]+)+-\d+[a-z])?\Z")
PLAN_NAME = re.compile(r"\A[A-Za-z0-9_-]{1,50}\Z")
SCHEDULE = re.compile(r"\A(cron|rate)\([^()\n]{1,200}\)\Z")
TOPIC_NAME = re.compile(r"\A[A-Za-z0-9_-]{1,256}\Z")
SCENARIO_NAME = re.compile(r"\A([a-z0-9-]{1,64})?\Z")
COPY_JOB_ID = re.compile(r"\A[!-~]{0,100}\Z")
INT_TAG, FLOAT_TAG, BOOL_TAG = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool"
KEY_FORMS = "alias/NAME, a key ID, or a key or alias ARN"
# AWS Backup's tag rules (API KeyValue): letters, separators (spaces) and numbers of any script, and these.
TAG_SYMBOLS = frozenset("_.:/=+-@")
TAG_RULES = (
    "a mapping of up to 50 tags: keys 1-128 and values 0-256 characters, each a letter, digit, space or "
    "one of _ . : / = + - @; keys not starting with aws:"
)
MAX_TAGS = 50


@dataclass(frozen=True)
class Parameter:
    name: str
    default: Any
    meaning: str
    allowed: str
    check: Callable[[Any], bool]


def _is_int(low: int, high: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def tag_character_allowed(character: str) -> bool:
    """Whether AWS takes the character in a tag key or value (letters, separators and numbers of any script)."""
    return unicodedata.category(character)[0] in "LZN" or character in TAG_SYMBOLS


def _tag_character_problem(text: str) -> str:
    """'' when AWS Backup takes every character of a tag key or value, else the first it refuses."""
    for character in text:
        if not tag_character_allowed(character):
            return f"has {quoted(character)} (U+{ord(character):04X})"
    return ""


def tags_problem(value: Any) -> str:
    """Why AWS Backup would refuse these recovery point tags, or '' when it takes them."""
    if not isinstance(value, Mapping):
        return f"got {quoted(value)}"
    if len(value) > MAX_TAGS:
        return f"got {len(value)} tags"
    for key, text in value.items():
        if not isinstance(key, str) or not isinstance(text, str):
            return f"tag {quoted(key)}: {quoted(text)} is not text (quote numbers, dates and true/false)"
        if not 1 <= len(key) <= 128:
            return f"key {quoted(key)} has {len(key)} characters"
        if len(text) > 256:
            return f"the value of {quoted(key)} has {len(text)} characters"
        if key.lower().startswith("aws:"):
            return f"key {quoted(key)} starts with aws:"
        for what, checked in (("key", key), ("value", text)):
            problem = _tag_character_problem(checked)
            if problem:
                where = f"the {what} {quoted(checked)}" if what == "key" else f"the value of {quoted(key)}"
                return f"{where} {problem}"
    return ""


MAX_RESOURCES = 5000


def resources_problem(value: Any) -> str:
    """Why a `resources` list cannot select resources, or '' when it can."""
    if not isinstance(value, list):
        return f"got {quoted(value)}"
    if len(value) > MAX_RESOURCES:
        return f"got {len(value)} resources"
    for item in value:
        if not _plain_text(256)(item) or not item:
            return f"got {quoted(item)}"
    if len(set(value)) != len(value):
        return f"{quoted(next(v for v in value if value.count(v) > 1))} is given twice"
    return ""


def selector_tags_problem(value: Any) -> str:
    """Why `resource_tags` cannot select volumes by their tags, or '' when it can."""
    if not isinstance(value, Mapping):
        return f"got {quoted(value)}"
    if len(value) > MAX_TAGS:
        return f"got {len(value)} tags"
    for key, text in value.items():
        if not isinstance(key, str) or not isinstance(text, str):
            return f"tag {quoted(key)}: {quoted(text)} is not text (quote numbers, dates and true/false)"
        if not 1 <= len(key) <= 128 or not _plain_text(128)(key) or not _plain_text(256)(text):
            return f"tag {quoted(key)}: {quoted(text)}"
    return ""


def _is_tags(value: Any) -> bool:
    return not tags_problem(value)


def _plain_text(limit: int) -> Callable[[Any], bool]:
    """Text of at most `limit` characters with no control character (a newline, NUL, BEL...)."""
    return lambda v: isinstance(v, str) and len(v) <= limit and not any(unicodedata.category(c) == "Cc" for c in v)


def _is_types(value: Any) -> bool:
    """A list of the capability table's types, none twice."""
    return isinstance(value, list) and all(t in resource_types.TYPES for t in value) and len(set(value)) == len(value)


def _is_key(value: Any) -> bool:
    return isinstance(value, str) and bool(ALIAS.match(value) or KEY_ID.match(value) or KEY_ARN.match(value))


def _is_minutes(value: Any, high: float = 10080) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= high


def _text(pattern: re.Pattern[str]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and bool(pattern.match(v))


def parameter(default: Any, meaning: str, allowed: str, check: Callable[[Any], bool]) -> Any:
    """A field of Parameters with what the README's table and the validation messages say of it."""
    metadata = {"meaning": meaning, "allowed": allowed, "check": check}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class Parameters:
    """One run's parameters, typed: the schema that validation, the README's table and every step read."""

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
        _plain_text(256),
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
        _is_int(1, resource_types.quota(resource_types.COPIES_PER_DESTINATION_REGION)),
    )
    one_action_types: list[str] = parameter(
        [],
        "resource types to copy across account and Region in one copy job although the capability table says "
        "two hops (since October 2025 it says one job for every type; kept for parameter files that name RDS "
        "or Aurora here)",
        f"a list of resource types of the capability table ({', '.join(resource_types.TYPES)}), no repeats",
        lambda v: _is_types(v),
    )
    two_hop_types: list[str] = parameter(
        [],
        "resource types to copy in two hops although the capability table says one copy job: where AWS refuses "
        "one job across account and Region for them (known failure rds-single-hop), or by choice; one resource "
        "per run (resource_arn or resource_name)",
        f"a list of resource types of the capability table ({', '.join(resource_types.TYPES)}), no repeats, none "
        "that one_action_types names",
        lambda v: _is_types(v),
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
        lambda v: v == "" or _text(VAULT_NAME)(v),
    )
    hop_vault_key: str = parameter(
        "alias/cmkSourceHop",
        "two hops: customer managed KMS key of the source account in target_region that encrypts the hop vault "
        "(step 03 shares it with the destination account, whose copy is made from it)",
        KEY_FORMS,
        _is_key,
    )
    source_vault_name: str = parameter(
        "SourceVault", "backup vault in the source account", "2-50 letters, digits, - or _", _text(VAULT_NAME)
    )
    source_vault_key: str = parameter(
        "alias/cmkSourceVault", "KMS key that encrypts the source vault", KEY_FORMS, _is_key
    )
    target_vault_name: str = parameter(
        "CABTargetVault", "backup vault in the destination account", "2-50 letters, digits, - or _", _text(VAULT_NAME)
    )
    target_vault_key: str = parameter(
        "alias/cmkTarget",
        "customer managed KMS key of the destination vault (AWS managed alias/aws/backup only for a type whose "
        "copies may go under it: EFS)",
        f"{KEY_FORMS}; alias/aws/backup only for EFS",
        lambda v: _is_key(v) and ("alias/aws/" not in v or v.endswith("alias/aws/backup")),
    )
    iam_role_name: str = parameter(
        "service-role/AWSBackupDefaultServiceRole",
        "IAM role AWS Backup uses in the source account; the jobs use the ARN IAM returns for it",
        "an IAM role name, with or without its path",
        _text(ROLE_NAME),
    )
    restore_role_name: str = parameter(
        "service-role/AWSBackupDefaultServiceRole",
        "restore drill: IAM role AWS Backup restores with in the destination account",
        "an IAM role name, with or without its path",
        _text(ROLE_NAME),
    )
    restore_availability_zone: str = parameter(
        "",
        "restore drill: Availability Zone of the restored EBS volume; empty for target_region's first (e.g. "
        "eu-west-1a)",
        "empty, or an Availability Zone of target_region, e.g. eu-west-1b",
        _text(AVAILABILITY_ZONE),
    )
    keep_restored: bool = parameter(
        False,
        "restore drill: keep the restored volume instead of deleting it once it is verified",
        "true or false",
        lambda v: isinstance(v, bool),
    )
    delete_after_days: int = parameter(
        35, "retention of the backup and of its copy, in days", "a whole number 1-36500", _is_int(1, 36500)
    )
    move_to_cold_storage_after_days: int | None = parameter(
        None,
        "days before moving to cold storage; empty for never (cold recovery points cannot be copied)",
        "empty, or a whole number 1-36500",
        lambda v: v is None or _is_int(1, 36500)(v),
    )
    recovery_point_tags: dict[str, str] = parameter(
        {"Project": "cross-account-backup"}, "tags on the recovery point", TAG_RULES, _is_tags
    )
    poll_seconds: int = parameter(
        5, "seconds between two looks at a running job", "a whole number 1-300", _is_int(1, 300)
    )
    max_wait_minutes: float = parameter(
        60,
        "how long a step waits for its job before it stops; the job goes on in "
        "AWS and the next run with the same run folder waits for it",
        "a number of minutes above 0, at most 10080",
        _is_minutes,
    )
    step_timeout_minutes: float | None = parameter(
        None,
        "`runbook run` stops a step that takes longer than this (a hung call, "
        "a kernel that never answers) with one line; a job it started goes on in AWS and a rerun resumes",
        "empty for max_wait_minutes + 60, or a number of minutes above max_wait_minutes, at most 20160",
        lambda v: v is None or _is_minutes(v, high=20160),
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
        _text(COPY_JOB_ID),
    )
    reencrypt_key: str = parameter(
        "alias/cmkSource",
        "troubleshooting: customer managed key that re-encrypts a snapshot under an AWS managed key",
        KEY_FORMS,
        _is_key,
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
        _text(PLAN_NAME),
    )
    plan_schedule: str = parameter(
        "cron(0 5 ? * * *)",
        "automation: when the plan's rule backs up (an AWS Backup schedule expression, in UTC)",
        "cron(...) or rate(...)",
        _text(SCHEDULE),
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
        _text(TOPIC_NAME),
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
        _text(SCENARIO_NAME),
    )

    @property
    def is_fleet(self) -> bool:
        """Many resources selected (resources or resource_tags): every step works on the whole selection,
        one row per resource."""
        return bool(self.resources or self.resource_tags)

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
    _check_relations(merged)
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


def _check_relations(merged: dict[str, Any]) -> None:
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
    fleet = next((name for name in ("resources", "resource_tags") if merged[name]), None)
    if merged["two_hop_types"] and fleet:
        raise ParameterError(
            "two_hop_types",
            f"given with {fleet}: a run of many resources copies each in one copy job; allowed: two_hop_types with "
            "resource_arn or resource_name (a run of its own for each resource to copy in two hops)",
        )
    for item in merged["resources"]:
        if item.startswith("arn:") and (
            not RESOURCE_ARN.match(item) or ":elasticfilesystem:" in item or ":cluster:" in item
        ):
            raise ParameterError(
                "resources", f"{quoted(item)} is not an EBS volume or RDS DB instance ARN; allowed: those, or Name tags"
            )
        listed = RESOURCE_ARN.match(item)
        if listed and listed["region"] != merged["source_region"]:
            raise ParameterError("resources", f"{item} is in {listed['region']}; allowed: resources in source_region")
    arn = RESOURCE_ARN.match(merged["resource_arn"] or "")
    row = resource_types.type_of(merged["resource_arn"]) if arn else None
    if "alias/aws/" in merged["target_vault_key"] and row is not None and not row.any_destination_key:
        raise ParameterError(
            "target_vault_key",
            f"is AWS managed while resource_arn is an {row.name} resource; allowed: a customer managed key "
            f"(copies of {row.name} cannot go under an AWS managed key)",
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


class _Duplicate(Exception):
    """A key given twice in one mapping; `field` is the parameter it belongs to."""

    def __init__(self, field: str, key: Any, lines: tuple[int, int]):
        super().__init__(field)
        self.field, self.key, self.lines = field, key, lines


def _refuse_duplicates(loader: yaml.SafeLoader, node: yaml.Node, field: str | None) -> None:
    """A mapping that names a key twice (YAML would keep the last without a word), here or nested.

    `field` is the parameter whose value `node` is (None for the file's top-level mapping)."""
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicates(loader, item, field)
    if not isinstance(node, yaml.MappingNode):
        return
    seen: dict[Any, int] = {}
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            if key in seen:
                raise _Duplicate(field or str(key), key, (seen[key], line))
            seen[key] = line
        except TypeError:
            continue  # an unhashable key: SafeLoader refuses it with its own error
        _refuse_duplicates(loader, value_node, field or str(key))


def _where(text: str, error: yaml.YAMLError) -> str:
    """'line L, column C: problem' of a YAML error (1-based, as editors count)."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {error.problem}"
    if isinstance(error, yaml.reader.ReaderError):
        line = text.count("\n", 0, error.position) + 1
        column = error.position - (text.rfind("\n", 0, error.position) + 1) + 1
        return f"line {line}, column {column}: character U+{error.character:04X} is not allowed in YAML"
    return str(error).splitlines()[0]


class _Loader(yaml.SafeLoader):
    """YAML 1.2's core schema for plain scalars: a value is what it looks like. YAML 1.1 (PyYAML's
    default) reads 010 as 8, 0x23 as 35, 1:05 as 65, 1_0 as 10 and yes or on as true; here they stay
    text, which validation then refuses where a number or true/false is expected."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag not in (INT_TAG, FLOAT_TAG, BOOL_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(BOOL_TAG, re.compile(r"\A(?:true|True|TRUE|false|False|FALSE)\Z"), list("tTfF"))
_Loader.add_implicit_resolver(INT_TAG, re.compile(r"\A[-+]?(?:0|[1-9][0-9]*)\Z"), list("-+0123456789"))
_Loader.add_implicit_resolver(
    FLOAT_TAG,
    re.compile(
        r"\A(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z"
    ),
    list("-+0123456789."),
)


def read(path: str | Path) -> Any:
    """The YAML document in a file; ParameterError (one line, with line and column) when it cannot be read,
    is not YAML, names a key twice or holds nothing."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error).splitlines()[0]
        raise ParameterError("file", f"cannot read {path}: {reason}") from None
    try:
        loader = _Loader(text)
    except yaml.YAMLError as error:
        raise ParameterError("file", f"{path} is not valid YAML: {_where(text, error)}") from None
    try:
        node = loader.get_single_node()
        if node is not None:
            _refuse_duplicates(loader, node, None)
        data = loader.construct_document(node) if node is not None else None
    except _Duplicate as twice:
        what = "given" if twice.field == str(twice.key) else f"has key {quoted(twice.key)}"
        raise ParameterError(
            twice.field,
            f"{what} twice in {path} (lines {twice.lines[0]} and {twice.lines[1]}); "
            "allowed: each name once (YAML would silently keep the last)",
        ) from None
    except yaml.YAMLError as error:
        raise ParameterError("file", f"{path} is not valid YAML: {_where(text, error)}") from None
    finally:
        loader.dispose()
    if data is None or data == {}:
        raise ParameterError(
            "file",
            f"{path} holds no parameters; allowed: a flat mapping of parameter names to "
            "values, e.g. parameters/sandbox.yaml (an empty file would run every default)",
        )
    return data


def load(*paths: str | Path, check_profiles: bool = True) -> Parameters:
    """Read and validate flat YAML parameter files, later files overriding earlier ones (like papermill -f)."""
    if not paths:
        raise ParameterError("file", "no parameter file given; allowed: one or more YAML files")
    merged: dict[str, Any] = {}
    for path in paths:
        data = read(path)
        if not isinstance(data, dict):
            raise ParameterError("file", f"{path} must be a flat mapping of parameter names to values")
        merged.update(data)
    return validate(merged, check_profiles=check_profiles)


def reference_table() -> str:
    """The parameters reference as a Markdown table, for the README."""
    rows = ["| parameter | default | meaning | allowed |", "| --- | --- | --- | --- |"]
    for p in SCHEMA:
        default = "" if p.default in ("", None) else f"`{p.default}`"
        rows.append(f"| `{p.name}` | {default} | {p.meaning} | {p.allowed} |")
    return "\n".join(rows)
