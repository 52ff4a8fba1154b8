"""A stall holds a service's next requests, as a hung endpoint would; a reset or a stop releases them."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from runbook_sandbox import process
from runbook_sandbox.accounts import SOURCE

RUNBOOK = Path(sys.executable).parent / "runbook"


def client(endpoint: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=SOURCE.access_key_id,
        aws_secret_access_key=SOURCE.secret_access_key,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=120),
    )


def in_background(call: Any) -> tuple[threading.Thread, dict[str, Any]]:
    """Run call in a thread; the dict receives how long it took and what it returned or raised."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        started = time.monotonic()
        try:
            outcome["result"] = call()
        except Exception as error:  # noqa: BLE001  (the test inspects whatever the call ended with)
            outcome["error"] = error
        outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_stalled_calls_wait_and_other_services_do_not(world):
    world.configure(stall_service="backup", stall_seconds=2, stall_calls=1)
    backup, kms = client(world.endpoint, "backup"), client(world.endpoint, "kms")  # made before the clock starts
    thread, outcome = in_background(backup.list_backup_vaults)
    time.sleep(0.3)
    started = time.monotonic()
    assert kms.list_keys()["Keys"]
    assert time.monotonic() - started < 1.5, "a request for another service waited for the stall"
    thread.join(30)
    assert outcome["seconds"] >= 2 and outcome["result"]["BackupVaultList"] == []
    started = time.monotonic()
    backup.list_backup_vaults()
    assert time.monotonic() - started < 1.5, "only stall_calls requests are held"
    assert world.status()["settings"]["stall"]["calls"] == 0


def test_a_stall_can_hold_one_operation_only(world):
    world.configure(stall_service="backup", stall_operation="ListCopyJobs", stall_seconds=1.5, stall_calls=1)
    backup = client(world.endpoint, "backup")
    started = time.monotonic()
    backup.list_backup_vaults()
    assert time.monotonic() - started < 1.2
    started = time.monotonic()
    backup.list_copy_jobs()
    assert time.monotonic() - started >= 1.5


def test_a_reset_releases_stalled_calls(world):
    world.configure(stall_service="backup", stall_seconds=600, stall_calls=3)
    thread, outcome = in_background(client(world.endpoint, "backup").list_backup_vaults)
    time.sleep(0.5)
    assert thread.is_alive()
    world.reset()
    thread.join(10)
    assert not thread.is_alive() and outcome["seconds"] < 10
    assert world.status()["settings"]["stall"] is None, "a reset forgets the stall with the world"


def test_stop_releases_stalled_calls_at_once(tmp_path):
    folder = tmp_path / "stalled"
    sandbox, _ = process.start(folder)
    try:
        configured = subprocess.run(
            [
                str(RUNBOOK),
                "sandbox",
                "configure",
                "--dir",
                str(folder),
                "--stall-service",
                "backup",
                "--stall-seconds",
                "600",
                "--stall-calls",
                "2",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert configured.returncode == 0, configured.stderr
        assert '"stall": {"service": "backup", "operation": null, "seconds": 600.0, "calls": 2}' in configured.stdout
        thread, outcome = in_background(client(sandbox.endpoint, "backup").list_backup_vaults)
        time.sleep(0.5)
        assert thread.is_alive()
    finally:
        started = time.monotonic()
        stopped = subprocess.run(
            [str(RUNBOOK), "sandbox", "stop", "--dir", str(folder)], capture_output=True, text=True, timeout=120
        )
        seconds = time.monotonic() - started
    assert stopped.returncode == 0, stopped.stderr
    assert seconds < 8, f"stop waited {seconds:.1f} s on a stalled request"
    thread.join(10)
    assert not thread.is_alive()
