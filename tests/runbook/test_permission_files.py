"""The least-privilege policy files: every action and ARN is IAM's own (policy_sentry's definitions), no "*"
where IAM knows a resource type, parliament finds nothing, iam:PassRole is for AWS Backup only, nothing the steps
declare is lost; and a walkthrough with only these policies attached succeeds on the sandbox enforcing them,
while a policy without one action fails the step that needs it, with AWS's AccessDenied."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import parliament.statement
import pytest
from botocore.exceptions import ClientError
from parliament import analyze_policy_string
from policy_sentry.querying import actions as iam_actions
from policy_sentry.querying import arns as iam_arns

from runbook_lib.core import arns, param_files, params, permissions, policy_files
from runbook_lib.steps import automation
from runbook_sandbox import process
from runbook_sandbox.accounts import MANAGEMENT, SOURCE, TARGET
from tests.runbook_steps import command

ROOT = Path(__file__).resolve().parents[2]
SANDBOX_PARAMETERS = ROOT / "parameters" / "sandbox.yaml"
ACCOUNTS = {"source": SOURCE.account_id, "destination": TARGET.account_id, "management": MANAGEMENT.account_id}
SANDBOX_ROLES = {"source": SOURCE, "destination": TARGET, "management": MANAGEMENT}
DECLARED_FOR = {"source": permissions.SOURCE, "destination": permissions.TARGET, "management": permissions.MANAGEMENT}
# Stands for the key a caller reads of the run's resource (DescribeVolumes' KmsKeyId).
RESOURCE_KEY = f"arn:aws:kms:us-east-1:{SOURCE.account_id}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
PASS_TO_BACKUP = {"StringEquals": {"iam:PassedToService": "backup.amazonaws.com"}}
# Where a policy's resource may hold a wildcard: what the run makes (IDs it cannot know) or reads all of.
WILDCARDS = re.compile(
    r"\A(snapshot/\*|image/\*|recovery-point:\*|(cluster-)?snapshot:awsbackup:\*|key/\*|backup-plan:\*|volume/\*|"
    r"file-system/\*|(db|cluster):\*|policy/\*|role/\*/[\w+=,.@-]+)\Z"
)


def sandbox_values(**changes: Any) -> params.Parameters:
    return params.validate({**param_files.read(SANDBOX_PARAMETERS), **changes}, check_profiles=False)


VARIANTS: dict[str, Callable[[], params.Parameters]] = {
    "sandbox": sandbox_values,
    "fleet": lambda: params.validate(param_files.read(ROOT / "parameters" / "fleet.yaml"), check_profiles=False),
    "rds-two-hops": lambda: sandbox_values(
        resource_name="",
        resource_arn=f"arn:aws:rds:us-east-1:{SOURCE.account_id}:db:walkthrough-db",
        two_hop_types=["RDS"],
        hop_vault_name="HopVault",
        hop_vault_key=f"arn:aws:kms:eu-west-1:{SOURCE.account_id}:alias/cmkSourceHop",
        target_vault_key=f"arn:aws:kms:eu-west-1:{TARGET.account_id}:key/0fedcba9-8765-4321-0fed-cba987654321",
    ),
}


@pytest.fixture(params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest) -> tuple[params.Parameters, dict[str, dict[str, Any]]]:
    values = VARIANTS[request.param]()
    return values, policy_files.documents(values, ACCOUNTS, [RESOURCE_KEY])


# ----- the checks, each a list of problems -----------------------------------------------------------------


@cache
def action_rows(action: str) -> tuple[dict[str, Any], ...]:
    """policy_sentry's rows of an action (one per resource type, "*" for none), or () for no such action."""
    service, name = action.split(":", 1)
    rows = (iam_actions.get_action_data(service, name) or {}).get(service, [])
    return tuple(row for row in rows if row["action"] == action)  # IAM's spelling, exactly


