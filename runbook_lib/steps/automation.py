"""Step 09, hand over to AWS Backup: a backup plan in the source account whose rule copies every backup
into the destination vault, a selection of what it backs up, and an alert when a copy fails.

A person re-running notebooks is not a daily backup. The plan's rule backs up into the source vault on
`plan_schedule` with the run's lifecycle and tags, and its copy action targets the destination vault's
ARN with the same lifecycle. The selection takes the resources carrying `selection_tags` (or, without
tags, the run's resources by ARN) with the run's backup role. EventBridge sends every "Copy Job State
Change" event whose state is FAILED to the SNS topic `alert_topic_name`, whose policy lets EventBridge
(that rule only) publish. The copy action meets the same rules as the run's copy, so the same checks
run first. Each piece is a Change that finds what is already there: run twice, the second run changes
nothing. AWS cannot update a selection: a different one is replaced (deleted, then created).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ..aws import vaults
from ..aws.context import Run, selection
from ..core import arns, param_values
from ..core.changes import Change, policy_diff
from ..core.errors import StepFailed
from ..core.steps import AUTOMATE
from ..troubleshooting import checks
from .reliance import Reliance

log = logging.getLogger(__name__)

RULE_NAME = "CrossAccountCopy"
# Tags naming the run folder whose step 09 made a plan, a rule or a topic: another run's step 09 finds the plan
# is not its own and will not overwrite it unasked (take_over_plan).
OWNER_TAG, FOLDER_TAG = "runbook-run", "runbook-run-folder"
TOPIC_SID = "RunbookAllowEventBridgeToPublish"
PLANNED = "(planned, not made yet)"
LIFECYCLE_KEYS = ("DeleteAfterDays", "MoveToColdStorageAfterDays")  # what a run sets; AWS may add others
# The checks a plan's copy action must pass: those of the run's copy, but a plan makes its own backups.
COPY_ACTION_CHECKS = tuple(c for c in checks.BEFORE_COPY if c != "recovery-point-ready")


def failed_copy_pattern() -> dict[str, Any]:
    """The EventBridge pattern of a copy job AWS Backup ended FAILED."""
    return {"source": ["aws.backup"], "detail-type": ["Copy Job State Change"], "detail": {"state": ["FAILED"]}}


def rule_name(run: Run) -> str:
    return f"{run.plan_name}-copy-failed"


def selection_name(run: Run) -> str:
    return f"{run.plan_name}-selection"


def topic_arn(run: Run) -> str:
    region = run.source_region
    return f"arn:{arns.partition(region)}:sns:{region}:{run.account('source')}:{run.alert_topic_name}"


def events_rule_arn(run: Run) -> str:
    return (
        f"arn:{arns.partition(run.source_region)}:events:{run.source_region}:{run.account('source')}:"
        f"rule/{rule_name(run)}"
    )


def plan_document(run: Run) -> dict[str, Any]:
    """The backup plan as step 09 wants it: one rule, its copy action to the destination vault."""
    lifecycle = run.lifecycle()
    return {
        "BackupPlanName": run.plan_name,
        "Rules": [
            {
                "RuleName": RULE_NAME,
                "TargetBackupVaultName": run.source_vault_name,
                "ScheduleExpression": run.plan_schedule,
                "Lifecycle": lifecycle,
                "RecoveryPointTags": dict(run.recovery_point_tags),
                "CopyActions": [{"DestinationBackupVaultArn": run.target_vault_arn, "Lifecycle": lifecycle}],
            }
        ],
    }


def selection_document(run: Run, role_arn: str) -> dict[str, Any]:
    """What the plan backs up: the resources carrying selection_tags, or the run's resources by ARN."""
    chosen: dict[str, Any] = {"SelectionName": selection_name(run), "IamRoleArn": role_arn}
    if run.selection_tags:  # Conditions must all hold (ListOfTags would take a resource with any one tag)
        chosen["Resources"] = ["*"]
        chosen["Conditions"] = {
            "StringEquals": [
                {"ConditionKey": f"aws:ResourceTag/{key}", "ConditionValue": value}
                for key, value in sorted(run.selection_tags.items())
            ]
        }
    else:
        chosen["Resources"] = selection(run)
    return chosen


