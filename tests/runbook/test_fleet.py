"""A fleet in one run: every tagged volume copied, one failure alone in its row, a rerun that copies only it."""

from __future__ import annotations

import json
import math
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from runbook_lib.core import params, permissions
from runbook_lib.steps import fleet
from tests.runbook_steps import command

ROOT = Path(__file__).resolve().parents[2]
TARGET_ACCOUNT = "333333333333"


def write_parameters(path: Path, **values: object) -> Path:
    chosen = {
        "resource_name": "",
        "resource_tags": {"Fleet": "demo"},
        "poll_seconds": 1,
        "apply": True,
        **values,
    }
    path.write_text(json.dumps(chosen))  # JSON is YAML
    return path


def runbook_run(capsys: pytest.CaptureFixture[str], parameters: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return command(capsys, "run", str(parameters), "--out", str(out))


def volume_under_a_key_that_denies_the_target(aws, name: str) -> str:  # type: ignore[no-untyped-def]
    """One more volume of the fleet, under its own key, whose policy explicitly denies the target account
    (the runbook never outvotes a Deny): the one resource of the fleet that cannot be copied."""
    kms, ec2 = aws.source("kms"), aws.source("ec2")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::222222222222:root"}, "Action": "kms:*", "Resource": "*"},
            {"Sid": "DenyTarget", "Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{TARGET_ACCOUNT}:root"},
             "Action": "kms:*", "Resource": "*"},
        ],
    }  # fmt: skip
    key = kms.create_key(Policy=json.dumps(policy))["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName="alias/cmkOtherTeam", TargetKeyId=key)
    volume = ec2.create_volume(
        AvailabilityZone="us-east-1a",
        Size=8,
        Encrypted=True,
        KmsKeyId=key,
        TagSpecifications=[
            {"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": name}, {"Key": "Fleet", "Value": "demo"}]}
        ],
    )
    return f"arn:aws:ec2:us-east-1:222222222222:volume/{volume['VolumeId']}"