def form_matches(arn: str, form: str) -> bool:
    """Whether a policy's resource ARN is of an ARN form IAM gives: ${...} any text (a * too), a literal * any,
    ":" and "/" alike between resource parts; and policy_sentry agrees (its vendor placeholder filled in)."""
    fields, shape = arn.split(":", 5), form.split(":", 5)
    if len(fields) != 6 or len(shape) != 6:
        return False
    for value, expected in zip(fields[:5], shape[:5], strict=True):
        if expected == "*" or (expected.startswith("${") and value):
            continue
        if value != expected:
            return False
    tokens = re.split(r"(\$\{[^}]+\}|\*|[:/])", shape[5])
    pattern = "".join(
        ".+" if t.startswith("${") else ".*" if t == "*" else "[:/]" if t in (":", "/") else re.escape(t)
        for t in tokens
    )
    return bool(re.fullmatch(pattern, fields[5])) and iam_arns.does_arn_match(arn, form.replace("${Vendor}", fields[2]))


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return list(document["Statement"])


def listed(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


def unknown_actions(document: dict[str, Any]) -> list[str]:
    return [f"{a} is no IAM action" for s in statements(document) for a in listed(s["Action"]) if not action_rows(a)]


def resources_off_form(document: dict[str, Any]) -> list[str]:
    """(a) Each resource is of an ARN form IAM gives the action (for every action of its statement)."""
    found = []
    for statement in statements(document):
        for action in listed(statement["Action"]):
            forms = [row["resource_arn_format"] for row in action_rows(action) if row["resource_arn_format"] != "*"]
            for arn in listed(statement["Resource"]):
                if arn != "*" and not any(form_matches(arn, form) for form in forms):
                    found.append(f"{statement['Sid']}: {arn} is not a resource of {action} ({forms})")
    return found


def star_where_typed(document: dict[str, Any]) -> list[str]:
    """(b) "*" only for actions IAM defines without a resource type, and never beside ARNs."""
    found = []
    for statement in statements(document):
        resources = listed(statement["Resource"])
        if "*" in resources and len(resources) > 1:
            found.append(f"{statement['Sid']}: * beside ARNs")
        if "*" in resources:
            typed = [
                a for a in listed(statement["Action"]) if any(r["resource_arn_format"] != "*" for r in action_rows(a))
            ]
            found += [f"{statement['Sid']}: {action} on * has a resource type" for action in typed]
    return found


def role_arn(values: params.Parameters, role: str) -> str:
    name = values.iam_role_name if role == "source" else values.restore_role_name
    return f"arn:{arns.partition(values.source_region)}:iam::{ACCOUNTS[role]}:role/{name}"


def pass_role_problems(document: dict[str, Any], values: params.Parameters, role: str) -> list[str]:
    """(d) iam:PassRole on the role's ARN alone, only to AWS Backup."""
    found = []
    for statement in statements(document):
        if any(a.lower() in ("iam:passrole", "iam:*", "*") for a in listed(statement["Action"])):
            if listed(statement["Resource"]) != [role_arn(values, role)]:
                found.append(f"{statement['Sid']}: iam:PassRole on {statement['Resource']}")
            if statement.get("Condition") != PASS_TO_BACKUP:
                found.append(f"{statement['Sid']}: iam:PassRole under {statement.get('Condition')}")
    return found


def declared(role: str) -> set[str]:
    """What the steps declare for the account, and what AWS authorizes beside those calls (permissions.IMPLIED)."""
    account = DECLARED_FOR[role]
    called = {action for accounts in permissions.STEP_PERMISSIONS.values() for action in accounts.get(account, ())}
    return called | permissions.implied(called)


def lost_or_extra(document: dict[str, Any], role: str) -> list[str]:
    """(e) Every action the steps declare for the account, and none they do not."""
    granted = {a for s in statements(document) for a in listed(s["Action"])}
    return [f"{a} is lost" for a in sorted(declared(role) - granted)] + [
        f"{a} is not declared" for a in sorted(granted - declared(role))
    ]


def unscoped(document: dict[str, Any], values: params.Parameters, role: str) -> list[str]:
    """Each ARN is the role's account (none for an EC2 snapshot's, any only for the policies attached to a role)
    in the run's Regions and partition, names the run's own vaults, and holds a wildcard only where the run
    cannot know the name (WILDCARDS); a key named by alias only under kms:ResourceAliases."""
    found = []
    vaults = {values.source_vault_name, values.target_vault_name, values.hop_vault_name or values.source_vault_name}
    for statement in statements(document):
        for arn in listed(statement["Resource"]):
            if arn == "*":
                continue
            _, partition, service, region, account, resource = arn.split(":", 5)
            if partition != arns.partition(values.source_region):
                found.append(f"{arn}: partition")
            if region not in {values.source_region, values.target_region} and service != "iam":
                found.append(f"{arn}: Region")
            if account not in (ACCOUNTS[role], "" if resource.startswith(("snapshot/", "image/")) else None):
                if not (account == "*" and resource == "policy/*"):
                    found.append(f"{arn}: account")
            if "*" in resource and not WILDCARDS.match(resource):
                found.append(f"{arn}: wildcard")
            if resource.startswith("backup-vault:") and resource.split(":", 1)[1] not in vaults:
                found.append(f"{arn}: not the run's vault")
        aliases = (statement.get("Condition") or {}).get("ForAnyValue:StringEquals", {}).get("kms:ResourceAliases")
        writes_keys = "kms:PutKeyPolicy" in listed(statement["Action"])
        if writes_keys and any(arn.endswith(":key/*") for arn in listed(statement["Resource"])):
            if not aliases or any("*" in alias for alias in aliases):
                found.append(f"{statement['Sid']}: kms:PutKeyPolicy on every key")
    return found


def sids_twice(document: dict[str, Any]) -> list[str]:
    sids = [s.get("Sid", "") for s in statements(document)]
    return [f"Sid {sid!r} is not one of a kind" for sid in sorted(set(sids)) if not sid or sids.count(sid) > 1]


def too_long(document: dict[str, Any]) -> list[str]:
    size = len(re.sub(r"\s", "", json.dumps(document)))
    return [f"{size} characters: over IAM's 6,144 for a managed policy"] if size > 6144 else []


@cache
def _privilege_with_resource_keys(service: str, action: str) -> dict[str, Any]:
    info = copy.deepcopy(ORIGINAL_PRIVILEGE_INFO(service, action))
    by_type = {r["resource"]: r["condition_keys"] for r in info["service_resources"]}
    for row in info["resource_types"]:
        row["condition_keys"] = [*row["condition_keys"], *by_type.get(row["resource_type"].rstrip("*"), [])]
    return info


ORIGINAL_PRIVILEGE_INFO = parliament.statement.get_privilege_info


@pytest.fixture
def parliament_knows_resource_condition_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """parliament 1.6.4 reads an action's condition keys from its own row only, not from its resource types' rows
    (duo-labs/parliament#145, open): it calls kms:ResourceAliases unknown for kms:PutKeyPolicy, where IAM (and
    policy_sentry) take it. Taught the resource types' keys from its own definitions, every check stays on."""
    monkeypatch.setattr(parliament.statement, "get_privilege_info", _privilege_with_resource_keys)


def parliament_findings(document: dict[str, Any]) -> list[str]:
    """(c) parliament's findings, none ignored."""
    return [f"{f.issue}: {f.detail}" for f in analyze_policy_string(json.dumps(document)).findings]


def problems(document: dict[str, Any], values: params.Parameters, role: str) -> list[str]:
    return (
        unknown_actions(document)
        + resources_off_form(document)
        + star_where_typed(document)
        + parliament_findings(document)
        + pass_role_problems(document, values, role)
        + lost_or_extra(document, role)
        + unscoped(document, values, role)
        + sids_twice(document)
        + too_long(document)
    )


# ----- the documents ---------------------------------------------------------------------------------------


@pytest.mark.usefixtures("parliament_knows_resource_condition_keys")
@pytest.mark.parametrize("role", sorted(policy_files.ROLES))
def test_each_document_passes_every_check(variant, role):
    values, documents = variant
    assert problems(documents[role], values, role) == []


def test_parliament_on_its_own_finds_only_the_resource_condition_key_it_does_not_know(variant):
    """What parliament says without being taught its open issue's keys: that alone."""
    values, documents = variant
    findings = {finding for document in documents.values() for finding in parliament_findings(document)}
    unknown = "UNKNOWN_CONDITION_FOR_ACTION: Unknown condition kms:ResourceAliases for action kms:"
    assert findings and all(finding.startswith(unknown) for finding in findings), findings
    assert unknown + "PutKeyPolicy" in findings


VAULTS = "arn:aws:backup:us-east-1:222222222222:backup-vault"
KEYS = "arn:aws:kms:us-east-1:222222222222:"
MUTATIONS: dict[str, tuple[str, Callable[[dict[str, Any]], None]]] = {
    "pass role without its condition": ("PassRole", lambda s: s.pop("Condition")),
    "pass role to any service": (
        "PassRole",
        lambda s: s.update(Condition={"StringLike": {"iam:PassedToService": "*"}}),
    ),
    "pass role on every role": ("PassRole", lambda s: s.update(Resource="arn:aws:iam::222222222222:role/*")),
    "any vault": ("BackupVaults", lambda s: s.update(Resource=f"{VAULTS}:*")),
    "vaults of any account": ("BackupVaults", lambda s: s.update(Resource=f"{VAULTS}:*".replace("222222222222", "*"))),
    "vaults on *": ("BackupVaults", lambda s: s.update(Resource="*")),
    "any Region's vault": (
        "BackupVaults",
        lambda s: s.update(Resource=f"{VAULTS}:SourceVault".replace("us-east-1", "*")),
    ),
    "every key's policy": ("VaultKeysByAlias", lambda s: s.pop("Condition")),
    "a key by its alias ARN": ("VaultKeysByAlias", lambda s: s.update(Resource=f"{KEYS}alias/cmkSource")),
    "an action lost": ("AlertRule", lambda s: s["Action"].remove("events:PutRule")),
    "an action IAM does not have": ("NoResourceType", lambda s: s["Action"].append("backup:ListBackupVault")),
    "an action not declared": ("NoResourceType", lambda s: s["Action"].append("backup:ListFrameworks")),
    "a topic of any name": ("AlertTopic", lambda s: s.update(Resource="arn:aws:sns:us-east-1:222222222222:*")),
}


@pytest.mark.usefixtures("parliament_knows_resource_condition_keys")
@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_a_widened_or_unconditioned_statement_is_caught(mutation):
    """The checks are real: each change that widens a grant, or loses or invents an action, is a problem."""
    values = sandbox_values()
    document = policy_files.documents(values, ACCOUNTS, [RESOURCE_KEY])["source"]
    sid, change = MUTATIONS[mutation]
    change(next(s for s in document["Statement"] if s["Sid"].startswith(f"Runbook{sid}")))
    assert problems(document, values, "source")


def test_the_files_are_the_documents_and_nothing_else(tmp_path):
    values = sandbox_values()
    (tmp_path / "notes.txt").write_text("kept\n")
    written = policy_files.write(values, tmp_path, ACCOUNTS, [RESOURCE_KEY])
    names = ["source-policy.json", "destination-policy.json", "management-policy.json"]
    assert [p.name for p in written] == names
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*names, "notes.txt"])
    documents = policy_files.documents(values, ACCOUNTS, [RESOURCE_KEY])
    first = {p.name: p.read_bytes() for p in written}
    for path in written:
        assert path.stat().st_mode & 0o777 == 0o644
        assert json.loads(path.read_text()) == documents[path.name.removesuffix("-policy.json")]
        assert path.read_text() == json.dumps(json.loads(path.read_text()), indent=2, sort_keys=True) + "\n"
    policy_files.write(values, tmp_path, ACCOUNTS, [RESOURCE_KEY])
    assert {p.name: p.read_bytes() for p in written} == first, "the same parameters write the same bytes"


