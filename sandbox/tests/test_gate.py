"""What the sandbox does before any service sees a request: credentials and throttling."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from runbook_sandbox.accounts import ACCOUNTS


def stranger(world, service: str):  # type: ignore[no-untyped-def]
    return boto3.client(
        service,
        endpoint_url=world.endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )


@pytest.mark.parametrize("service, call", [("backup", "list_backup_vaults"), ("kms", "list_keys")])
def test_unknown_access_key_is_unrecognized_not_another_account(world, service, call):
    with pytest.raises(ClientError) as excinfo:
        getattr(stranger(world, service), call)()
    error = excinfo.value.response["Error"]
    assert error["Code"] == "UnrecognizedClientException"
    assert error["Message"] == "The security token included in the request is invalid."


def test_unknown_access_key_on_query_and_ec2_protocols(world):
    with pytest.raises(ClientError) as excinfo:
        stranger(world, "sts").get_caller_identity()
    assert excinfo.value.response["Error"]["Code"] == "InvalidClientTokenId"
    with pytest.raises(ClientError) as excinfo:
        stranger(world, "ec2").describe_volumes()
    assert excinfo.value.response["Error"]["Code"] == "AuthFailure"


def test_each_profile_is_its_own_account(aws):
    for account in ACCOUNTS:
        identity = aws.client(account.role, "sts").get_caller_identity()
        assert identity["Account"] == account.account_id


def test_a_request_cannot_pick_its_account_by_header(world, aws):
    sts = aws.source("sts")
    sts.meta.events.register(
        "before-sign.sts.*", lambda request, **_: request.headers.add_header("x-moto-account-id", "333333333333")
    )
    assert sts.get_caller_identity()["Account"] == "222222222222"


def test_throttling_is_retried_by_standard_retry_mode(world):
    world.configure(throttle_rate=0.3, throttle_seed=7)  # unseeded, all 8 pass untouched once in 17 runs
    session = boto3.Session(profile_name="sandbox-source")
    backup = session.client("backup", config=Config(retries={"mode": "standard"}))
    retried = 0
    for _ in range(8):
        response = backup.list_backup_vaults()
        retried += response["ResponseMetadata"]["RetryAttempts"]
    assert retried > 0


def test_throttling_surfaces_without_retries(world):
    world.configure(throttle_rate=1.0)
    session = boto3.Session(profile_name="sandbox-source")
    backup = session.client("backup", config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
    with pytest.raises(ClientError) as excinfo:
        backup.list_backup_vaults()
    assert excinfo.value.response["Error"]["Code"] == "ThrottlingException"
    world.configure(throttle_rate=0)
    assert backup.list_backup_vaults()["BackupVaultList"] == []
