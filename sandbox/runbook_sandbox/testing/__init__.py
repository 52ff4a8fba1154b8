"""Pytest fixtures for tests that run against a sandbox: one sandbox server per test process, and every
test that asks for `world` or `aws` starts from a fresh walkthrough scenario. The runbook's tests and the
sandbox's own import them into their conftest.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from runbook_lib.core.botocore_data import new_session

from .. import process
from ..accounts import SOURCE_REGION, TARGET_REGION


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[process.Sandbox]:
    folder = tmp_path_factory.mktemp("sandbox")
    running, _ = process.start(folder)
    saved = {k: os.environ.get(k) for k in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE")}
    overriding = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY", "AWS_SECRET", "AWS_SESSION")
    for name in [k for k in os.environ if k.startswith(overriding)]:
        del os.environ[name]
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(running.environment())
    yield running
    process.stop(folder)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def world(sandbox: process.Sandbox) -> process.Sandbox:
    """The walkthrough scenario, fresh, with instant jobs, no faults, and AWS's guide's copy rules."""
    sandbox.configure(job_seconds=0, throttle_rate=0, one_action_types=[])
    sandbox.reset("walkthrough")
    return sandbox


class Accounts:
    """Clients per sandbox profile, created through the profiles a user would use; one per
    profile, service and Region for the test, with botocore's default retries."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str, str | None], Any] = {}

    def client(self, role: str, service: str, region: str | None = None) -> Any:
        key = (role, service, region)
        if key not in self._clients:
            self._clients[key] = new_session(f"sandbox-{role}").create_client(service, region_name=region)
        return self._clients[key]

    def source(self, service: str, region: str = SOURCE_REGION) -> Any:
        return self.client("source", service, region)

    def target(self, service: str, region: str = TARGET_REGION) -> Any:
        return self.client("target", service, region)

    def management(self, service: str, region: str = SOURCE_REGION) -> Any:
        return self.client("management", service, region)


@pytest.fixture
def aws(world: process.Sandbox) -> Accounts:
    return Accounts()
