"""Clients for the accounts a run touches, by profile, with botocore doing retries and pagination.

Every client the runbook makes comes from here, so every AWS call can be accounted for: when
RUNBOOK_CALL_LOG names a file, each call appends one JSON line (step, profile, Region, IAM action).
The tests use that to prove each step declares the IAM actions it calls.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

DEFAULT_RETRIES = {"mode": "standard", "max_attempts": 10}
CALL_LOG_ENV = "RUNBOOK_CALL_LOG"
STEP_ENV = "RUNBOOK_STEP"


@lru_cache(maxsize=None)
def session(profile: str) -> boto3.Session:
    return boto3.Session(profile_name=profile)


def retry_config(profile: str) -> Config:
    """botocore's standard retries, unless the profile or the environment chooses (retry_mode, max_attempts)."""
    core = session(profile)._session
    chosen = {"mode": core.get_config_variable("retry_mode"), "max_attempts": core.get_config_variable("max_attempts")}
    return Config(retries={name: chosen[name] or default for name, default in DEFAULT_RETRIES.items()})


def client(profile: str, service: str, region: str) -> Any:
    """A client of one account (profile) in one Region; its calls are logged when asked."""
    made = session(profile).client(service, region_name=region, config=retry_config(profile))
    if os.environ.get(CALL_LOG_ENV):
        made.meta.events.register("before-call", _logger(profile, region))
    return made


def _logger(profile: str, region: str) -> Any:
    def log_call(model: Any, **_: Any) -> None:
        action = f"{model.service_model.signing_name}:{model.name}"
        with open(os.environ[CALL_LOG_ENV], "a") as handle:
            entry = {"step": os.environ.get(STEP_ENV, ""), "profile": profile, "region": region, "action": action}
            handle.write(json.dumps(entry) + "\n")

    return log_call


def account_id(profile: str, region: str) -> str:
    """The account a profile signs as (sts:GetCallerIdentity needs no permission)."""
    return client(profile, "sts", region).get_caller_identity()["Account"]