def test_without_account_ids_or_resource_keys_the_documents_say_any():
    values = sandbox_values()
    documents = policy_files.documents(values)
    vaults = next(s for s in documents["source"]["Statement"] if s["Sid"] == "RunbookBackupVaults")
    assert vaults["Resource"] == "arn:aws:backup:us-east-1:*:backup-vault:SourceVault"
    shared = [s for s in documents["source"]["Statement"] if "kms:PutKeyPolicy" in s["Action"]]
    assert [(s["Resource"], s.get("Condition")) for s in shared] == [("arn:aws:kms:us-east-1:*:key/*", None)]


def test_the_rule_is_the_one_step_09_makes():
    values = sandbox_values()
    assert policy_files.rule_name(values) == automation.rule_name(SimpleNamespace(plan_name=values.plan_name))


# ----- the sandbox enforcing them --------------------------------------------------------------------------


def without(document: dict[str, Any], action: str) -> dict[str, Any]:
    """The document less one action (a statement left with none dropped)."""
    kept = [{**s, "Action": [a for a in listed(s["Action"]) if a != action]} for s in statements(document)]
    return {**document, "Statement": [s for s in kept if s["Action"]]}


def expected_documents() -> dict[str, dict[str, Any]]:
    """The documents for parameters/sandbox.yaml made from what AWS says: the account IDs (sts:GetCallerIdentity)
    and the resource's key (ec2:DescribeVolumes)."""
    sessions = {role: boto3.Session(profile_name=account.profile) for role, account in SANDBOX_ROLES.items()}
    accounts = {role: session.client("sts").get_caller_identity()["Account"] for role, session in sessions.items()}
    ec2 = sessions["source"].client("ec2", region_name="us-east-1")
    volumes = ec2.describe_volumes(Filters=[{"Name": "tag:Name", "Values": ["walkthrough-volume"]}])["Volumes"]
    return policy_files.documents(sandbox_values(), accounts, [v["KmsKeyId"] for v in volumes])


