"""Backup plans, their resource selections, and running a plan now.

moto keeps plans (Create, Get, List and DeleteBackupPlan, their rules and copy actions as given) but
no selections. This part of the backend adds selections, UpdateBackupPlan, the checks AWS makes of a
plan, and `run_backup_plan`: every rule of a plan started at once, as its schedule would start it.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moto.backup.models import Plan
from moto.core.exceptions import JsonRESTError
from moto.core.utils import unix_time
from moto.ec2.models import ec2_backends
from moto.efs.models import efs_backends
from moto.moto_api._internal import mock_random
from moto.rds.models import rds_backends

from .exceptions import (
    AlreadyExistsException,
    InvalidParameterValueException,
    InvalidRequestException,
    MissingParameterValueException,
    ResourceNotFoundException,
)
from .jobs import JobsBackend
from .records import BackupJob, parse_arn, utcnow, validate_lifecycle, validate_tags

MSG_PLAN_NOT_FOUND = "Failed reading Backup plan with provided version"
MSG_SAME_PLAN = "Backup plan with the same plan document already exists"
MSG_PLAN_HAS_SELECTIONS = "Related backup plan selections must be deleted prior to backup plan deletion"
MSG_EMPTY_SELECTION = "Invalid backup selection. Either 'ListOfTags' or 'Resources' section must be non-empty."
MSG_VAULT_GONE = "Backup job failed because backup vault {vault_arn} does not exist."
SELECTION_NAME = re.compile(r"^[a-zA-Z0-9\-_.]{1,50}$")
CONDITION_OPERATORS = ("StringEquals", "StringNotEquals", "StringLike", "StringNotLike")
RESOURCE_TAG_PREFIX = "aws:ResourceTag/"


@dataclass
class Selection:
    """A resource selection of a plan, kept as the BackupSelection it was created with."""

    selection_id: str
    backup_plan_id: str
    document: dict[str, Any]
    creator_request_id: str | None
    creation_date: datetime = field(default_factory=utcnow)

    def to_get_dict(self) -> dict[str, Any]:
        return {
            "BackupSelection": self.document,
            "SelectionId": self.selection_id,
            "BackupPlanId": self.backup_plan_id,
            "CreationDate": self.creation_date,
            "CreatorRequestId": self.creator_request_id,
        }

    def to_list_dict(self) -> dict[str, Any]:
        return {
            "SelectionId": self.selection_id,
            "SelectionName": self.document["SelectionName"],
            "BackupPlanId": self.backup_plan_id,
            "CreationDate": self.creation_date,
            "CreatorRequestId": self.creator_request_id,
            "IamRoleArn": self.document["IamRoleArn"],
        }

    def selects(self, arn: str, tags: dict[str, str]) -> bool:
        """Whether the selection takes this resource, as AWS reads one: Resources or ListOfTags (either
        may match), then every Conditions operator, less NotResources."""
        resources = self.document.get("Resources") or []
        tag_list = self.document.get("ListOfTags") or []
        chosen = any(_arn_matches(pattern, arn) for pattern in resources) or any(
            tags.get(_tag_key(entry["ConditionKey"])) == entry["ConditionValue"] for entry in tag_list
        )
        if not chosen or any(_arn_matches(pattern, arn) for pattern in self.document.get("NotResources") or []):
            return False
        conditions = self.document.get("Conditions") or {}
        return all(
            _condition_holds(operator, tags.get(_tag_key(entry["ConditionKey"])), entry["ConditionValue"])
            for operator in CONDITION_OPERATORS
            for entry in conditions.get(operator) or []
        )


def _tag_key(condition_key: str) -> str:
    return condition_key.removeprefix(RESOURCE_TAG_PREFIX)


def _arn_matches(pattern: str, arn: str) -> bool:
    return pattern == "*" or fnmatch.fnmatchcase(arn, pattern)


def _condition_holds(operator: str, value: str | None, expected: str) -> bool:
    """A Conditions test of one tag (a missing tag equals and is like nothing), case-sensitive."""
    if operator == "StringEquals":
        return value == expected
    if operator == "StringNotEquals":
        return value != expected
    like = value is not None and fnmatch.fnmatchcase(value, expected)
    return like if operator == "StringLike" else not like


class PlansBackend(JobsBackend):
    """Plans, selections and plan runs: a part of SandboxBackupBackend (models.py), over the jobs part."""

    def __init__(self, region_name: str, account_id: str):
        super().__init__(region_name, account_id)
        self.selections: dict[str, dict[str, Selection]] = {}
        # Plan ID -> its document as given (moto adds each rule's defaults and ID to the one it keeps).
        self.plan_documents: dict[str, str] = {}

    # ----- plans ---------------------------------------------------------------------------
    def _check_plan_document(self, backup_plan: dict[str, Any]) -> None:
        """The checks AWS makes of a plan's rules: lifecycles, tags, and copy destinations that are vault ARNs."""
        for rule in backup_plan.get("Rules") or []:
            validate_lifecycle(rule.get("Lifecycle"))
            validate_tags(rule.get("RecoveryPointTags"))
            for action in rule.get("CopyActions") or []:
                destination = parse_arn(action.get("DestinationBackupVaultArn") or "")
                if destination["service"] != "backup" or not destination["resource"].startswith("backup-vault:"):
                    raise InvalidParameterValueException(
                        msg=f"Invalid destination backup vault ARN: {action['DestinationBackupVaultArn']}"
                    )
                validate_lifecycle(action.get("Lifecycle"))

    def _live_plans(self) -> Iterator[Plan]:
        return (plan for plan in self.plans.values() if plan.deletion_date is None)

    def create_backup_plan(
        self, backup_plan: dict[str, Any], backup_plan_tags: dict[str, str], creator_request_id: str
    ) -> Plan:
        """Refuses only a plan whose document is the same as a plan's not deleted; plans may share a name,
        as on AWS (moto refuses any plan named as another, deleted or not)."""
        self._check_plan_document(backup_plan)
        document = json.dumps(backup_plan, sort_keys=True)
        if any(self.plan_documents.get(plan.backup_plan_id) == document for plan in self._live_plans()):
            raise AlreadyExistsException(msg=MSG_SAME_PLAN)
        plan = Plan(backup_plan=backup_plan, creator_request_id=creator_request_id, backend=self)
        if backup_plan_tags:
            self.tag_resource(plan.backup_plan_arn, backup_plan_tags)
        self.plans[plan.backup_plan_id] = plan
        self.plan_documents[plan.backup_plan_id] = document
        return plan

    def _live_plan(self, backup_plan_id: str) -> Plan:
        plan = self.plans.get(backup_plan_id)
        if plan is None or plan.deletion_date is not None:
            raise ResourceNotFoundException(msg=MSG_PLAN_NOT_FOUND)
        return plan

    def update_backup_plan(self, backup_plan_id: str, backup_plan: dict[str, Any]) -> Plan:
        """Replaces the plan's document with a new version.

        Simplification: a rule keeps its RuleId when the new version has a rule of the same name (other
        rules get new ones), and only the latest version can be read (GetBackupPlan with an earlier
        VersionId is not found).
        """
        plan = self._live_plan(backup_plan_id)
        self._check_plan_document(backup_plan)
        self.plan_documents[backup_plan_id] = json.dumps(backup_plan, sort_keys=True)
        rule_ids = {rule["RuleName"]: rule["RuleId"] for rule in plan.backup_plan["Rules"]}
        updated = Plan(backup_plan=backup_plan, creator_request_id=plan.creator_request_id, backend=self)
        for rule in backup_plan["Rules"]:
            rule["RuleId"] = rule_ids.get(rule["RuleName"], rule["RuleId"])
        plan.backup_plan = backup_plan
        plan.version_id = updated.version_id
        plan.advanced_backup_settings = updated.advanced_backup_settings
        return plan

    def delete_backup_plan(self, backup_plan_id: str) -> tuple[str, str, float, str]:
        """Refuses a plan that still has selections, as AWS does."""
        plan = self._live_plan(backup_plan_id)
        if self.selections.get(backup_plan_id):
            raise InvalidRequestException(msg=MSG_PLAN_HAS_SELECTIONS)
        plan.deletion_date = unix_time()
        return plan.backup_plan_id, plan.backup_plan_arn, plan.deletion_date, plan.version_id

    def list_backup_plans(self, include_deleted: bool | None) -> list[Plan]:
        """Plans not deleted, or all of them with IncludeDeleted true.

        Simplification: no paging.
        """
        return list(self.plans.values()) if include_deleted is True else list(self._live_plans())

    # ----- selections ----------------------------------------------------------------------
    def create_backup_selection(
        self, backup_plan_id: str, document: dict[str, Any] | None, creator_request_id: str | None
    ) -> Selection:
        """Checks the selection as AWS does; a repeated CreatorRequestId returns the first selection.

        Simplification: the role must be an IAM role ARN; whether it exists is asked when the plan runs.
        """
        if backup_plan_id not in self.plans or self.plans[backup_plan_id].deletion_date is not None:
            raise InvalidParameterValueException(msg=f"Invalid backup plan ID: {backup_plan_id}")
        document = document or {}
        for member in ("SelectionName", "IamRoleArn"):
            if not document.get(member):
                raise MissingParameterValueException(msg=f"BackupSelection.{member} is required.")
        earlier = self.selections.get(backup_plan_id, {}).values()
        repeated = [s for s in earlier if creator_request_id and s.creator_request_id == creator_request_id]
        if repeated:
            return repeated[0]
        if not SELECTION_NAME.match(document["SelectionName"]):
            raise InvalidParameterValueException(
                msg=f"Invalid SelectionName: {document['SelectionName']!r}: 1 to 50 letters, digits and - _ ."
            )
        role = parse_arn(document["IamRoleArn"])
        if role["service"] != "iam" or not role["resource"].startswith("role/"):
            raise InvalidParameterValueException(msg=f"Invalid IAM role ARN: {document['IamRoleArn']}")
        if not document.get("Resources") and not document.get("ListOfTags"):
            raise InvalidParameterValueException(msg=MSG_EMPTY_SELECTION)
        for pattern in [*(document.get("Resources") or []), *(document.get("NotResources") or [])]:
            if pattern != "*":
                parse_arn(pattern)
        for entry in document.get("ListOfTags") or []:
            if entry.get("ConditionType") != "STRINGEQUALS":
                raise InvalidParameterValueException(
                    msg=f"Invalid ConditionType: {entry.get('ConditionType')!r}; ListOfTags supports STRINGEQUALS only."
                )
        selection = Selection(str(mock_random.uuid4()), backup_plan_id, document, creator_request_id)
        self.selections.setdefault(backup_plan_id, {})[selection.selection_id] = selection
        return selection

    def get_backup_selection(self, backup_plan_id: str, selection_id: str) -> Selection:
        selection = self.selections.get(backup_plan_id, {}).get(selection_id)
        if selection is None:
            raise ResourceNotFoundException(
                msg=f"Backup selection {selection_id} does not exist in backup plan {backup_plan_id}."
            )
        return selection

    def list_backup_selections(self, backup_plan_id: str) -> list[Selection]:
        """Simplification: no paging."""
        if backup_plan_id not in self.plans:
            raise ResourceNotFoundException(msg=MSG_PLAN_NOT_FOUND)
        return list(self.selections.get(backup_plan_id, {}).values())

    def delete_backup_selection(self, backup_plan_id: str, selection_id: str) -> None:
        self.get_backup_selection(backup_plan_id, selection_id)
        del self.selections[backup_plan_id][selection_id]

    # ----- running a plan ------------------------------------------------------------------
    def plan_named(self, name_or_id: str) -> Plan | None:
        """The plan (not deleted) with this ID, else the one with this name; None when there is none.

        Simplification: of plans sharing a name, the first created.
        """
        plan = self.plans.get(name_or_id)
        if plan is not None and plan.deletion_date is None:
            return plan
        return next((p for p in self._live_plans() if p.backup_plan["BackupPlanName"] == name_or_id), None)

    def live_plan_names(self) -> list[str]:
        return sorted(plan.backup_plan["BackupPlanName"] for plan in self._live_plans())

    def run_backup_plan(self, plan: Plan) -> list[BackupJob]:
        """Starts every rule of the plan now, as its schedule would: each resource its selections take is
        backed up into the rule's vault, with the rule's lifecycle and tags and the role of the first
        selection that takes it; each completed backup starts the rule's copy actions (jobs.py).

        A job AWS would start and fail (the vault or the role gone) ends FAILED with AWS's words.
        Simplification: the schedule, start and completion windows are not played; a plan runs when asked.
        """
        self.settle_due_jobs()
        plan.last_execution_date = unix_time()  # type: ignore[assignment]  # moto types it None: it never runs a plan
        started = []
        chosen = self._selected_resources(plan.backup_plan_id)
        for rule in plan.backup_plan["Rules"]:
            created_by = {
                "BackupPlanId": plan.backup_plan_id,
                "BackupPlanArn": plan.backup_plan_arn,
                "BackupPlanName": plan.backup_plan["BackupPlanName"],
                "BackupPlanVersion": plan.version_id,
                "BackupRuleId": rule["RuleId"],
                "BackupRuleName": rule["RuleName"],
                "BackupRuleCron": rule["ScheduleExpression"],
                "BackupRuleTimezone": rule["ScheduleExpressionTimezone"],
            }
            for arn, role in chosen.items():
                started.append(self._run_rule_on(rule, arn, role, created_by))
        return started

    def _run_rule_on(self, rule: dict[str, Any], arn: str, role: str, created_by: dict[str, str]) -> BackupJob:
        vault_name = rule["TargetBackupVaultName"]
        try:
            return self._begin_backup(
                vault_name,
                arn,
                role,
                rule.get("Lifecycle"),
                rule.get("RecoveryPointTags"),
                created_by=created_by,
                copy_actions=rule.get("CopyActions") or [],
            )
        except JsonRESTError as refusal:
            message = refusal.message
            if vault_name not in self.vaults:
                vault_arn = f"arn:aws:backup:{self.region_name}:{self.account_id}:backup-vault:{vault_name}"
                message = MSG_VAULT_GONE.format(vault_arn=vault_arn)
            return self._failed_backup(vault_name, arn, role, message, created_by)

    def _selected_resources(self, backup_plan_id: str) -> dict[str, str]:
        """Resource ARN -> the role of the first of the plan's selections that takes it."""
        chosen: dict[str, str] = {}
        selections = list(self.selections.get(backup_plan_id, {}).values())
        for arn, tags in self._protectable_resources():
            role = next((s.document["IamRoleArn"] for s in selections if s.selects(arn, tags)), None)
            if role is not None:
                chosen[arn] = role
        return chosen

    def _protectable_resources(self) -> Iterator[tuple[str, dict[str, str]]]:
        """(ARN, tags) of every resource of this account and Region a backup may protect: EBS volumes,
        RDS DB instances and EFS file systems."""
        account, region = self.account_id, self.region_name
        ec2 = ec2_backends[account][region]
        for volume_id in ec2.volumes:
            yield f"arn:aws:ec2:{region}:{account}:volume/{volume_id}", dict(ec2.tags.get(volume_id, {}))
        for database in rds_backends[account][region].databases.values():
            yield database.arn, {tag["Key"]: tag["Value"] for tag in database.tags}
        efs = efs_backends[account][region]
        for file_system in efs.file_systems_by_id.values():
            tags = efs.tagging_service.get_tag_dict_for_resource(file_system.file_system_id)
            yield file_system.file_system_arn, tags
