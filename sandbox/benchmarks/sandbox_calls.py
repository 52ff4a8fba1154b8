"""Measure the sandbox's calls at size: resets of the worlds that hold a fleet, and the latency of the
calls a run makes in them; prints the figures, asserts nothing.

Target (issue 11): the median call under 5 ms, over the mix of calls a run makes (DescribeVolumes
by tag, DescribeRecoveryPoint, ListBackupJobs and ListCopyJobs with filters, DescribeBackupVault,
KMS DescribeKey, ListAliases and GetKeyPolicy), in `fleet` after a backup and a copy of each of its
200 volumes (400 jobs), and in `many-recovery-points` (10,000 recovery points in one vault).
A call's figure is its round trip: from botocore sending the request to the answer arriving (a new
connection, the sandbox's work, the transfer), without botocore's own work before and after, which
is the same against AWS. Beside it: the whole call, botocore included, and the server's CPU time per
call (on Linux), which other work on the machine does not inflate. The listing of all 10,000
recovery points (10 pages of 1,000) is timed apart: a page carries 1,000 records.
Run: make benchmark   (or .venv/bin/python sandbox/benchmarks/sandbox_calls.py [ROUNDS])
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import botocore.session

from runbook_sandbox import process
from runbook_sandbox.accounts import SOURCE, SOURCE_REGION, TARGET, TARGET_REGION

TARGET_MS = 5.0
SOURCE_VAULT = "SourceVault"
TARGET_VAULT = "CABTargetVault"
TARGET_VAULT_ARN = f"arn:aws:backup:{TARGET_REGION}:{TARGET.account_id}:backup-vault:{TARGET_VAULT}"
ROLE_ARN = f"arn:aws:iam::{SOURCE.account_id}:role/service-role/AWSBackupDefaultServiceRole"


class Stopwatch:
    """The round trip of a client's last request: botocore's before-send to its before-parse."""

    def __init__(self) -> None:
        self.sent = 0.0
        self.round_trip_ms = 0.0

    def watch(self, client: Any) -> None:
        client.meta.events.register("before-send", self.on_send)
        client.meta.events.register("before-parse", self.on_answer)

    def on_send(self, **_: Any) -> None:
        self.sent = time.perf_counter()

    def on_answer(self, **_: Any) -> None:
        self.round_trip_ms = (time.perf_counter() - self.sent) * 1000


class Clients:
    """One botocore client per profile, service and Region, as a run holds them, all on one stopwatch."""

    def __init__(self, sandbox: process.Sandbox):
        self.sandbox = sandbox
        self.made: dict[tuple[str, str, str], Any] = {}
        self.stopwatch = Stopwatch()

    def __call__(self, role: str, service: str, region: str = SOURCE_REGION) -> Any:
        if (role, service, region) not in self.made:
            session = botocore.session.Session(profile=f"sandbox-{role}")
            session.set_config_variable("config_file", str(self.sandbox.config_file))
            session.set_config_variable("credentials_file", str(self.sandbox.credentials_file))
            client = session.create_client(service, region_name=region)
            self.stopwatch.watch(client)
            self.made[(role, service, region)] = client
        return self.made[(role, service, region)]


def timed_resets(sandbox: process.Sandbox, scenario: str, rounds: int = 3) -> list[float]:
    figures = []
    for _ in range(rounds):
        began = time.perf_counter()
        sandbox.reset(scenario)
        figures.append(time.perf_counter() - began)
    return figures


def back_up_and_copy_the_fleet(aws: Clients) -> None:
    """What a run over the fleet leaves: a backup and a cross-account copy of each volume."""
    aws("management", "backup").update_global_settings(GlobalSettings={"isCrossAccountBackupEnabled": "true"})
    kms = aws("source", "kms")
    for alias in ("alias/cmkSource", "alias/cmkFleetB", "alias/cmkFleetC"):
        key = kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"]
        policy = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
        policy["Statement"].append(
            {
                "Sid": "Share with the target account",
                "Effect": "Allow",
                "Principal": {"AWS": TARGET.root_arn},
                "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant"],
                "Resource": "*",
            }
        )
        kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))
    vault_key = kms.describe_key(KeyId="alias/cmkSourceVault")["KeyMetadata"]["Arn"]
    aws("source", "backup").create_backup_vault(BackupVaultName=SOURCE_VAULT, EncryptionKeyArn=vault_key)
    target = aws("target", "backup", TARGET_REGION)
    target_key = aws("target", "kms", TARGET_REGION).describe_key(KeyId="alias/cmkTarget")["KeyMetadata"]["Arn"]
    target.create_backup_vault(BackupVaultName=TARGET_VAULT, EncryptionKeyArn=target_key)
    copy_in = {
        "Effect": "Allow",
        "Principal": {"AWS": SOURCE.root_arn},
        "Action": "backup:CopyIntoBackupVault",
        "Resource": "*",
    }
    target.put_backup_vault_access_policy(
        BackupVaultName=TARGET_VAULT, Policy=json.dumps({"Version": "2012-10-17", "Statement": [copy_in]})
    )
    backup = aws("source", "backup")
    for volume in fleet_volumes(aws):
        arn = f"arn:aws:ec2:{SOURCE_REGION}:{SOURCE.account_id}:volume/{volume['VolumeId']}"
        job = backup.start_backup_job(BackupVaultName=SOURCE_VAULT, ResourceArn=arn, IamRoleArn=ROLE_ARN)
        point = backup.describe_backup_job(BackupJobId=job["BackupJobId"])["RecoveryPointArn"]
        backup.start_copy_job(
            RecoveryPointArn=point,
            SourceBackupVaultName=SOURCE_VAULT,
            DestinationBackupVaultArn=TARGET_VAULT_ARN,
            IamRoleArn=ROLE_ARN,
        )


def fleet_volumes(aws: Clients) -> list[dict[str, Any]]:
    return aws("source", "ec2").describe_volumes(Filters=[{"Name": "tag:Fleet", "Values": ["demo"]}])["Volumes"]


def run_mix(aws: Clients) -> dict[str, Callable[[], Any]]:
    """The calls a run makes, each as it makes them, against the world as it is now."""
    backup, kms, ec2 = aws("source", "backup"), aws("source", "kms"), aws("source", "ec2")
    listed = backup.list_recovery_points_by_backup_vault(BackupVaultName=SOURCE_VAULT, MaxResults=1)
    point = listed["RecoveryPoints"][0]["RecoveryPointArn"]
    since = datetime.now(timezone.utc) - timedelta(days=1)
    key = kms.describe_key(KeyId="alias/cmkSource")["KeyMetadata"]["Arn"]
    tag = "demo" if fleet_volumes(aws) else "walkthrough-volume"
    tag_filter = [{"Name": "tag:Fleet" if tag == "demo" else "tag:Name", "Values": [tag]}]
    return {
        "ec2:DescribeVolumes (by tag)": lambda: ec2.describe_volumes(Filters=tag_filter),
        "backup:DescribeRecoveryPoint": lambda: backup.describe_recovery_point(
            BackupVaultName=SOURCE_VAULT, RecoveryPointArn=point
        ),
        "backup:ListBackupJobs (filters)": lambda: backup.list_backup_jobs(
            ByCreatedAfter=since, ByBackupVaultName=SOURCE_VAULT, ByState="COMPLETED", MaxResults=1000
        ),
        "backup:ListCopyJobs (filters)": lambda: backup.list_copy_jobs(
            ByCreatedAfter=since, ByDestinationVaultArn=TARGET_VAULT_ARN, ByState="COMPLETED", MaxResults=1000
        ),
        "backup:DescribeBackupVault": lambda: backup.describe_backup_vault(BackupVaultName=SOURCE_VAULT),
        "kms:DescribeKey": lambda: kms.describe_key(KeyId="alias/cmkSource"),
        "kms:ListAliases": lambda: kms.list_aliases(),
        "kms:GetKeyPolicy": lambda: kms.get_key_policy(KeyId=key, PolicyName="default"),
    }


@dataclass
class Figures:
    """One operation's milliseconds per call: round trips, whole calls, and the server's CPU."""

    round_trips: list[float] = field(default_factory=list)
    whole_calls: list[float] = field(default_factory=list)
    server_cpu: float | None = None


def cpu_seconds(pid: int) -> float | None:
    """The CPU time a process has used (user and system), or None where /proc does not tell."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def latencies(
    calls: dict[str, Callable[[], Any]], stopwatch: Stopwatch, rounds: int, server_pid: int
) -> dict[str, Figures]:
    """Each operation's figures, one operation's rounds after another's (so that the server's CPU
    per call is the operation's own)."""
    measured: dict[str, Figures] = {}
    for name, call in calls.items():
        call()  # the first call of a client loads its model: not what a run pays per call
        figures = measured[name] = Figures()
        cpu_before = cpu_seconds(server_pid)
        for _ in range(rounds):
            began = time.perf_counter()
            call()
            figures.whole_calls.append((time.perf_counter() - began) * 1000)
            figures.round_trips.append(stopwatch.round_trip_ms)
        cpu_after = cpu_seconds(server_pid)
        if cpu_before is not None and cpu_after is not None:
            figures.server_cpu = (cpu_after - cpu_before) * 1000 / rounds
    return measured


