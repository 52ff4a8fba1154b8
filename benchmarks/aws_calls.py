"""Count the AWS calls a walkthrough makes, and time the 10,000 recovery point table; prints the figures
next to their references, asserts nothing.

References: a walkthrough (steps 00-05 on the sandbox's walkthrough, one volume) makes at most the sum of
core/steps.CALL_BUDGET (46) calls besides job polls; the table of a vault holding 10,000
recovery points is built in at most 11 calls (10 pages and one alias listing) and within 1.5 x the time
of a bare paginator loop over the same vault, both measured in this run, alternately; a run over the
fleet scenario's 200 volumes polls its jobs with one listing a round (ceil(N/1000) calls), not N.
Run: make benchmark   (or .venv/bin/python benchmarks/aws_calls.py [ROUNDS])
"""

from __future__ import annotations

import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runbook_lib.aws import clients
from runbook_lib.core.steps import CALL_BUDGET
from runbook_sandbox import process

ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = str(Path(sys.executable).parent / "runbook")
SOURCE, REGION, VAULT = "sandbox-source", "us-east-1", "SourceVault"


def walkthrough_calls(sandbox: process.Sandbox, folder: Path) -> None:
    sandbox.reset("walkthrough")
    log = folder / "calls.jsonl"
    env = {**os.environ, **sandbox.environment(), clients.CALL_LOG_ENV: str(log)}
    done = subprocess.run(
        [RUNBOOK, "run", str(ROOT / "parameters" / "sandbox.yaml"), "--out", str(folder / "run")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        print(f"walkthrough failed ({done.returncode}): {done.stderr.strip()}")
        return
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    made = collections.Counter(c["step"] for c in calls if not c.get("poll"))
    polls = sum(1 for c in calls if c.get("poll"))
    for step, budget in CALL_BUDGET.items():
        print(f"  {step:<22} {made[step]:>3} calls   budget {budget}")
    total = sum(made.values())
    target = sum(CALL_BUDGET.values())
    verdict = "meets" if total <= target else "MISSES"
    print(f"walkthrough: {total} calls besides {polls} job polls   target {target}: {verdict} it")


def fleet_polls(sandbox: process.Sandbox, folder: Path) -> None:
    """A run over the fleet scenario's 200 volumes: its job polls next to ceil(N/1000) a round."""
    sandbox.reset("fleet")
    log = folder / "fleet-calls.jsonl"
    parameters = folder / "fleet.yaml"
    parameters.write_text(
        json.dumps({"resource_name": "", "resource_tags": {"Fleet": "demo"}, "poll_seconds": 1, "apply": True})
    )
    env = {**os.environ, **sandbox.environment(), clients.CALL_LOG_ENV: str(log)}
    began = time.perf_counter()
    done = subprocess.run(
        [RUNBOOK, "run", str(parameters), "--out", str(folder / "fleet-run")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        print(f"fleet run failed ({done.returncode}): {done.stderr.strip()}")
        return
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    polls = collections.Counter(c["action"] for c in calls if c.get("poll"))
    made = sum(1 for c in calls if not c.get("poll"))
    print(f"fleet of 200 volumes: runbook run {seconds:.1f} s, {made} calls besides polls")
    for action, count in sorted(polls.items()):
        print(f"  {action:<24} {count} polls (each round one listing: ceil(200/1000) = 1 call, not 200)")


def table_calls(sandbox: process.Sandbox, folder: Path, rounds: int) -> None:
    from runbook_lib.steps import walkthrough

    sandbox.reset("many-recovery-points")
    log = folder / "table-calls.jsonl"
    os.environ.update(sandbox.environment())
    os.environ[clients.CALL_LOG_ENV] = str(log)
    clients.forget()
    backup = clients.client(SOURCE, "backup", REGION)

    def bare() -> int:
        pages = backup.get_paginator("list_recovery_points_by_backup_vault").paginate(
            BackupVaultName=VAULT, PaginationConfig={"PageSize": 1000}
        )
        return sum(len(page["RecoveryPoints"]) for page in pages)

    def table() -> int:
        return len(walkthrough.recovery_points_table(SOURCE, REGION, VAULT))

    bare(), table()  # warm: clients made, models loaded
    log.write_text("")
    rows = table()
    calls = collections.Counter(json.loads(line)["action"] for line in log.read_text().splitlines())
    verdict = "meets" if sum(calls.values()) <= 11 else "MISSES"
    print(f"table of {rows:,} recovery points: {sum(calls.values())} calls {dict(calls)}   target 11: {verdict} it")
    bare_times, table_times = [], []
    for _ in range(rounds):
        for function, times in ((bare, bare_times), (table, table_times)):
            began = time.perf_counter()
            function()
            times.append(time.perf_counter() - began)
    ratio = statistics.median(table_times) / statistics.median(bare_times)
    verdict = "meets" if ratio <= 1.5 else "MISSES"
    print(
        f"table {statistics.median(table_times):.2f} s, bare paginator {statistics.median(bare_times):.2f} s "
        f"(medians of {rounds}): {ratio:.2f} x   target 1.5 x: {verdict} it"
    )


def main(rounds: int = 5) -> None:
    with tempfile.TemporaryDirectory() as folder:
        sandbox, _ = process.start(Path(folder) / "sandbox", job_seconds=0)
        try:
            walkthrough_calls(sandbox, Path(folder))
            fleet_polls(sandbox, Path(folder))
            table_calls(sandbox, Path(folder), rounds)
        finally:
            process.stop(Path(folder) / "sandbox")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