def _as_wanted(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A plan's rules as AWS returns them, reduced to what step 09 sets (AWS adds IDs and defaults)."""
    keys = ("RuleName", "TargetBackupVaultName", "ScheduleExpression", "RecoveryPointTags")

    def lifecycle(found: dict[str, Any] | None) -> dict[str, Any]:
        return {k: v for k, v in (found or {}).items() if k in LIFECYCLE_KEYS}

    return [
        {
            **{key: rule[key] for key in keys if key in rule},
            "Lifecycle": lifecycle(rule.get("Lifecycle")),
            "CopyActions": [
                {
                    "DestinationBackupVaultArn": a["DestinationBackupVaultArn"],
                    "Lifecycle": lifecycle(a.get("Lifecycle")),
                }
                for a in rule.get("CopyActions", [])
            ],
        }
        for rule in rules
    ]


def find_plan(run: Run, name: str = "") -> dict[str, Any] | None:
    """The source account's backup plan of this name (plan_name by default), with its ID and rules, or None."""
    backup = run.source("backup")
    for page in backup.get_paginator("list_backup_plans").paginate():
        for listed in page["BackupPlansList"]:
            if listed["BackupPlanName"] == (name or run.plan_name):
                found = backup.get_backup_plan(BackupPlanId=listed["BackupPlanId"])
                return {"id": found["BackupPlanId"], "arn": found["BackupPlanArn"], "plan": found["BackupPlan"]}
    return None


def _topic_attributes(run: Run, arn: str) -> dict[str, str] | None:
    """The topic's attributes (its policy among them), or None when there is no such topic."""
    sns = run.source("sns")
    try:
        return dict(sns.get_topic_attributes(TopicArn=arn)["Attributes"])
    except sns.exceptions.NotFoundException:
        return None


def _rule(run: Run, name: str) -> dict[str, Any] | None:
    """The EventBridge rule as DescribeRule gives it, or None when there is no such rule."""
    events = run.source("events")
    try:
        return dict(events.describe_rule(Name=name))
    except events.exceptions.ResourceNotFoundException:
        return None


def _require_one_copy_job(run: Run) -> None:
    """A plan's copy action is one copy job: a type that needs two hops cannot be automated this way."""
    if run.copies_in_two_hops():
        raise StepFailed(
            run.step,
            "[rds-single-hop] a plan's copy action is one copy job, and this run copies its resource in two hops "
            "(two_hop_types names its type)",
            "automate one hop per plan (a plan in the source Region copying to the hop vault, and a plan there "
            "copying across accounts), or take the type out of two_hop_types where AWS copies it in one job",
        )


def owner_tags(run: Run) -> dict[str, str]:
    """The tags that name the run folder whose step 09 made (or took over) a plan, a rule or a topic: its ID,
    and its path as a tag value may hold it (a character AWS refuses in one becomes _, the end of a long one
    is kept)."""
    folder = "".join(c if param_values.tag_character_allowed(c) else "_" for c in str(run.state.directory.resolve()))
    return {OWNER_TAG: run.state.run_id(), FOLDER_TAG: folder if len(folder) <= 256 else f"...{folder[-253:]}"}


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    """Tags as SNS and EventBridge take them (Backup takes a mapping)."""
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def _tagged_owner(run: Run, plan_arn: str) -> str:
    """The run folder a plan's runbook-run tag names ('' when it has none)."""
    return str(run.source("backup").list_tags(ResourceArn=plan_arn).get("Tags", {}).get(OWNER_TAG, ""))


def plan_owner(run: Run, existing: dict[str, Any]) -> str | None:
    """Whose the existing plan is: None for this run's (its tag, or this run's log says it made it), else the
    run folder its tag names, or '' for a plan no run of the runbook made (by hand, another tool)."""
    if existing["plan"]["BackupPlanName"] in made_plans(run):
        return None
    owner = _tagged_owner(run, existing["arn"])
    return None if owner == run.state.run_id() else owner


def _refuse_to_overwrite(run: Run, existing: dict[str, Any], owner: str, plan: Change) -> StepFailed:
    """Another's plan, shown as it is, and the refusal to change it (take_over_plan says to)."""
    rule = (existing["plan"].get("Rules") or [{}])[0]
    copies = ", ".join(a["DestinationBackupVaultArn"] for a in rule.get("CopyActions", [])) or "nowhere"
    whose = f"run folder {owner} (its {OWNER_TAG} tag)" if owner else "no run of this runbook (it has no runbook tag)"
    log.info("%s", plan.describe())  # the diff: their plan (now) and what this run's parameters would make of it
    return StepFailed(
        run.step,
        f"backup plan {run.plan_name} was made by {whose}: it backs up on {rule.get('ScheduleExpression')} into "
        f"{rule.get('TargetBackupVaultName')}, kept {rule.get('Lifecycle', {}).get('DeleteAfterDays', '-')} days, and "
        f"copies to {copies}; this run's parameters would change it",
        "leave it to its run folder, or choose another plan_name; take_over_plan: true makes it this run's",
    )


def plan_changes(run: Run) -> list[Change]:
    """Every change step 09 plans, in the order they can be made: plan, selection, topic, its policy, rule,
    target. The copy action's checks run first and stop the step on a blocking failure, and so does a plan of
    plan_name that another run folder (or someone else) made, which this run's parameters would change."""
    _require_one_copy_job(run)
    checks.require(run, checks.run_checks(run, COPY_ACTION_CHECKS, as_planned=True))
    existing = find_plan(run)
    plan, chosen = _plan_change(run, existing), _selection_change(run, existing)
    owner = plan_owner(run, existing) if existing else None
    if owner is not None and (plan.needed or chosen.needed) and not run.take_over_plan:
        raise _refuse_to_overwrite(run, existing or {}, owner, plan if plan.needed else chosen)
    topic, topic_policy = _topic_changes(run)
    rule, target = _rule_changes(run)
    chosen.after = [plan.key] if plan.needed else []  # an Apply button waits for the change it needs
    topic_policy.after = [topic.key] if topic.needed else []
    target.after = [c.key for c in (rule, topic) if c.needed]
    return [plan, chosen, topic, topic_policy, rule, target]


def _plan_change(run: Run, existing: dict[str, Any] | None) -> Change:
    backup = run.source("backup")
    wanted = plan_document(run)
    before = {"BackupPlanName": run.plan_name, "Rules": _as_wanted(existing["plan"]["Rules"])} if existing else None

    def create() -> str:
        made = backup.create_backup_plan(BackupPlan=wanted, BackupPlanTags=owner_tags(run))
        run.state.record(AUTOMATE, plan_id=made["BackupPlanId"], plan_arn=made["BackupPlanArn"])
        return str(made["BackupPlanId"])

    def update() -> str:
        assert existing is not None
        made = backup.update_backup_plan(BackupPlanId=existing["id"], BackupPlan=wanted)
        backup.tag_resource(ResourceArn=existing["arn"], Tags=owner_tags(run))  # this run's now (take_over_plan)
        run.state.record(AUTOMATE, plan_id=made["BackupPlanId"], plan_arn=made["BackupPlanArn"])
        return str(made["BackupPlanId"])

    if existing:
        run.state.record(AUTOMATE, plan_id=existing["id"], plan_arn=existing["arn"])
    needed = before != wanted
    missing = f"step 00_prerequisites creates vault {run.source_vault_name}"

    def vault_missing() -> str:
        return missing if vaults.find(run.source_profile, run.source_region, run.source_vault_name) is None else ""

    what = "create" if existing is None else "update"
    return Change(
        run.step,
        run.source_profile,
        run.source_region,
        f"backup:{what.capitalize()}BackupPlan",
        run.plan_name,
        f"{what} backup plan {run.plan_name}: rule {RULE_NAME} backs up into {run.source_vault_name} on "
        f"{run.plan_schedule} and copies each backup to {run.target_vault_arn}",
        create if existing is None else update,
        needed=needed,
        diff=policy_diff(before, wanted, "backup plan") if needed else "",
        nothing_to_do="the plan is in place as planned",
        blocked_by=vault_missing() if run.dry_run else "",
        precheck=vault_missing,
        effect={"kind": "backup-plan", "name": run.plan_name},
    )


def _comparable(found: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """A selection as AWS returns it, reduced to what step 09 sets (AWS lists every operator, empty)."""
    reduced = {key: value for key, value in found.items() if key in wanted}
    if "Conditions" in reduced:
        reduced["Conditions"] = {op: listed for op, listed in reduced["Conditions"].items() if listed}
    return reduced


def _selection_change(run: Run, existing: dict[str, Any] | None) -> Change:
    backup = run.source("backup")
    wanted = selection_document(run, run.role_arn)
    found = None
    if existing:
        pages = backup.get_paginator("list_backup_selections").paginate(BackupPlanId=existing["id"])
        listed = [
            s for page in pages for s in page["BackupSelectionsList"] if s["SelectionName"] == wanted["SelectionName"]
        ]
        if listed:
            selection_id = listed[0]["SelectionId"]
            current = backup.get_backup_selection(BackupPlanId=existing["id"], SelectionId=selection_id)
            found = {"id": selection_id, "selection": current["BackupSelection"]}
    before = _comparable(found["selection"], wanted) if found else None

    def replace() -> str:
        plan_id = run.state.get(AUTOMATE, "plan_id") or (existing or {}).get("id")
        if found:
            backup.delete_backup_selection(BackupPlanId=plan_id, SelectionId=found["id"])
        made = backup.create_backup_selection(BackupPlanId=plan_id, BackupSelection=wanted)
        run.state.record(AUTOMATE, selection_id=made["SelectionId"])
        return str(made["SelectionId"])

    what = ", ".join(f"{k}={v}" for k, v in sorted(run.selection_tags.items())) or ", ".join(
        wanted.get("Resources", [])
    )
    return Change(
        run.step,
        run.source_profile,
        run.source_region,
        "backup:CreateBackupSelection",
        f"{run.plan_name}/{wanted['SelectionName']}",
        f"{'replace' if found else 'create'} selection {wanted['SelectionName']}: back up {what} as "
        f"{wanted['IamRoleArn']}" + (" (AWS cannot update a selection: the old one is deleted first)" if found else ""),
        replace,
        needed=before != wanted,
        diff=policy_diff(before, wanted, "backup selection") if before != wanted else "",
        nothing_to_do="the selection is in place as planned",
        blocked_by="" if existing or not run.dry_run else f"the backup plan {PLANNED}",
        precheck=lambda: "" if find_plan(run) else "the backup plan does not exist yet",
    )


def _topic_policy(run: Run, current: str | None) -> dict[str, Any]:
    """The topic's policy with the runbook's statement (EventBridge, this rule only); every other kept."""
    document: dict[str, Any] = json.loads(current) if current else {"Version": "2012-10-17", "Statement": []}
    listed = document.get("Statement", [])
    statements = [s for s in (listed if isinstance(listed, list) else [listed]) if s.get("Sid") != TOPIC_SID]
    statements.append(
        {
            "Sid": TOPIC_SID,
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": topic_arn(run),
            "Condition": {"ArnEquals": {"aws:SourceArn": events_rule_arn(run)}},
        }
    )
    return {**document, "Statement": statements}


def _topic_changes(run: Run) -> tuple[Change, Change]:
    sns = run.source("sns")
    arn = topic_arn(run)
    attributes = _topic_attributes(run, arn)
    exists, current = attributes is not None, (attributes or {}).get("Policy")
    wanted = _topic_policy(run, current)
    before = json.loads(current) if current else None
    own = next(s for s in wanted["Statement"] if s.get("Sid") == TOPIC_SID)
    in_place = before is not None and own in before.get("Statement", [])

    def create() -> str:
        made = sns.create_topic(Name=run.alert_topic_name, Tags=_tag_list(owner_tags(run)))["TopicArn"]
        run.state.record(AUTOMATE, topic_arn=made)
        return str(made)

    def put_policy() -> None:
        """From the policy as it is now: a topic made a moment ago has AWS's default statement, kept."""
        now = (_topic_attributes(run, arn) or {}).get("Policy")
        sns.set_topic_attributes(
            TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(_topic_policy(run, now))
        )

    def no_topic() -> str:
        return "" if _topic_attributes(run, arn) is not None else f"topic {run.alert_topic_name} does not exist yet"

    return (
        Change(
            run.step,
            run.source_profile,
            run.source_region,
            "sns:CreateTopic",
            arn,
            f"create SNS topic {run.alert_topic_name}, where failed copies are announced (subscribe to it)",
            create,
            needed=not exists,
            nothing_to_do="the topic exists",
        ),
        Change(
            run.step,
            run.source_profile,
            run.source_region,
            "sns:SetTopicAttributes",
            arn,
            f"let EventBridge rule {rule_name(run)} publish to {run.alert_topic_name}",
            put_policy,
            needed=not in_place,
            diff=policy_diff(before, wanted, "topic policy") if not in_place else "",
            nothing_to_do="the topic's policy lets the rule publish",
            blocked_by="" if exists or not run.dry_run else f"the topic {PLANNED}",
            precheck=no_topic,
        ),
    )


def _rule_changes(run: Run) -> tuple[Change, Change]:
    events = run.source("events")
    name = rule_name(run)
    pattern = failed_copy_pattern()
    described = _rule(run, name)
    exists = described is not None
    found = (json.loads(described.get("EventPattern") or "null"), described.get("State")) if described else None
    rule_ok = found == (pattern, "ENABLED")
    targets = [t["Arn"] for t in events.list_targets_by_rule(Rule=name)["Targets"]] if exists else []

    def put_rule() -> None:
        if not exists:  # cleanup takes back only a rule this run made
            run.state.record(AUTOMATE, rule_created=name)
        made = events.put_rule(
            Name=name,
            EventPattern=json.dumps(pattern),
            State="ENABLED",
            Description="AWS Backup copy jobs that end FAILED, sent to the runbook's alert topic",
            **({"Tags": _tag_list(owner_tags(run))} if not exists else {}),
        )
        run.state.record(AUTOMATE, rule_arn=made["RuleArn"])

    def no_rule() -> str:
        return "" if _rule(run, name) is not None else f"rule {name} does not exist yet"

    def put_target() -> None:
        answer = events.put_targets(Rule=name, Targets=[{"Id": "alert-topic", "Arn": topic_arn(run)}])
        if answer.get("FailedEntryCount"):
            raise StepFailed(run.step, f"EventBridge refused the target: {answer['FailedEntries']}", "read the message")

    return (
        Change(
            run.step,
            run.source_profile,
            run.source_region,
            "events:PutRule",
            name,
            f"EventBridge rule {name}: every copy job that ends FAILED ({json.dumps(pattern)})",
            put_rule,
            needed=not rule_ok,
            nothing_to_do="the rule is in place as planned",
        ),
        Change(
            run.step,
            run.source_profile,
            run.source_region,
            "events:PutTargets",
            name,
            f"send the rule's events to {topic_arn(run)}",
            put_target,
            needed=topic_arn(run) not in targets,
            nothing_to_do="the rule sends to the topic",
            blocked_by="" if exists or not run.dry_run else f"the rule {PLANNED}",
            precheck=no_rule,
        ),
    )


def summary(run: Run) -> str:
    """What the automation is, in one line, once applied (or what it will be)."""
    made = run.state.get(AUTOMATE, "plan_id")
    where = f"plan {run.plan_name} ({made})" if made else f"plan {run.plan_name} {PLANNED}"
    return (
        f"{where} backs up on {run.plan_schedule} into {run.source_vault_name} and copies to "
        f"{run.target_vault_arn}; failed copies go to {topic_arn(run)}."
    )


# ----- taking it back (step 07) -------------------------------------------------------------------


def made_plans(run: Run) -> list[str]:
    """The names of the backup plans step 09 of this run made."""
    return _made(run, "backup:CreateBackupPlan")


def _made(run: Run, action: str) -> list[str]:
    """The targets of this action that the run's change log says step 09 made."""
    return sorted(
        {
            e["target"]
            for e in run.state.changes.entries()
            if e["step"] == AUTOMATE and e["action"] == action and e["outcome"] == "applied"
        }
    )


def _taking_back(run: Run, action: str, target: str, what: str, do: Any, exists: bool) -> Change:
    return Change(
        run.step,
        run.source_profile,
        run.source_region,
        action,
        target,
        f"delete {what} (step 09 made it)",
        do,
        needed=exists,
        nothing_to_do="already deleted, nothing to change",
    )


def _kept_for_others(run: Run, plan: dict[str, Any], seen: Reliance) -> list[str]:
    """Who uses a plan this run made, now: a run folder that took it over (its tag names that run) or that
    relies on it as it is (its state names the plan)."""
    owner = _tagged_owner(run, plan["arn"])
    users = [f"run folder {owner} took it over (its {OWNER_TAG} tag)"] if owner and owner != run.state.run_id() else []
    return users + [f"{name} relies on it" for name in seen.using_plan(plan["id"])]


def removals(run: Run, seen: Reliance) -> list[Change]:
    """What step 09 made, taken back: the plan (its selections first: AWS deletes no plan that has
    any), the rule (its targets first) and the topic. Nothing the run did not create, and nothing another run
    folder now uses (the plan, and with it its rule and topic, stay, saying who uses them)."""
    backup, events, sns = run.source("backup"), run.source("events"), run.source("sns")
    changes = []
    kept = False
    for name in _made(run, "backup:CreateBackupPlan"):
        found = find_plan(run, name)
        users = _kept_for_others(run, found, seen) if found else []
        if users:
            kept = True
            changes.append(
                Change(
                    run.step,
                    run.source_profile,
                    run.source_region,
                    "backup:DeleteBackupPlan",
                    name,
                    f"keep backup plan {name} (step 09 made it), its rule and its topic: another run folder uses them",
                    lambda: None,
                    needed=False,
                    notes=[f"they rely on it: {'; '.join(users)}", "once they no longer do, run cleanup again"],
                    nothing_to_do="kept: others rely on it",
                )
            )
            continue

        def delete_plan(plan: dict[str, Any] | None = found) -> None:
            assert plan is not None
            pages = backup.get_paginator("list_backup_selections").paginate(BackupPlanId=plan["id"])
            for listed in [s for page in pages for s in page["BackupSelectionsList"]]:
                backup.delete_backup_selection(BackupPlanId=plan["id"], SelectionId=listed["SelectionId"])
            backup.delete_backup_plan(BackupPlanId=plan["id"])

        changes.append(
            _taking_back(
                run, "backup:DeleteBackupPlan", name, f"backup plan {name} and its selections", delete_plan, bool(found)
            )
        )
    if kept:  # its rule and topic serve the plan: they stay with it
        return changes
    rule = run.state.get(AUTOMATE, "rule_created")  # a rule found in place is someone else's
    if rule:

        def delete_rule() -> None:
            ids = [t["Id"] for t in events.list_targets_by_rule(Rule=rule)["Targets"]]
            if ids:
                events.remove_targets(Rule=rule, Ids=ids)
            events.delete_rule(Name=rule)

        exists = _rule(run, rule) is not None
        changes.append(
            _taking_back(
                run, "events:DeleteRule", rule, f"EventBridge rule {rule} and its targets", delete_rule, exists
            )
        )
    for arn in _made(run, "sns:CreateTopic"):

        def delete_topic(topic: str = arn) -> None:
            sns.delete_topic(TopicArn=topic)

        exists = _topic_attributes(run, arn) is not None
        changes.append(
            _taking_back(
                run, "sns:DeleteTopic", arn, f"SNS topic {arn} (its subscriptions go with it)", delete_topic, exists
            )
        )
    return changes