def p90(figures: list[float]) -> float:
    return statistics.quantiles(figures, n=10)[-1]


def report_latencies(world: str, measured: dict[str, Figures]) -> list[float]:
    """Prints each operation's figures and the mix's; returns the mix's round trips."""
    rounds = len(next(iter(measured.values())).round_trips)
    print(f"\n{world}, {rounds} calls each, milliseconds per call:")
    print(f"  {'':<34}{'round trip: median':>20} {'p90':>7}{'whole call: median':>20}{'server CPU':>12}")
    for name, figures in measured.items():
        cpu = "" if figures.server_cpu is None else f"{figures.server_cpu:12.2f}"
        print(
            f"  {name:<34}{statistics.median(figures.round_trips):20.2f} {p90(figures.round_trips):7.2f}"
            f"{statistics.median(figures.whole_calls):20.2f}{cpu}"
        )
    every = [value for figures in measured.values() for value in figures.round_trips]
    whole_calls = [value for figures in measured.values() for value in figures.whole_calls]
    print(
        f"  {'all of the mix':<34}{statistics.median(every):20.2f} {p90(every):7.2f}"
        f"{statistics.median(whole_calls):20.2f}   {verdict(statistics.median(every))}"
    )
    return every


def verdict(median: float) -> str:
    return f"target {TARGET_MS:.0f} ms: {'meets' if median < TARGET_MS else 'MISSES'} it"


