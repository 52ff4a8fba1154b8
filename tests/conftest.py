"""One sandbox server per test process; every test starts from a fresh scenario."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import boto3
import pytest

from runbook_lib.aws import clients
from runbook_lib.sandbox import process
from runbook_lib.sandbox.accounts import SOURCE_REGION, TARGET_REGION

# As runbook_lib.runner does: nbformat without jsonschema's IRI check, which compiles a grammar at import (2.5 s).
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


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
    """The walkthrough scenario, fresh, with instant jobs and no faults."""
    sandbox.configure(job_seconds=0, throttle_rate=0)
    sandbox.reset("walkthrough")
    return sandbox


class Accounts:
    """boto3 clients per sandbox profile, created through the profiles a user would use."""

    def __init__(self) -> None:
        self._sessions: dict[str, boto3.Session] = {}

    def client(self, role: str, service: str, region: str | None = None):  # type: ignore[no-untyped-def]
        session = self._sessions.setdefault(role, boto3.Session(profile_name=f"sandbox-{role}"))
        return session.client(service, region_name=region)

    def source(self, service: str, region: str = SOURCE_REGION):  # type: ignore[no-untyped-def]
        return self.client("source", service, region)

    def target(self, service: str, region: str = TARGET_REGION):  # type: ignore[no-untyped-def]
        return self.client("target", service, region)

    def management(self, service: str, region: str = SOURCE_REGION):  # type: ignore[no-untyped-def]
        return self.client("management", service, region)


@pytest.fixture
def aws(world: process.Sandbox) -> Accounts:
    return Accounts()


@pytest.fixture(autouse=True)
def fresh_clients() -> Iterator[None]:
    """Each test makes its own clients: a client's adaptive rate limiter remembers throttling."""
    yield
    clients.forget()
