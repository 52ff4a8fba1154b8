"""One list for one resource or many: every step works on selection(run), a resource however selected is the
same run of one, one results table reads both; and a selection of many whose types need two hops (RDS with
two_hop_types) copies each in two jobs, first into the hop vault of the source account in the target Region,
then across accounts into the destination vault."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runbook_lib.aws import clients
from runbook_lib.aws.context import selection
from runbook_lib.core import permissions
from runbook_lib.steps import fleet, fleet_jobs, fleet_rows
from runbook_lib.steps import walkthrough as rb
from runbook_lib.steps.walkthrough import Run
from runbook_sandbox.accounts import TARGET
from tests import runbook_steps
from tests.runbook_steps import command

HOP_VAULT_ARN = "arn:aws:backup:eu-west-1:222222222222:backup-vault:SourceVault"
TARGET_VAULT_ARN = f"arn:aws:backup:eu-west-1:{TARGET.account_id}:backup-vault:CABTargetVault"
DB = "arn:aws:rds:us-east-1:222222222222:db:{}"


def second_database(aws: Any, name: str = "walkthrough-db-2") -> str:
    """One more RDS DB instance in the source account, under the same key as walkthrough-db."""
    key = aws.source("kms").describe_key(KeyId="alias/cmkSource")["KeyMetadata"]["Arn"]
    aws.source("rds").create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        AllocatedStorage=20,
        MasterUsername="runbook",
        MasterUserPassword="sandbox-only-password",
        StorageEncrypted=True,
        KmsKeyId=key,
    )
    return DB.format(name)


def every_step(run_values: dict[str, Any]) -> dict[str, Any]:
    """Steps 00 to 05 as their notebooks call them, through the functions on the selection."""
    run = Run("00_prerequisites", run_values)
    run.carry_out(rb.prerequisites(run))
    run = Run("01_create_backup", run_values)
    run.carry_out(rb.start_backups(run))
    rb.wait_for_backups(run, delay=1)
    rb.verify_source_keys(Run("02_verify_source_key", run_values))
    run = Run("03_share_source_key", run_values)
    run.carry_out(rb.share_source_keys(run))
    run = Run("04_copy_to_target", run_values)
    run.carry_out(rb.start_copies(run))
    first = rb.wait_for_copies(run, delay=1)
    run.carry_out(rb.second_hops(run))
    second = rb.wait_for_second_hop(run, delay=1)
    verified = rb.verify_target_keys(Run("05_verify_target_key", run_values))
    return {"first": first.summary, "second": second.summary, "verified": verified}


def test_a_fleet_of_two_databases_copies_each_in_two_hops(aws, world, tmp_path: Path) -> None:
    """Must show: two RDS DB instances in one run (resources, two_hop_types: [RDS]), each copied in two jobs: the
    first across Regions into the hop vault, the second across accounts from it; step 05 verifies both copies."""
    world.configure(refuse_one_action_types=["RDS"])
    databases = [DB.format("walkthrough-db"), second_database(aws)]
    run_values = runbook_steps.values(tmp_path, resource_name="", resources=databases, two_hop_types=["RDS"])
    run = Run("04_copy_to_target", run_values)
    assert selection(run) == databases
    assert all(run.copies_in_two_hops(arn) for arn in databases)

    ended = every_step(run_values)

    assert ended["first"] == (
        "0 copies, 2 through their first hop (the second copies them across accounts) of 2 resources; 0 failed "
        "(see their rows)"
    )
    assert ended["second"] == "2 copies of 2 resources copied in two hops; 0 failed (see their rows)"
    assert ended["verified"]["verified"] == 2 and ended["verified"]["keys"] == "alias/cmkTarget"
    firsts = aws.source("backup").list_copy_jobs()["CopyJobs"]
    seconds = aws.client("source", "backup", "eu-west-1").list_copy_jobs()["CopyJobs"]
    assert sorted(job["ResourceArn"] for job in firsts) == databases
    assert {job["DestinationBackupVaultArn"] for job in firsts} == {HOP_VAULT_ARN}
    assert {job["DestinationBackupVaultArn"] for job in seconds} == {TARGET_VAULT_ARN}
    assert sorted(job["SourceRecoveryPointArn"] for job in seconds) == sorted(
        job["DestinationRecoveryPointArn"] for job in firsts
    )
    state = json.loads((tmp_path / "state.json").read_text())
    copied = state["04_copy_to_target"]["fleet"]
    for arn in databases:
        assert copied[arn]["kind"] == "second" and copied[arn]["outcome"] == "COMPLETED"
        assert copied[arn]["hop_recovery_point_arn"].startswith("arn:aws:rds:eu-west-1:222222222222:snapshot:")
        assert copied[arn]["destination_recovery_point_arn"].startswith(
            f"arn:aws:rds:eu-west-1:{TARGET.account_id}:snapshot:"
        )
    shared = state["03_share_source_key"]["fleet"]
    assert {row["key_alias"] for row in shared.values()} == {"alias/cmkSourceHop"}, "the hop vault's key is shared"
    assert [row["outcome"] for row in fleet.results(state)] == ["COMPLETED", "COMPLETED"]

    before = world.state()
    again = every_step(run_values)
    assert world.state() == before, "a rerun starts no job: each resource's hops are done"
    assert again["verified"]["verified"] == 2

    tidy = Run("07_cleanup", run_values)
    tidy.carry_out(rb.cleanup(tidy))
    hop_backup = aws.client("source", "backup", "eu-west-1")
    assert hop_backup.list_backup_vaults()["BackupVaultList"] == [], "the hop vault and both first hops' copies go"


def test_a_dry_run_of_a_fleet_plans_both_hops_of_each_database(aws, world, tmp_path: Path) -> None:
    databases = [DB.format("walkthrough-db"), second_database(aws)]
    run_values = runbook_steps.values(
        tmp_path, resource_name="", resources=databases, two_hop_types=["RDS"], apply=False
    )
    before = world.state()
    run = Run("00_prerequisites", run_values)
    planned = rb.prerequisites(run)
    assert any(c.target == "SourceVault" and c.region == "eu-west-1" for c in planned), "the hop vault"
    run.carry_out(planned)
    run = Run("04_copy_to_target", run_values)
    firsts = rb.start_copies(run)
    run.carry_out(firsts)
    seconds = rb.second_hops(run)
    assert [c.summary.split(":")[0] for c in firsts] == ["first hop"] * 2
    assert [c.blocked_by for c in seconds] == ["the first hop makes the recovery point (planned, not made yet)"] * 2
    assert {c.region for c in seconds} == {"eu-west-1"}
    assert rb.hops_line(run).startswith("Two hops for 2 of the 2 resources: two_hop_types names RDS")
    assert world.state() == before


def step_01(run_values: dict[str, Any]) -> dict[str, Any]:
    """Steps 00 and 01 as their notebooks call them; what the run folder's state.json then holds for step 01."""
    run = Run("00_prerequisites", run_values)
    run.carry_out(rb.prerequisites(run))
    run = Run("01_create_backup", run_values)
    run.carry_out(rb.start_backups(run))
    rb.wait_for_backups(run, delay=1)
    return dict(json.loads((Path(run_values["run_dir"]) / "state.json").read_text())["01_create_backup"])