def test_a_fleet_run_copies_every_volume_one_failure_stays_in_its_row_and_the_rerun_copies_only_it(
    world, aws, tmp_path, capsys, monkeypatch
):
    world.reset("fleet")
    blocked = volume_under_a_key_that_denies_the_target(aws, "fleet-other-team")
    parameters = write_parameters(tmp_path / "fleet.yaml")
    out, calls = tmp_path / "run", tmp_path / "calls.jsonl"
    monkeypatch.setenv("RUNBOOK_CALL_LOG", str(calls))

    first = runbook_run(capsys, parameters, out)
    assert first.returncode == 1, first.stderr
    assert first.stderr.strip().splitlines()[-1] == (
        f"runbook: 1 of 201 resources failed; first: {blocked}: FAILED in 03_share_source_key: [source-key-shared] "
        f"statement 'DenyTarget' of the policy of alias/cmkOtherTeam denies account {TARGET_ACCOUNT}. Fix: remove "
        "statement 'DenyTarget' (runbook fix source-key-shared plans its removal), then run again"
    )
    assert "[01_create_backup] ok" in first.stdout and ": 201 resources: 201 COMPLETED" in first.stdout
    assert "[04_copy_to_target] ok" in first.stdout and "200 COMPLETED, 1 FAILED" in first.stdout
    assert "Resources: 200 of 201 copied and verified" in first.stdout

    target_key = aws.target("kms").describe_key(KeyId="alias/cmkTarget")["KeyMetadata"]["Arn"]
    points = [
        point
        for page in aws.target("backup")
        .get_paginator("list_recovery_points_by_backup_vault")
        .paginate(BackupVaultName="CABTargetVault")
        for point in page["RecoveryPoints"]
    ]
    assert len(points) == 200 and {p["EncryptionKeyArn"] for p in points} == {target_key}
    rows = fleet.results(json.loads((out / "state.json").read_text()))
    assert [row["resource"] for row in rows if row["outcome"] != "COMPLETED"] == [blocked]
    assert {row["destination key"] for row in rows if row["outcome"] == "COMPLETED"} == {"alias/cmkTarget"}
    shared_keys = {
        r["key_arn"]
        for r in json.loads((out / "state.json").read_text())["03_share_source_key"]["fleet"].values()
        if r.get("key_arn")
    }
    assert len(shared_keys) == 3, "each of the fleet's three keys shared once"

    logged = [json.loads(line) for line in calls.read_text().splitlines()]
    polls = [c for c in logged if c.get("poll")]
    assert not [c for c in logged if c["action"] in ("backup:DescribeBackupJob", "backup:DescribeCopyJob")]
    starts = math.ceil(201 / params.DEFAULTS["max_concurrent_jobs"])
    for kind in ("backup:ListBackupJobs", "backup:ListCopyJobs"):
        rounds = sum(1 for c in polls if c["action"] == kind)
        assert 1 <= rounds <= starts + 2, f"{kind}: one listing (ceil(N/1000) pages) a round, {rounds} rounds"
    sides = {"sandbox-source": "source", "sandbox-target": "target", "sandbox-management": "management"}
    undeclared = {
        (c["step"], c["action"])
        for c in logged
        if c["action"] not in permissions.declared(c["step"], sides[c["profile"]])
    }
    assert undeclared == set(), "a fleet calls only what each step declares"
    made = sum(1 for c in logged if not c.get("poll"))
    assert made < 200 * 3, f"{made} calls besides polls for 201 resources"

    kms = aws.source("kms")  # the key's administrators take out the Deny
    key_id = kms.describe_key(KeyId="alias/cmkOtherTeam")["KeyMetadata"]["KeyId"]
    policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "DenyTarget"]
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))
    copies_before = len(aws.source("backup").list_copy_jobs()["CopyJobs"])
    backups_before = len(aws.source("backup").list_backup_jobs()["BackupJobs"])

    second = runbook_run(capsys, parameters, out)
    assert second.returncode == 0, second.stderr
    assert len(aws.source("backup").list_copy_jobs()["CopyJobs"]) == copies_before + 1
    assert len(aws.source("backup").list_backup_jobs()["BackupJobs"]) == backups_before
    started = [
        json.loads(line) for line in (out / "changes.jsonl").read_text().splitlines() if '"backup:StartCopyJob"' in line
    ]
    assert [entry["target"] for entry in started][-1] == blocked and len(started) == 201
    assert "Resources: 201 of 201 copied and verified" in second.stdout
    record = json.loads((out / "05_verify_target_key.ipynb").read_text())
    shown = [
        "".join(output.get("data", {}).get("text/html", ""))
        for cell in record["cells"]
        for output in cell.get("outputs", [])
    ]
    table = next(page for page in shown if ">destination key<" in page)
    assert table.count("<tr>") == 201 and "Showing the first 200 of 201 rows" in table, "the record's results table"
    texts = ["".join(o.get("text", "")) for cell in record["cells"] for o in cell.get("outputs", [])]
    assert any(
        "201 of 201 copies are encrypted with the destination vault's key (alias/cmkTarget)." in t for t in texts
    )


def test_at_most_max_concurrent_jobs_run_at_once(world, aws, tmp_path, capsys):
    world.configure(job_seconds=2)
    for n in range(5):
        aws.source("ec2").create_volume(
            AvailabilityZone="us-east-1a",
            Size=8,
            Encrypted=True,
            KmsKeyId=aws.source("kms").describe_key(KeyId="alias/cmkSource")["KeyMetadata"]["Arn"],
            TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "Fleet", "Value": "small"}]}],
        )
    parameters = write_parameters(tmp_path / "small.yaml", resource_tags={"Fleet": "small"}, max_concurrent_jobs=2)
    steps = ["--steps", "00_prerequisites,01_create_backup"]
    done = command(capsys, "run", str(parameters), "--out", str(tmp_path / "run"), *steps)
    assert done.returncode == 0, done.stderr
    jobs = aws.source("backup").list_backup_jobs()["BackupJobs"]
    assert len(jobs) == 5
    spans = [(job["CreationDate"], job["CompletionDate"]) for job in jobs]
    overlapping = max(sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans)
    assert overlapping <= 2, f"{overlapping} backup jobs ran at once"
    assert all(isinstance(start, datetime) for start, _ in spans)