def time_full_listing(aws: Clients, rounds: int = 3) -> None:
    paginator = aws("source", "backup").get_paginator("list_recovery_points_by_backup_vault")
    for _ in range(rounds):
        pages, points, round_trips = 0, 0, []
        began = time.perf_counter()
        for page in paginator.paginate(BackupVaultName=SOURCE_VAULT):
            round_trips.append(aws.stopwatch.round_trip_ms)
            pages, points = pages + 1, points + len(page["RecoveryPoints"])
        seconds = time.perf_counter() - began
        print(
            f"  ListRecoveryPointsByBackupVault, all: {points} points in {pages} pages, {seconds:.2f} s with "
            f"botocore; a page's round trip: median {statistics.median(round_trips):.0f} ms, "
            f"max {max(round_trips):.0f} ms"
        )


def main(rounds: int = 100) -> None:
    with tempfile.TemporaryDirectory() as folder:
        sandbox, _ = process.start(Path(folder) / "sandbox")
        try:
            sandbox.configure(job_seconds=0)
            aws = Clients(sandbox)
            every: list[float] = []
            for scenario in ("many-recovery-points", "fleet"):
                resets = timed_resets(sandbox, scenario)
                print(f"reset {scenario:<22} median {statistics.median(resets):.2f} s   max {max(resets):.2f} s")
            sandbox.reset("many-recovery-points")
            mix = latencies(run_mix(aws), aws.stopwatch, rounds, sandbox.pid)
            every += report_latencies("many-recovery-points (10,000 recovery points)", mix)
            time_full_listing(aws)
            sandbox.reset("fleet")
            began = time.perf_counter()
            back_up_and_copy_the_fleet(aws)
            print(f"\nfleet: 200 backups and 200 copies started in {time.perf_counter() - began:.1f} s")
            mix = latencies(run_mix(aws), aws.stopwatch, rounds, sandbox.pid)
            every += report_latencies("fleet (200 volumes, 400 jobs)", mix)
            median = statistics.median(every)
            print(f"\nboth worlds: round trip median {median:.2f} ms, p90 {p90(every):.2f} ms; {verdict(median)}")
        finally:
            process.stop(Path(folder) / "sandbox")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