def runbook_permissions(capsys: pytest.CaptureFixture[str], out: Path) -> subprocess.CompletedProcess[str]:
    return command(capsys, "permissions", str(SANDBOX_PARAMETERS), "--out", str(out))


def test_runbook_permissions_writes_the_documents_scoped_with_what_aws_says(world, tmp_path, capsys):
    made = runbook_permissions(capsys, tmp_path / "policies")
    assert made.returncode == 0, made.stderr
    assert "note:" not in made.stdout
    assert re.match(rf"{tmp_path}/policies/source-policy.json: \d+ actions in \d+ statements", made.stdout)
    written = {
        role: json.loads((tmp_path / "policies" / policy_files.file_name(role)).read_text()) for role in SANDBOX_ROLES
    }
    assert written == expected_documents()
    put_key_policy = [s for s in statements(written["source"]) if "kms:PutKeyPolicy" in listed(s["Action"])]
    assert [expected_key_arn()] in [listed(s["Resource"]) for s in put_key_policy], "the volume's own key, by ARN"
    assert all("kms:ResourceAliases" in str(s.get("Condition")) for s in put_key_policy if "key/*" in str(s))


def expected_key_arn() -> str:
    kms = boto3.Session(profile_name=SOURCE.profile).client("kms", region_name="us-east-1")
    return kms.describe_key(KeyId="alias/cmkSource")["KeyMetadata"]["Arn"]


