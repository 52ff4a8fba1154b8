"""The sandbox's fixed accounts, Regions and static credentials.

Everything that identifies a caller lives here, so that the server, the profile writer and the
scenarios agree on one table. The keys are sandbox-only values, never valid on AWS.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SandboxAccount:
    """One account of the sandbox world and the static key pair that signs as it."""

    role: str
    account_id: str
    access_key_id: str
    secret_access_key: str
    default_region: str

    @property
    def profile(self) -> str:
        return f"sandbox-{self.role}"

    @property
    def root_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:root"


SOURCE_REGION = "us-east-1"
TARGET_REGION = "eu-west-1"

MANAGEMENT = SandboxAccount(
    "management", "111111111111", "AKIASANDBOXMGMT00001", "sandbox-management-secret", SOURCE_REGION
)
SOURCE = SandboxAccount("source", "222222222222", "AKIASANDBOXSOURCE001", "sandbox-source-secret", SOURCE_REGION)
TARGET = SandboxAccount("target", "333333333333", "AKIASANDBOXTARGET001", "sandbox-target-secret", TARGET_REGION)
OUTSIDER = SandboxAccount("outsider", "444444444444", "AKIASANDBOXOUTSIDER1", "sandbox-outsider-secret", SOURCE_REGION)

ACCOUNTS: tuple[SandboxAccount, ...] = (MANAGEMENT, SOURCE, TARGET, OUTSIDER)
ACCOUNT_BY_ACCESS_KEY: dict[str, SandboxAccount] = {a.access_key_id: a for a in ACCOUNTS}
ACCOUNT_BY_ID: dict[str, SandboxAccount] = {a.account_id: a for a in ACCOUNTS}

# The control API's caller proves itself with a per-sandbox token (made by process.start) in this
# header; the server receives it in this environment variable, and sandbox.env exports it.
CONTROL_TOKEN_HEADER = "X-Sandbox-Token"
CONTROL_TOKEN_VARIABLE = "RUNBOOK_SANDBOX_TOKEN"