def test_one_resource_is_one_resource_however_it_is_selected(aws, world, tmp_path: Path) -> None:
    """resource_name, or `resources` listing one: the same selection, the same record under the names a run
    folder of one resource has always had; two listed: a row each, from the same functions."""
    world.reset("fleet")
    volumes = aws.source("ec2").describe_volumes(Filters=[{"Name": "tag:Fleet", "Values": ["demo"]}])["Volumes"]
    listed = [f"arn:aws:ec2:us-east-1:222222222222:volume/{v['VolumeId']}" for v in volumes[:2]]
    by_name = runbook_steps.values(tmp_path / "name", resource_name="walkthrough-volume")
    one = rb.resource_arn(Run("01_create_backup", by_name))
    by_list = runbook_steps.values(tmp_path / "list", resource_name="", resources=[one])
    two = runbook_steps.values(tmp_path / "two", resource_name="", resources=listed)
    assert [selection(Run("01_create_backup", v)) for v in (by_name, by_list, two)] == [[one], [one], listed]
    assert rb.selection_line(Run("01_create_backup", by_list)) == f"Resource: {one}"
    assert rb.selection_line(Run("01_create_backup", two)) == "Resources: 2 selected by resources"

    recorded = [step_01(v) for v in (by_name, by_list)]
    assert [r["resource_arn"] for r in recorded] == [one, one]
    assert all(r["recovery_point_arn"].startswith("arn:aws:ec2:us-east-1::snapshot/") for r in recorded)
    assert sorted(recorded[0]) == sorted(recorded[1])
    assert {"resource_arn", "backup_job_id", "recovery_point_arn"} <= set(recorded[0]), "the names users read"
    rows = step_01(two)["fleet"]
    outcomes = [[row["outcome"] for row in rb.results(Run("05_verify_target_key", v))] for v in (by_name, two)]
    assert outcomes == [["COMPLETED in 01_create_backup"], ["COMPLETED in 01_create_backup"] * 2], "one results table"
    assert sorted(rows) == listed and {row["outcome"] for row in rows.values()} == {"COMPLETED"}
    assert [
        row["resource"] for row in fleet_rows.results(json.loads((tmp_path / "two" / "state.json").read_text()))
    ] == listed


