"""The whole set-up as CloudFormation, for teams that deploy by infrastructure as code.

A stack lives in one account, so there are two templates. The destination account's holds its vault
under its key, with the access policy that lets the source account copy in. The source account's
holds the source vault, the backup plan with its copy action, the selection, the alert topic with its
policy and the EventBridge rule. Two things CloudFormation cannot own are written into the source
template's Metadata, for the people who own them: the statements the keys that encrypt the selected
resources need in their policy (an existing key's policy is not a stack's), and the organization's
cross-account backup setting (its management account's). Writing them makes no AWS change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..aws import keys, vaults
from ..aws.context import Run, selection
from ..core.steps import AUTOMATE
from . import automation
from .encryption import backup_key_arn

FOLDER = "cloudformation"


class _NoAliases(yaml.SafeDumper):
    """YAML without anchors and aliases: CloudFormation rejects them (a value used twice is written twice)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


TEMPLATE_VERSION = "2010-09-09"


def _key_arn(run: Run, side: str, key_ref: str) -> str:
    return keys.describe(*run.side(side), key_ref).arn


def target_template(run: Run) -> dict[str, Any]:
    """The destination account's stack: its vault, under its key, open to the source account's copies."""
    policy = {"Version": "2012-10-17", "Statement": [vaults.allow_statement(run.account("source"), run.target_region)]}
    return {
        "AWSTemplateFormatVersion": TEMPLATE_VERSION,
        "Description": f"Destination vault {run.target_vault_name} for copies from account {run.account('source')}",
        "Resources": {
            "DestinationVault": {
                "Type": "AWS::Backup::BackupVault",
                "Properties": {
                    "BackupVaultName": run.target_vault_name,
                    "EncryptionKeyArn": _key_arn(run, "target", run.target_vault_key),
                    "AccessPolicy": policy,
                },
            }
        },
        "Outputs": {"DestinationVaultArn": {"Value": {"Fn::GetAtt": ["DestinationVault", "BackupVaultArn"]}}},
    }


def _rule(run: Run) -> dict[str, Any]:
    rule = automation.plan_document(run)["Rules"][0]
    return {
        "RuleName": rule["RuleName"],
        "TargetBackupVault": {"Ref": "SourceVault"},
        "ScheduleExpression": rule["ScheduleExpression"],
        "Lifecycle": rule["Lifecycle"],
        "RecoveryPointTags": rule["RecoveryPointTags"],
        "CopyActions": rule["CopyActions"],
    }


def _selection(run: Run) -> dict[str, Any]:
    document = automation.selection_document(run, run.role_arn)
    chosen = {"SelectionName": document["SelectionName"], "IamRoleArn": document["IamRoleArn"]}
    chosen["Resources"] = document["Resources"]
    if "Conditions" in document:
        chosen["Conditions"] = document["Conditions"]
    return chosen


def _key_statements(run: Run) -> dict[str, Any]:
    """What the keys of the selected resources need in their policy, for their administrators."""
    chosen: Any = "every key that encrypts a selected resource's backups"
    if not run.selection_tags and len(selection(run)) == 1:
        chosen = [backup_key_arn(run, selection(run)[0])]
    return {
        "Why": "the destination account must be able to use the key that encrypts each backup it copies",
        "Keys": chosen,
        "Statements": keys.share_statements(run.account("target"), run.target_region),
    }


def source_template(run: Run) -> dict[str, Any]:
    """The source account's stack: source vault, plan with its copy action, selection, and the alert."""
    pattern = automation.failed_copy_pattern()
    return {
        "AWSTemplateFormatVersion": TEMPLATE_VERSION,
        "Description": f"Backup plan {run.plan_name}: backups copied to {run.target_vault_arn}; failed copies alerted",
        "Metadata": {
            "RunbookKeyPolicyStatements": _key_statements(run),
            "RunbookOrganizationSetting": (
                "cross-account backup enabled for the organization, from its management account: "
                "aws backup update-global-settings --global-settings isCrossAccountBackupEnabled=true"
            ),
        },
        "Resources": {
            "SourceVault": {
                "Type": "AWS::Backup::BackupVault",
                "Properties": {
                    "BackupVaultName": run.source_vault_name,
                    "EncryptionKeyArn": _key_arn(run, "source", run.source_vault_key),
                },
            },
            "BackupPlan": {
                "Type": "AWS::Backup::BackupPlan",
                "Properties": {"BackupPlan": {"BackupPlanName": run.plan_name, "BackupPlanRule": [_rule(run)]}},
            },
            "Selection": {
                "Type": "AWS::Backup::BackupSelection",
                "Properties": {"BackupPlanId": {"Ref": "BackupPlan"}, "BackupSelection": _selection(run)},
            },
            "AlertTopic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": run.alert_topic_name}},
            "AlertTopicPolicy": {
                "Type": "AWS::SNS::TopicPolicy",
                "Properties": {
                    "Topics": [{"Ref": "AlertTopic"}],
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": automation.TOPIC_SID,
                                "Effect": "Allow",
                                "Principal": {"Service": "events.amazonaws.com"},
                                "Action": "sns:Publish",
                                "Resource": {"Ref": "AlertTopic"},
                                "Condition": {
                                    "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["CopyFailedRule", "Arn"]}}
                                },
                            }
                        ],
                    },
                },
            },
            "CopyFailedRule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "Name": automation.rule_name(run),
                    "Description": "AWS Backup copy jobs that end FAILED",
                    "EventPattern": pattern,
                    "State": "ENABLED",
                    "Targets": [{"Id": "alert-topic", "Arn": {"Ref": "AlertTopic"}}],
                },
            },
        },
        "Outputs": {
            "BackupPlanArn": {"Value": {"Fn::GetAtt": ["BackupPlan", "BackupPlanArn"]}},
            "AlertTopicArn": {"Value": {"Ref": "AlertTopic"}},
        },
    }


def write(run: Run) -> list[Path]:
    """Both templates, as YAML in the run folder's cloudformation/ (recorded in the run's state)."""
    folder = Path(run.state.directory) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, template in (
        ("source-account.yaml", source_template(run)),
        ("target-account.yaml", target_template(run)),
    ):
        path = folder / name
        path.write_text(yaml.dump(template, Dumper=_NoAliases, sort_keys=False, width=120))
        written.append(path)
    run.state.record(AUTOMATE, templates=[str(p) for p in written])
    return written