@pytest.mark.parametrize(
    "values, problem",
    [
        (
            {"resources": ["walkthrough-volume"], "resource_tags": {"Fleet": "demo"}},
            "parameter resource_tags: given with resources",
        ),
        ({"resources": ["a", "a"]}, "parameter resources: 'a' is given twice"),
        ({"resource_tags": {"Fleet": 1}}, "parameter resource_tags: tag 'Fleet': 1 is not text"),
        ({"max_concurrent_jobs": 101}, "parameter max_concurrent_jobs: got 101; allowed: a whole number 1-100"),
    ],
)
def test_a_bad_selection_is_one_line_before_any_aws_call(values, problem):
    with pytest.raises(params.ParameterError) as refused:
        params.validate(values)
    assert str(refused.value).startswith(problem)


def volumes_tagged(aws, count: int, tag: str) -> list[str]:  # type: ignore[no-untyped-def]
    key = aws.source("kms").describe_key(KeyId="alias/cmkSource")["KeyMetadata"]["Arn"]
    made = []
    for n in range(count):
        volume = aws.source("ec2").create_volume(
            AvailabilityZone="us-east-1a",
            Size=8,
            Encrypted=True,
            KmsKeyId=key,
            TagSpecifications=[
                {
                    "ResourceType": "volume",
                    "Tags": [{"Key": "Name", "Value": f"{tag}-{n}"}, {"Key": "Fleet", "Value": tag}],
                }
            ],
        )
        made.append(f"arn:aws:ec2:us-east-1:222222222222:volume/{volume['VolumeId']}")
    return made


def test_a_selection_by_names_and_arns_or_by_tags_is_one_volume_listing(world, aws, tmp_path, monkeypatch, own_clients):
    from runbook_lib.aws import clients
    from runbook_lib.aws.context import Run, resource_key, selection

    made = volumes_tagged(aws, 4, "pick")
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv(clients.CALL_LOG_ENV, str(log))
    chosen = ["pick-0", made[1], "pick-2"]
    run = Run("01_create_backup", params.validate({"run_dir": str(tmp_path), "resources": chosen}))
    assert selection(run) == [made[0], made[1], made[2]]
    assert all(resource_key(run, arn) for arn in selection(run))
    volume_calls = [line for line in log.read_text().splitlines() if "ec2:DescribeVolumes" in line]
    assert len(volume_calls) == 2, "the Name tags in one call, the listed ARNs in another"

    by_tags = Run("01_create_backup", params.validate({"run_dir": str(tmp_path), "resource_tags": {"Fleet": "pick"}}))
    assert sorted(selection(by_tags)) == sorted(made)


def test_a_selection_that_finds_nothing_is_one_line_naming_the_parameter(world, tmp_path):
    from runbook_lib.aws.context import Run
    from runbook_lib.troubleshooting import preflight

    nothing = Run("check", params.validate({"run_dir": str(tmp_path), "resource_tags": {"Fleet": "none"}}))
    with pytest.raises(params.ParameterError) as refused:
        preflight.check(nothing, ("resource",))
    assert str(refused.value).startswith(
        "parameter resource_tags: no EBS volume in us-east-1 carries the tags Fleet=none; allowed: "
    )
    missing_db = "arn:aws:rds:us-east-1:222222222222:db:no-such-db"
    no_db = Run("check", params.validate({"run_dir": str(tmp_path), "resources": ["walkthrough-volume", missing_db]}))
    with pytest.raises(params.ParameterError) as refused:
        preflight.check(no_db, ("resource",))
    assert str(refused.value).startswith("parameter resources: no RDS DB instance no-such-db in the source account")
    unknown = Run("check", params.validate({"run_dir": str(tmp_path), "resources": ["walkthrough-volume", "nope"]}))
    with pytest.raises(params.ParameterError) as refused:
        preflight.check(unknown, ("resource",))
    assert str(refused.value).startswith(
        "parameter resources: resources: 0 EBS volumes are tagged Name=nope in us-east-1"
    )


