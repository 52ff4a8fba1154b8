"""One test per backup plan and selection operation: what works, and AWS's error when it does not."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from aws_errors import assert_error
from botocore.config import Config
from botocore.exceptions import ClientError

from runbook_lib.aws import clients
from runbook_sandbox.accounts import SOURCE_REGION
from runbook_sandbox.backup.plans import MSG_EMPTY_SELECTION, MSG_PLAN_HAS_SELECTIONS, MSG_PLAN_NOT_FOUND
from runbook_sandbox.testing.walkthrough import ROLE_ARN, SOURCE_VAULT, TARGET_VAULT_ARN

PLAN = {
    "BackupPlanName": "DailyToTarget",
    "Rules": [
        {
            "RuleName": "Daily",
            "TargetBackupVaultName": SOURCE_VAULT,
            "ScheduleExpression": "cron(0 5 ? * * *)",
            "Lifecycle": {"DeleteAfterDays": 35},
            "RecoveryPointTags": {"runbook": "plan"},
            "CopyActions": [{"DestinationBackupVaultArn": TARGET_VAULT_ARN, "Lifecycle": {"DeleteAfterDays": 30}}],
        }
    ],
}
SELECTION = {
    "SelectionName": "walkthrough-volume",
    "IamRoleArn": ROLE_ARN,
    "ListOfTags": [{"ConditionType": "STRINGEQUALS", "ConditionKey": "Name", "ConditionValue": "walkthrough-volume"}],
}


@pytest.fixture
def backup(aws: Any) -> Any:
    return aws.source("backup")


@pytest.fixture
def plan_id(backup: Any) -> str:
    return backup.create_backup_plan(BackupPlan=copy.deepcopy(PLAN))["BackupPlanId"]


def selection_of(backup: Any, plan_id: str, **changes: Any) -> str:
    return backup.create_backup_selection(BackupPlanId=plan_id, BackupSelection={**SELECTION, **changes})["SelectionId"]


def test_create_backup_plan_keeps_copy_actions_as_given(backup, plan_id):
    rule = backup.get_backup_plan(BackupPlanId=plan_id)["BackupPlan"]["Rules"][0]
    assert rule["CopyActions"] == PLAN["Rules"][0]["CopyActions"]
    assert (rule["Lifecycle"], rule["RecoveryPointTags"]) == ({"DeleteAfterDays": 35}, {"runbook": "plan"})
    assert (rule["StartWindowMinutes"], rule["CompletionWindowMinutes"]) == (480, 10080)
    assert rule["ScheduleExpressionTimezone"] == "Etc/UTC" and rule["RuleId"]
    with pytest.raises(ClientError) as excinfo:
        backup.create_backup_plan(BackupPlan=copy.deepcopy(PLAN))
    assert_error(excinfo, "AlreadyExistsException", "Backup plan with the same plan document already exists")
    other = copy.deepcopy(PLAN)
    other["Rules"][0]["Lifecycle"] = {"DeleteAfterDays": 7}
    assert backup.create_backup_plan(BackupPlan=other)["BackupPlanId"] != plan_id, "plans may share a name"
    wrong = copy.deepcopy(PLAN)
    wrong["Rules"][0]["CopyActions"][0]["Lifecycle"] = {"MoveToColdStorageAfterDays": 30, "DeleteAfterDays": 60}
    with pytest.raises(ClientError) as excinfo:
        backup.create_backup_plan(BackupPlan=wrong)
    assert_error(
        excinfo,
        "InvalidParameterValueException",
        "Invalid lifecycle. DeleteAfterDays (60) must be at least 90 days greater than "
        "MoveToColdStorageAfterDays (30).",
    )


def test_get_backup_plan_unknown_id(backup):
    with pytest.raises(ClientError) as excinfo:
        backup.get_backup_plan(BackupPlanId="00000000-0000-0000-0000-000000000000")
    assert_error(excinfo, "ResourceNotFoundException", MSG_PLAN_NOT_FOUND)


def test_list_backup_plans_with_and_without_deleted(backup, plan_id):
    backup.delete_backup_plan(BackupPlanId=plan_id)
    assert backup.list_backup_plans(IncludeDeleted=False)["BackupPlansList"] == []
    listed = backup.list_backup_plans(IncludeDeleted=True)["BackupPlansList"]
    assert [(p["BackupPlanName"], "DeletionDate" in p) for p in listed] == [("DailyToTarget", True)]


def test_update_backup_plan_makes_a_version_and_keeps_rule_ids_by_name(backup, plan_id):
    before = backup.get_backup_plan(BackupPlanId=plan_id)
    changed = copy.deepcopy(PLAN)
    changed["Rules"][0]["CopyActions"][0]["Lifecycle"] = {"DeleteAfterDays": 90}
    changed["Rules"].append({"RuleName": "Weekly", "TargetBackupVaultName": SOURCE_VAULT})
    updated = backup.update_backup_plan(BackupPlanId=plan_id, BackupPlan=changed)
    assert updated["BackupPlanId"] == plan_id and updated["VersionId"] != before["VersionId"]
    after = backup.get_backup_plan(BackupPlanId=plan_id)
    rules = after["BackupPlan"]["Rules"]
    assert rules[0]["RuleId"] == before["BackupPlan"]["Rules"][0]["RuleId"]
    assert rules[0]["CopyActions"][0]["Lifecycle"] == {"DeleteAfterDays": 90}
    assert rules[1]["RuleName"] == "Weekly" and rules[1]["RuleId"] != rules[0]["RuleId"]
    with pytest.raises(ClientError) as excinfo:
        backup.update_backup_plan(BackupPlanId="nope", BackupPlan=changed)
    assert_error(excinfo, "ResourceNotFoundException", MSG_PLAN_NOT_FOUND)


def test_delete_backup_plan_refuses_a_plan_with_selections(backup, plan_id):
    selection_id = selection_of(backup, plan_id)
    with pytest.raises(ClientError) as excinfo:
        backup.delete_backup_plan(BackupPlanId=plan_id)
    assert_error(excinfo, "InvalidRequestException", MSG_PLAN_HAS_SELECTIONS)
    backup.delete_backup_selection(BackupPlanId=plan_id, SelectionId=selection_id)
    assert "DeletionDate" in backup.delete_backup_plan(BackupPlanId=plan_id)


def test_create_backup_selection_by_tags_and_by_resources(backup, plan_id):
    by_tags = backup.create_backup_selection(BackupPlanId=plan_id, BackupSelection=SELECTION)
    assert by_tags["BackupPlanId"] == plan_id and by_tags["CreationDate"]
    arns = [f"arn:aws:ec2:{SOURCE_REGION}:222222222222:volume/*"]
    by_arns = selection_of(backup, plan_id, SelectionName="volumes", ListOfTags=[], Resources=arns)
    got = backup.get_backup_selection(BackupPlanId=plan_id, SelectionId=by_arns)["BackupSelection"]
    assert (got["Resources"], got["IamRoleArn"]) == (arns, ROLE_ARN)
    with pytest.raises(ClientError) as excinfo:
        selection_of(backup, plan_id, SelectionName="nothing", ListOfTags=[])
    assert_error(excinfo, "InvalidParameterValueException", MSG_EMPTY_SELECTION)
    bad_type = [{"ConditionType": "STRINGLIKE", "ConditionKey": "Name", "ConditionValue": "x"}]
    with pytest.raises(ClientError) as excinfo:
        selection_of(backup, plan_id, SelectionName="like", ListOfTags=bad_type)
    assert_error(
        excinfo,
        "InvalidParameterValueException",
        "Invalid ConditionType: 'STRINGLIKE'; ListOfTags supports STRINGEQUALS only.",
    )


def test_create_backup_selection_without_a_role(world, plan_id):
    """boto3 refuses a selection without IamRoleArn before sending it; a client that sends it meets AWS's refusal."""
    unchecked = clients.session("sandbox-source").create_client(
        "backup", region_name=SOURCE_REGION, config=Config(parameter_validation=False)
    )
    without_role = {k: v for k, v in SELECTION.items() if k != "IamRoleArn"}
    with pytest.raises(ClientError) as excinfo:
        unchecked.create_backup_selection(BackupPlanId=plan_id, BackupSelection=without_role)
    assert_error(excinfo, "MissingParameterValueException", "BackupSelection.IamRoleArn is required.")