def test_a_fleet_of_a_volume_and_a_database_copies_the_volume_in_one_job_and_the_database_in_two(
    aws, world, tmp_path: Path
) -> None:
    world.configure(refuse_one_action_types=["RDS"])
    volume = rb.resource_arn(Run("check", runbook_steps.values(tmp_path / "name", resource_name="walkthrough-volume")))
    chosen = [volume, DB.format("walkthrough-db")]
    run_values = runbook_steps.values(tmp_path / "run", resource_name="", resources=chosen, two_hop_types=["RDS"])

    ended = every_step(run_values)

    assert ended["first"].startswith("1 copies, 1 through their first hop (the second copies them across accounts)")
    assert ended["second"] == "1 copies of 1 resources copied in two hops; 0 failed (see their rows)"
    assert ended["verified"]["verified"] == 2
    firsts = aws.source("backup").list_copy_jobs()["CopyJobs"]
    assert {job["ResourceArn"]: job["DestinationBackupVaultArn"] for job in firsts} == {
        volume: TARGET_VAULT_ARN,
        chosen[1]: HOP_VAULT_ARN,
    }
    seconds = aws.client("source", "backup", "eu-west-1").list_copy_jobs()["CopyJobs"]
    assert [job["ResourceArn"] for job in seconds] == [chosen[1]]
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    shared = state["03_share_source_key"]["fleet"]
    assert {arn: row["key_alias"] for arn, row in shared.items()} == {
        volume: "alias/cmkSource",
        chosen[1]: "alias/cmkSourceHop",
    }, "each resource's copy across accounts travels under the key shared for it"


def test_runbook_run_copies_a_fleet_of_two_databases_in_two_hops_calling_only_what_each_step_declares(
    aws, world, tmp_path: Path, capsys, monkeypatch
) -> None:
    """Must show: `runbook run` of the default steps for two RDS DB instances with two_hop_types: [RDS]: each
    copied in two jobs, step 05 verifying both; every call is one its step declares."""
    world.configure(refuse_one_action_types=["RDS"])
    databases = [DB.format("walkthrough-db"), second_database(aws)]
    overlay = tmp_path / "fleet.yaml"
    overlay.write_text(json.dumps({"resource_name": "", "resources": databases, "two_hop_types": ["RDS"]}))
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv(clients.CALL_LOG_ENV, str(calls))
    done = command(capsys, "run", str(runbook_steps.SANDBOX_PARAMETERS), str(overlay), "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert any(
        line.startswith("[04_copy_to_target] ok") and line.endswith(": 2 resources: 2 COMPLETED") for line in lines
    )
    assert any(
        line.startswith("[05_verify_target_key] ok") and line.endswith(": 2 resources: 2 VERIFIED") for line in lines
    )
    seconds = aws.client("source", "backup", "eu-west-1").list_copy_jobs()["CopyJobs"]
    assert sorted(job["ResourceArn"] for job in seconds) == databases
    sides = {"sandbox-source": "source", "sandbox-target": "target", "sandbox-management": "management"}
    logged = [json.loads(line) for line in calls.read_text().splitlines()]
    undeclared = {
        (c["step"], c["action"])
        for c in logged
        if c["action"] not in permissions.declared(c["step"], sides[c["profile"]])
    }
    assert undeclared == set()