def test_many_jobs_are_followed_with_one_listing_a_round(world, aws, tmp_path, monkeypatch, own_clients):
    from runbook_lib.aws import clients, jobs

    made = volumes_tagged(aws, 3, "watch")
    backup = aws.source("backup")
    backup.create_backup_vault(BackupVaultName="WatchVault")
    role = aws.source("iam").get_role(RoleName="AWSBackupDefaultServiceRole")["Role"]["Arn"]
    started = {
        backup.start_backup_job(BackupVaultName="WatchVault", ResourceArn=arn, IamRoleArn=role)["BackupJobId"]
        for arn in made
    }
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv(clients.CALL_LOG_ENV, str(log))
    listed = jobs.list_round("sandbox-source", "us-east-1", "backup", "WatchVault", datetime(2000, 1, 1))
    assert set(listed) == started and {job["State"] for job in listed.values()} == {"COMPLETED"}
    assert [json.loads(line)["action"] for line in log.read_text().splitlines()] == ["backup:ListBackupJobs"]
    assert all(json.loads(line).get("poll") for line in log.read_text().splitlines())


def test_a_copy_aws_refuses_for_one_resource_fails_in_its_row_and_the_log_says_not_made(world, tmp_path, capsys):
    """AWS refusing one copy job across account and Region for RDS (the sandbox set to): the resource's row fails
    with the known failure and its fix, the others go on."""
    world.configure(refuse_one_action_types=["RDS"])
    rds = "arn:aws:rds:us-east-1:222222222222:db:walkthrough-db"
    parameters = write_parameters(
        tmp_path / "mixed.yaml", resource_tags={}, resources=["walkthrough-volume", rds], force_copy=True
    )
    out = tmp_path / "run"
    done = runbook_run(capsys, parameters, out)
    assert done.returncode == 1, done.stderr
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"runbook: 1 of 2 resources failed; first: {rds}: FAILED in 04_copy_to_target: [rds-single-hop] "
            "StartCopyJob refused: Copy job from us-east-1 to eu-west-1 cannot be initiated for RDS resources. "
            "Feature is not supported for provided resource type. Fix: copy in two hops: two_hop_types: [RDS] (step 00 "
            "makes vault SourceVault of the source account in eu-west-1"
        )
    )
    logged = [json.loads(line) for line in (out / "changes.jsonl").read_text().splitlines()]
    copies = {entry["target"]: entry["outcome"] for entry in logged if entry["action"] == "backup:StartCopyJob"}
    assert copies[rds].startswith("not made: [rds-single-hop] StartCopyJob refused")
    assert [v for k, v in copies.items() if k != rds] == ["applied"]
    assert "[05_verify_target_key] ok" in done.stdout and ": 1 resources: 1 VERIFIED" in done.stdout


def test_a_wait_for_a_free_slot_ends_with_max_wait_minutes_and_the_rerun_starts_the_rest(world, aws, tmp_path, capsys):
    world.configure(job_seconds=600)
    volumes_tagged(aws, 2, "slow")
    parameters = write_parameters(
        tmp_path / "slow.yaml", resource_tags={"Fleet": "slow"}, max_concurrent_jobs=1, max_wait_minutes=0.05
    )
    steps = ["--steps", "00_prerequisites,01_create_backup"]
    done = command(capsys, "run", str(parameters), "--out", str(tmp_path / "run"), *steps)
    assert done.returncode == 75, done.stderr
    assert "1 backup jobs still run after 0.05 minutes (max_wait_minutes) and no slot freed for the next one" in (
        done.stderr
    )
    assert len(aws.source("backup").list_backup_jobs()["BackupJobs"]) == 1, "the second waits for a slot"


def test_a_policy_edit_starts_from_the_policy_as_it_is_now_not_as_the_run_first_read_it(world, aws, tmp_path):
    from runbook_lib.aws import keys
    from runbook_lib.aws.context import Run

    Run("03_share_source_key", params.validate({"run_dir": str(tmp_path)}))
    key = keys.describe("sandbox-source", "us-east-1", "alias/cmkSource")  # the run reads and keeps the policy
    policy = json.loads(key.policy or "{}")
    policy["Statement"].append(
        {"Sid": "AddedMeanwhile", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
         "Action": "kms:DescribeKey", "Resource": "*"}
    )  # fmt: skip
    aws.source("kms").put_key_policy(KeyId=key.arn, PolicyName="default", Policy=json.dumps(policy))
    principal = keys.copy_principal(TARGET_ACCOUNT, "eu-west-1", None)
    change = keys.share_change("03_share_source_key", "sandbox-source", "us-east-1", key.arn, principal)
    written = json.loads(change.effect["policy"])
    assert "AddedMeanwhile" in [s.get("Sid") for s in written["Statement"]], "an admin's statement is kept"