def test_get_backup_selection_unknown_id(backup, plan_id):
    with pytest.raises(ClientError) as excinfo:
        backup.get_backup_selection(BackupPlanId=plan_id, SelectionId="nope")
    assert_error(
        excinfo, "ResourceNotFoundException", f"Backup selection nope does not exist in backup plan {plan_id}."
    )


def test_list_backup_selections(backup, plan_id):
    selection_id = selection_of(backup, plan_id)
    listed = backup.list_backup_selections(BackupPlanId=plan_id)["BackupSelectionsList"]
    assert [(s["SelectionId"], s["SelectionName"], s["IamRoleArn"]) for s in listed] == [
        (selection_id, "walkthrough-volume", ROLE_ARN)
    ]
    with pytest.raises(ClientError) as excinfo:
        backup.list_backup_selections(BackupPlanId="nope")
    assert_error(excinfo, "ResourceNotFoundException", MSG_PLAN_NOT_FOUND)


def test_delete_backup_selection(backup, plan_id):
    selection_id = selection_of(backup, plan_id)
    backup.delete_backup_selection(BackupPlanId=plan_id, SelectionId=selection_id)
    assert backup.list_backup_selections(BackupPlanId=plan_id)["BackupSelectionsList"] == []
    with pytest.raises(ClientError) as excinfo:
        backup.delete_backup_selection(BackupPlanId=plan_id, SelectionId=selection_id)
    assert_error(
        excinfo,
        "ResourceNotFoundException",
        f"Backup selection {selection_id} does not exist in backup plan {plan_id}.",
    )