# What a run folder of one resource has always recorded under each step (state.json), read by users and the report.
ONE_RESOURCE_RECORD = {
    "01_create_backup": {"resource_arn", "backup_job_id", "recovery_point_arn"},
    "02_verify_source_key": {"source_key_arn", "source_key_alias", "source_vault_key_alias", "encryption"},
    "04_copy_to_target": {
        "copy_job_id",
        "source_recovery_point_arn",
        "destination_recovery_point_arn",
        "copy_job_destination",
        "copy_started_undecided",
    },
    "05_verify_target_key": {"destination_key_arn", "destination_key_alias", "encryption"},
}
ENCRYPTION = {
    "recovery_point_arn",
    "resource_arn",
    "status",
    "recovery_point_key_arn",
    "recovery_point_key_alias",
    "recovery_point_key_manager",
    "snapshot_key_arn",
    "vault_key_arn",
    "vault_key_alias",
    "vault_key_manager",
    "made_by",
}


def test_one_resource_and_two_go_through_the_same_functions_and_one_keeps_its_record(
    aws, world, tmp_path: Path, monkeypatch
) -> None:
    """Must show: a run of one resource is a fleet of one. Steps 01 to 05 of one resource and of two call the
    same functions (each wrapped here, counting its callers); the run of one still records what its run folder
    always had, under the same names, and says what it made in its own words."""
    world.reset("fleet")
    called: dict[str, list[int]] = {}

    def counted(name: str, function: Any) -> Any:
        def wrapper(run: Any, *args: Any, **kwargs: Any) -> Any:
            called.setdefault(name, []).append(len(selection(run)))
            return function(run, *args, **kwargs)

        return wrapper

    for name in ("start_backups", "verify_source_keys", "share_source_keys", "start_copies", "verify_target_keys"):
        monkeypatch.setattr(fleet, name, counted(name, getattr(fleet, name)))
    monkeypatch.setattr(fleet_jobs, "follow", counted("follow", fleet_jobs.follow))
    volumes = aws.source("ec2").describe_volumes(Filters=[{"Name": "tag:Fleet", "Values": ["demo"]}])["Volumes"]
    two = [f"arn:aws:ec2:us-east-1:222222222222:volume/{v['VolumeId']}" for v in volumes[:2]]
    one_values = runbook_steps.values(tmp_path / "one", resource_name="walkthrough-volume")
    two_values = runbook_steps.values(tmp_path / "two", resource_name="", resources=two)

    one = every_step(one_values)
    called_by_one = {name: sorted(set(sizes)) for name, sizes in called.items()}
    called.clear()
    every_step(two_values)

    assert called_by_one == dict.fromkeys(called_by_one, [1]) and len(called_by_one) == 6, called_by_one
    assert {name: sorted(set(sizes)) for name, sizes in called.items()} == dict.fromkeys(called_by_one, [2])
    state = json.loads((tmp_path / "one" / "state.json").read_text())
    for step, names in ONE_RESOURCE_RECORD.items():
        assert names <= set(state[step]), (step, names - set(state[step]))
    resource = state["01_create_backup"]["resource_arn"]
    assert state["01_create_backup"]["recovery_point_arn"].startswith("arn:aws:ec2:us-east-1::snapshot/snap-")
    assert ENCRYPTION <= set(state["02_verify_source_key"]["encryption"])
    assert state["02_verify_source_key"]["encryption"]["resource_arn"] == resource
    assert state["02_verify_source_key"]["source_key_alias"] == "alias/cmkSource"
    copied = state["04_copy_to_target"]
    assert copied["source_recovery_point_arn"] == state["01_create_backup"]["recovery_point_arn"]
    assert copied["copy_job_destination"]["DestinationRecoveryPointArn"] == copied["destination_recovery_point_arn"]
    assert state["05_verify_target_key"]["destination_key_alias"] == "alias/cmkTarget"
    assert ENCRYPTION | {"copy_job_id", "copy_job_key_arn"} <= set(state["05_verify_target_key"]["encryption"])
    assert one["first"] == f"Destination recovery point: {copied['destination_recovery_point_arn']}"
    assert one["second"] == "One copy job: no second hop to follow."
    assert one["verified"]["recovery_point_arn"] == copied["destination_recovery_point_arn"]
    assert [row["outcome"] for row in fleet_rows.results(state)] == ["COMPLETED"]