@pytest.mark.usefixtures("own_clients")
def test_runbook_permissions_without_credentials_says_what_it_left_wider(world, tmp_path, capsys, monkeypatch):
    unknown = re.sub(
        r"aws_access_key_id = \S+",
        "aws_access_key_id = AKIAUNKNOWNKEY000000",
        Path(os.environ["AWS_CONFIG_FILE"]).read_text(),
    )
    (tmp_path / "config").write_text(unknown)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    made = runbook_permissions(capsys, tmp_path / "policies")
    assert made.returncode == 0, made.stderr
    assert "note: the source account was not read" in made.stdout
    assert "note: the resources' keys were not read" in made.stdout and "every key of us-east-1" in made.stdout
    assert (tmp_path / "policies" / "source-policy.json").exists()


@pytest.fixture
def enforced(
    world: process.Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[[str, str], None]]:
    """The documents `runbook permissions parameters/sandbox.yaml` writes; `attach(role, action)` attaches all
    three to the sandbox's accounts, the role's less that action. Every policy is taken off after the test."""
    made = runbook_permissions(capsys, tmp_path / "policies")
    assert made.returncode == 0, made.stderr
    documents = {
        role: json.loads((tmp_path / "policies" / policy_files.file_name(role)).read_text()) for role in SANDBOX_ROLES
    }

    def attach(role: str = "", action: str = "") -> None:
        for each, account in SANDBOX_ROLES.items():
            document = without(documents[each], action) if each == role else documents[each]
            world.set_identity_policy(account.account_id, document)

    yield attach
    for account in SANDBOX_ROLES.values():
        world.set_identity_policy(account.account_id, None)


