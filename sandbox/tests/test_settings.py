"""`configure` refuses values that make no sense; throttling draws are independent from call to call."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from runbook_sandbox.process import SandboxError

RUNBOOK = Path(sys.executable).parent / "runbook"


@pytest.mark.parametrize(
    "knobs, message",
    [
        ({"job_seconds": float("nan")}, "job_seconds must be a finite number from 0 to 604800, not nan"),
        ({"job_seconds": float("inf")}, "job_seconds must be a finite number from 0 to 604800, not inf"),
        ({"job_seconds": -1}, "job_seconds must be a finite number from 0 to 604800, not -1"),
        ({"job_seconds": True}, "job_seconds must be a number, not True"),
        ({"job_seconds": "5"}, "job_seconds must be a number, not '5'"),
        ({"job_seconds": 1e308}, "job_seconds must be a finite number from 0 to 604800, not 1e+308"),
        (
            {"stall_service": "nosuch"},
            "stall_service must be an AWS service name such as backup, kms or ec2, not 'nosuch'",
        ),
        ({"throttle_rate": 1.5}, "throttle_rate must be a finite number from 0 to 1, not 1.5"),
        ({"throttle_rate": float("nan")}, "throttle_rate must be a finite number from 0 to 1, not nan"),
        ({"throttle_seed": 1.5}, "throttle_seed must be a whole number, 0 or more, not 1.5"),
        ({"stall_service": "backup", "stall_calls": -2}, "stall_calls must be a whole number, 0 or more, not -2"),
        (
            {"stall_service": "backup", "stall_seconds": float("inf")},
            "stall_seconds must be a finite number from 0 to 3600, not inf",
        ),
        ({"stall_seconds": 5}, "stall_service is required to set a stall (stall_calls 0 alone removes it)"),
        ({"fail_next_copy": 42}, "fail_next_copy must be a non-empty string, not 42"),
        (
            {"job_seconds": 3, "warp_speed": 9},
            "unknown knob 'warp_speed'; knobs are: job_seconds, throttle_rate, throttle_seed, fail_next_backup, "
            "fail_next_copy, stall_service, stall_operation, stall_seconds, stall_calls, one_action_types, "
            "refuse_one_action_types, retry_next_copy",
        ),
    ],
)
def test_configure_refuses_what_makes_no_sense_and_changes_nothing(world, knobs, message):
    before = world.status()["settings"]
    with pytest.raises(SandboxError) as excinfo:
        world.configure(**knobs)
    assert str(excinfo.value) == f"sandbox refused configure: {message}"
    assert world.status()["settings"] == before


@pytest.mark.parametrize(
    "arguments, message",
    [
        (
            ["--job-seconds", "nan"],
            "runbook: sandbox refused configure: job_seconds must be a finite number from 0 to 604800, not nan",
        ),
        (
            ["--job-seconds", "inf"],
            "runbook: sandbox refused configure: job_seconds must be a finite number from 0 to 604800, not inf",
        ),
        (
            ["--job-seconds", "-3"],
            "runbook: sandbox refused configure: job_seconds must be a finite number from 0 to 604800, not -3.0",
        ),
        (["--throttle-rate", "lots"], "runbook: --throttle-rate must be a number, not 'lots'"),
        (["--stall-calls", "2.5"], "runbook: --stall-calls must be a whole number, not '2.5'"),
        (
            ["--one-action-types", "RDS,EBS"],
            "runbook: sandbox refused configure: one_action_types must be a list of Aurora, DocumentDB, Neptune, RDS, "
            "not ['RDS', 'EBS']",
        ),
    ],
)
def test_cli_configure_says_one_line_and_fails(world, arguments, message):
    result = subprocess.run(
        [str(RUNBOOK), "sandbox", "configure", "--dir", str(world.directory), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == message
    assert world.status()["settings"]["job_seconds"] == 0


def test_cli_configure_moves_types_to_one_copy_job_and_back(world):
    def configure(value: str) -> str:
        result = subprocess.run(
            [str(RUNBOOK), "sandbox", "configure", "--dir", str(world.directory), "--one-action-types", value],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert '"one_action_types": ["Aurora", "RDS"]' in configure("RDS,Aurora")
    assert world.status()["settings"]["one_action_types"] == ["Aurora", "RDS"]
    assert '"one_action_types": []' in configure("")


def throttle_pattern(world, calls: int = 24) -> list[bool]:  # type: ignore[no-untyped-def]
    sts = boto3.Session(profile_name="sandbox-source").client(
        "sts", config=Config(retries={"mode": "standard", "total_max_attempts": 1})
    )
    pattern = []
    for _ in range(calls):
        try:
            sts.get_caller_identity()
            pattern.append(False)
        except ClientError as error:
            assert error.response["Error"]["Code"] == "Throttling"
            pattern.append(True)
    return pattern


def test_configure_does_not_reseed_throttling(world):
    world.configure(throttle_rate=0.5)
    first = throttle_pattern(world)
    world.configure(throttle_rate=0.5)
    second = throttle_pattern(world)
    world.configure(throttle_rate=0)
    assert any(first) and not all(first)
    assert first != second, "the same throttled calls twice: the draws were re-seeded"


def test_an_explicit_seed_repeats_the_pattern(world):
    world.configure(throttle_rate=0.5, throttle_seed=11)
    first = throttle_pattern(world)
    world.configure(throttle_rate=0.5, throttle_seed=11)
    second = throttle_pattern(world)
    world.configure(throttle_rate=0)
    assert first == second and any(first)
    assert world.status()["settings"]["throttle_seed"] == 11
