"""The sandbox counts the AWS requests it answers, per operation; control requests never count."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from runbook_sandbox import process
from runbook_sandbox.accounts import SOURCE_REGION

RUNBOOK = Path(sys.executable).parent / "runbook"
INVALID_TOKEN = "The security token included in the request is invalid."


def runbook(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(RUNBOOK), *args], capture_output=True, text=True, timeout=120)


def a_few_calls(aws) -> None:  # type: ignore[no-untyped-def]
    kms = aws.source("kms")
    kms.list_aliases()
    kms.list_aliases()
    aws.source("backup").list_backup_vaults()
    aws.source("ec2").describe_volumes()


def test_each_operation_is_counted_most_first_and_control_requests_are_not(world, aws):
    assert world.stats()["total"] == 0
    a_few_calls(aws)
    world.status()
    world.state()
    world.configure(job_seconds=0)
    stats = world.stats()
    assert list(stats["operations"].items()) == [
        ("kms:ListAliases", 2),
        ("backup:ListBackupVaults", 1),
        ("ec2:DescribeVolumes", 1),
    ]
    assert stats["total"] == 4


def test_a_clear_returns_what_it_cleared_and_a_reset_starts_again(world, aws):
    a_few_calls(aws)
    cleared = world.clear_stats()
    assert cleared["total"] == 4 and cleared["operations"]["kms:ListAliases"] == 2
    after = world.stats()
    assert (after["operations"], after["total"]) == ({}, 0)
    assert after["since"] >= cleared["since"]
    aws.source("kms").list_keys()
    assert world.stats()["operations"] == {"kms:ListKeys": 1}
    world.reset()
    assert world.stats()["total"] == 0


def test_refused_and_throttled_requests_count(world):
    session = botocore.session.Session()
    stranger = session.create_client(
        "kms",
        region_name=SOURCE_REGION,
        endpoint_url=world.endpoint,
        aws_access_key_id="AKIANOTASANDBOXKEY01",
        aws_secret_access_key="x",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    with pytest.raises(ClientError) as excinfo:
        stranger.list_keys()
    error = excinfo.value.response["Error"]
    assert (error["Code"], error["Message"]) == ("UnrecognizedClientException", INVALID_TOKEN)
    world.configure(throttle_rate=1)
    source = botocore.session.Session(profile="sandbox-source").create_client(
        "kms", config=Config(retries={"mode": "standard", "total_max_attempts": 1})
    )
    with pytest.raises(ClientError) as excinfo:
        source.list_keys()
    error = excinfo.value.response["Error"]
    assert (error["Code"], error["Message"]) == ("ThrottlingException", "Rate exceeded")
    assert world.stats()["operations"] == {"kms:(unknown)": 1, "kms:ListKeys": 1}


def test_the_counts_need_the_token_and_a_clear_needs_a_post(world):
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(f"{world.endpoint}/_sandbox/stats", timeout=30)
    assert excinfo.value.code == 403
    with pytest.raises(process.SandboxError) as refused:
        world.control("stats/clear")
    assert str(refused.value) == "sandbox refused stats/clear: no control action GET stats/clear"


def test_runbook_sandbox_stats_prints_a_table_and_clears(world, aws):
    a_few_calls(aws)
    printed = runbook("sandbox", "stats", "--dir", str(world.directory))
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert lines[0].startswith("AWS requests since ") and lines[0].endswith(" UTC (the last reset or clear):")
    assert [line.split() for line in lines[1:]] == [
        ["operation", "calls"],
        ["-" * len("backup:ListBackupVaults"), "-----"],
        ["kms:ListAliases", "2"],
        ["backup:ListBackupVaults", "1"],
        ["ec2:DescribeVolumes", "1"],
        ["-" * len("backup:ListBackupVaults"), "-----"],
        ["total", "4"],
    ]
    assert len({len(line) for line in lines[1:]}) == 1, "the columns line up"
    cleared = runbook("sandbox", "stats", "--dir", str(world.directory), "--json", "--clear")
    assert json.loads(cleared.stdout)["total"] == 4
    empty = runbook("sandbox", "stats", "--dir", str(world.directory))
    assert empty.stdout.startswith("No AWS requests since ") and empty.stdout.endswith("(the last reset or clear).\n")


def test_runbook_sandbox_stats_without_a_sandbox_says_so(tmp_path):
    result = runbook("sandbox", "stats", "--dir", str(tmp_path))
    assert result.returncode == 1
    expected = f"runbook: no sandbox is running in {tmp_path}; start one with: runbook sandbox start"
    assert result.stderr.strip() == expected