def runbook_run(capsys: pytest.CaptureFixture[str], out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return command(capsys, "run", str(SANDBOX_PARAMETERS), "--out", str(out), *extra)


def test_a_walkthrough_with_only_the_generated_policies_succeeds(enforced, aws, tmp_path, capsys):
    enforced()
    done = runbook_run(capsys, tmp_path / "run")
    assert done.returncode == 0, done.stderr
    assert "[05_verify_target_key] ok" in done.stdout
    with pytest.raises(ClientError, match="AccessDeniedException.*backup:ListFrameworks"):
        aws.source("backup").list_frameworks()  # the policies were on: what they leave out is refused


STEPS_TO_03 = "00_prerequisites,01_create_backup,02_verify_source_key,03_share_source_key"
PICKS = [  # (profile role, action left out, the steps up to the one that needs it)
    ("destination", "backup:PutBackupVaultAccessPolicy", "00_prerequisites"),
    ("source", "kms:PutKeyPolicy", STEPS_TO_03),
    ("source", "backup:StartCopyJob", f"{STEPS_TO_03},04_copy_to_target"),
]


@pytest.mark.parametrize(("role", "action", "steps"), PICKS, ids=[action for _, action, _ in PICKS])
def test_a_policy_without_one_action_fails_the_step_that_needs_it_first(
    enforced, tmp_path, capsys, role, action, steps
):
    enforced(role, action)
    done = runbook_run(capsys, tmp_path / "run", "--steps", steps)
    *before, needing = steps.split(",")
    assert done.returncode == 1, done.stdout
    assert [line.split("]")[0][1:] for line in done.stdout.splitlines() if " ok " in line] == before
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"runbook: step {needing} failed: ClientError: An error occurred (AccessDeniedException)")
    assert f"is not authorized to perform: {action} on resource: arn:aws:" in last
    assert f"because no identity-based policy allows the {action} action" in last


def test_what_aws_authorizes_beside_creating_a_vault_is_on_the_vault_keys_only():
    """CreateBackupVault also needs backup-storage:MountCapsule and the vault key's grants (AWS Backup's guide):
    a call log cannot see them, so they come from permissions.IMPLIED, scoped to each side's vault key."""
    documents = policy_files.documents(sandbox_values(), ACCOUNTS, [RESOURCE_KEY])
    for role, alias in (("source", "alias/cmkSourceVault"), ("destination", "alias/cmkTarget")):
        granting = [s for s in statements(documents[role]) if "kms:RetireGrant" in listed(s["Action"])]
        assert [s["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"] for s in granting] == [[alias]]
        assert {"kms:CreateGrant", "kms:Decrypt", "kms:GenerateDataKey"} <= set(listed(granting[0]["Action"]))
        mounting = [s for s in statements(documents[role]) if "backup-storage:MountCapsule" in listed(s["Action"])]
        assert [s["Resource"] for s in mounting] == ["*"]
    reencrypting = [s for s in statements(documents["source"]) if "kms:ReEncryptTo" in listed(s["Action"])]
    assert [s["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"] for s in reencrypting] == [
        ["alias/cmkSource"]
    ]