def test_a_volume_named_twice_is_one_line(world, aws, tmp_path):
    from runbook_lib.aws.context import Run, selection
    from runbook_lib.core.errors import StepFailed

    made = volumes_tagged(aws, 1, "twice")
    run = Run("01_create_backup", params.validate({"run_dir": str(tmp_path), "resources": ["twice-0", made[0]]}))
    with pytest.raises(StepFailed) as refused:
        selection(run)
    assert f"resources names volume {made[0]} twice (by its ARN and its Name tag)" in str(refused.value)


def test_a_tag_value_is_matched_as_written_not_as_a_wildcard(world, aws, tmp_path):
    from runbook_lib.aws.context import Run, selection
    from runbook_lib.core.errors import StepFailed

    volumes_tagged(aws, 2, "pick")
    run = Run("01_create_backup", params.validate({"run_dir": str(tmp_path), "resource_tags": {"Fleet": "pi*"}}))
    with pytest.raises(StepFailed) as refused:
        selection(run)
    assert "no EBS volume in us-east-1 carries the tags Fleet=pi*" in str(refused.value)


def test_the_results_and_the_exit_line_are_about_the_runs_selection():
    """A resource that failed in an earlier run and is no longer selected does not fail the run."""
    dropped, kept = (
        "arn:aws:ec2:us-east-1:222222222222:volume/vol-0a",
        "arn:aws:ec2:us-east-1:222222222222:volume/vol-0b",
    )
    state = {
        "selection": {"resources": [kept]},
        "01_create_backup": {
            "fleet": {dropped: {"outcome": "FAILED", "reason": "r", "fix": "f"}, kept: {"outcome": "COMPLETED"}}
        },
        "05_verify_target_key": {"fleet": {kept: {"outcome": "VERIFIED", "destination_key_alias": "alias/cmkTarget"}}},
    }
    assert [row["resource"] for row in fleet.results(state)] == [kept]
    assert fleet.failures_line(state) == ""
    state["selection"]["resources"] = [dropped, kept]
    assert (
        fleet.failures_line(state)
        == f"1 of 2 resources failed; first: {dropped}: FAILED in 01_create_backup: r. Fix: f"
    )


def test_a_job_the_listings_miss_is_described_before_anything_is_decided_about_it(tmp_path, monkeypatch):
    """AWS lists a job eventually: missing from three listings in a row, it is described, not failed."""
    from runbook_lib.aws.context import Run
    from runbook_lib.steps import fleet_jobs, fleet_rows

    run = Run("01_create_backup", params.validate({"run_dir": str(tmp_path), "max_concurrent_jobs": 1}))
    arn = "arn:aws:ec2:us-east-1:222222222222:volume/vol-0a"
    fleet_rows.update(run, "01_create_backup", arn, job_id="job-1", outcome="RUNNING")
    listings, described, sleeps = [], [], []
    monkeypatch.setattr(fleet_jobs, "_listing", lambda run, kind, *_: listings.append(kind) or {})
    monkeypatch.setattr(
        fleet_jobs,
        "_described",
        lambda run, kind, job_id: described.append(job_id) or {"State": "COMPLETED", "RecoveryPointArn": "rp-1"},
    )
    fleet_jobs.Slots(run, "backup", 1, sleeps.append).take()
    assert described == ["job-1"] and len(listings) == fleet_jobs.UNSEEN_ROUNDS, "a slot frees once described"
    fleet_jobs.follow(run, "backup", None, 1, sleeps.append)
    row = fleet_rows.rows(run, "01_create_backup")[arn]
    assert row["outcome"] == "COMPLETED" and row["recovery_point_arn"] == "rp-1"

    monkeypatch.setattr(fleet_jobs, "_described", lambda run, kind, job_id: None)
    fleet_rows.update(run, "01_create_backup", arn, job_id="job-2", outcome="RUNNING")
    fleet_jobs.follow(run, "backup", None, 1, sleeps.append)
    row = fleet_rows.rows(run, "01_create_backup")[arn]
    assert row["outcome"] == "FAILED" and row["reason"] == "backup job job-2 is not known to AWS Backup"
