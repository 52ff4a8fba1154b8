"""Clients for the accounts a run touches, by profile, with botocore doing retries and pagination.

Every client the runbook makes comes from here, so every AWS call can be accounted for: when
RUNBOOK_CALL_LOG names a file, each call appends one JSON line (step, profile, Region, IAM action),
which the tests use to prove each step declares the IAM actions it calls. When RUNBOOK_RETRY_LOG
names a file, each call that botocore had to retry appends one line (step, operation, retries,
error codes), which `runbook run` counts per operation in its report.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.configprovider import ConfiguredEndpointProvider
from botocore.retries import standard

from ..core import botocore_data
from ..core.errors import OutOfTime
from . import facts

# Adaptive: botocore's standard retries plus client-side rate limiting once AWS throttles.
DEFAULT_RETRIES = {"mode": "adaptive", "max_attempts": 15}
CALL_LOG_ENV = "RUNBOOK_CALL_LOG"
RETRY_LOG_ENV = "RUNBOOK_RETRY_LOG"
STEP_ENV = "RUNBOOK_STEP"


@lru_cache(maxsize=None)
def session(profile: str) -> botocore.session.Session:
    """The profile's session; every profile reads botocore's data through one loader. botocore's, not
    boto3's: the runbook makes only clients, and boto3's import (s3transfer with it) adds a tenth of a
    second to every command and kernel."""
    return botocore_data.new_session(profile)


def retry_config(profile: str) -> Config:
    """The runbook's retries (adaptive mode), unless the profile or the environment chooses
    (retry_mode, max_attempts)."""
    core = session(profile)
    mode = core.get_config_variable("retry_mode") or DEFAULT_RETRIES["mode"]
    attempts = core.get_config_variable("max_attempts") or DEFAULT_RETRIES["max_attempts"]
    # The config file's max_attempts counts every attempt, as botocore's total_max_attempts does.
    return Config(retries={"mode": mode, "total_max_attempts": attempts})


def configured_endpoint(profile: str, service: str) -> str | None:
    """The endpoint URL the profile's configuration gives the service (AWS_ENDPOINT_URL_<SERVICE>,
    AWS_ENDPOINT_URL, the config file's services section or endpoint_url), None for AWS's own: what a client
    made now would use, read as botocore's session reads it for a client (botocore is pinned), without making
    one, which takes a tenth of a second of CPU (EC2's more)."""
    core = session(profile)
    if core.get_config_variable("ignore_configured_endpoint_urls"):
        return None
    provider = ConfiguredEndpointProvider(
        full_config=core.full_config, scoped_config=core.get_scoped_config(), client_name=service
    )
    return provider.provide()


def client(profile: str, service: str, region: str) -> Any:
    """A client of one account (profile) in one Region, made once per process; its calls and retries
    are logged when asked."""
    return _client(profile, service, region, os.environ.get(CALL_LOG_ENV, ""), os.environ.get(RETRY_LOG_ENV, ""))


@lru_cache(maxsize=None)
def _client(profile: str, service: str, region: str, call_log: str, retry_log: str) -> Any:
    made = session(profile).create_client(service, region_name=region, config=retry_config(profile))
    facts.register(made.meta.events, profile, region)
    made.meta.events.register("before-call", _calling(profile, region))
    made.meta.events.register("after-call", _called)
    made.meta.events.register("after-call-error", _called)
    made.meta.events.register_first("needs-retry", _retry_in_time)
    if call_log:
        made.meta.events.register("before-call", _call_logger(call_log, profile, region))
    if retry_log:
        attempts = made.meta.config.retries["total_max_attempts"]
        made.meta.events.register("needs-retry", _retry_logger(retry_log, attempts))
    return made


# ----- the call a thread waits for, and the time it may take -------------------------------------------

_calls = threading.local()
MAX_BACKOFF_SECONDS = standard.ExponentialBackoff._MAX_BACKOFF  # botocore's longest sleep between two attempts


def in_flight() -> str:
    """The AWS call this thread is making (retries included), as a person finds it: action, profile and
    Region; '' between calls."""
    return str(getattr(_calls, "current", ""))


def _calling(profile: str, region: str) -> Any:
    def started(model: Any, **_: Any) -> None:
        deadline = getattr(_calls, "deadline", None)
        call = f"{model.service_model.signing_name}:{model.name} (profile {profile}, {region})"
        if deadline is not None and time.monotonic() >= deadline:
            raise OutOfTime(call, getattr(_calls, "refused", ""))
        _calls.current = call

    return started


def _called(parsed: Any = None, exception: Any = None, **_: Any) -> None:
    """A call ended: nothing in flight; what AWS refused it with, if it did, is what a deadline reports."""
    _calls.current = ""
    error = (parsed or {}).get("Error", {}) if isinstance(parsed, dict) else {}
    _calls.refused = error.get("Code", "") or (type(exception).__name__ if exception is not None else "")


def _retry_in_time(response: Any = None, caught_exception: Any = None, attempts: int = 1, **_: Any) -> None:
    """botocore retries a throttled or failed attempt after a random backoff of up to 2^(attempts-1) s (at most
    20 s), 15 attempts in all: when that backoff could end past the deadline of `until`, the call ends now
    instead, with what AWS last answered."""
    deadline = getattr(_calls, "deadline", None)
    if deadline is None or time.monotonic() + min(2 ** (attempts - 1), MAX_BACKOFF_SECONDS) < deadline:
        return
    parsed = (response[1] if response is not None else None) or {}
    code = type(caught_exception).__name__ if caught_exception is not None else parsed.get("Error", {}).get("Code")
    if code:
        raise OutOfTime(in_flight(), code)


@contextmanager
def until(deadline: float) -> Iterator[None]:
    """The calls this thread makes within end by `deadline` (time.monotonic()): once it has passed, a call does
    not start and a failed attempt is not retried (OutOfTime, naming the call). A wait then ends on time
    whatever botocore's retries are doing inside one of its polls."""
    before = getattr(_calls, "deadline", None)
    _calls.deadline = deadline if before is None else min(before, deadline)
    _calls.refused = ""
    try:
        yield
    finally:
        _calls.deadline = before


def _append(path: str, entry: dict[str, Any]) -> None:
    with open(path, "a") as handle:
        handle.write(json.dumps(entry) + "\n")


_polling = threading.local()


@contextmanager
def polling() -> Iterator[None]:
    """Calls made within are a wait's polls: the call log marks them, as a step's call budget leaves
    them out (their number follows the job's duration, not the procedure)."""
    before = getattr(_polling, "on", False)
    _polling.on = True
    try:
        yield
    finally:
        _polling.on = before


def _call_logger(path: str, profile: str, region: str) -> Any:
    def log_call(model: Any, **_: Any) -> None:
        action = f"{model.service_model.signing_name}:{model.name}"
        entry = {"step": os.environ.get(STEP_ENV, ""), "profile": profile, "region": region, "action": action}
        _append(path, {**entry, "poll": True} if getattr(_polling, "on", False) else entry)

    return log_call


RETRYABLE = standard.OrRetryChecker(
    [standard.TransientRetryableChecker(), standard.ThrottledRetryableChecker(), standard.ModeledRetryableChecker()]
)


def _retry_logger(path: str, max_attempts: int) -> Any:
    """One line per attempt that failed the way botocore retries (throttling, 5xx, connection) and that
    botocore will retry (not the last one, which botocore gives up on)."""

    def log_attempt(response: Any, operation: Any, attempts: int, caught_exception: Any = None, **_: Any) -> None:
        if attempts >= max_attempts:
            return
        http, parsed = response if response is not None else (None, None)
        context = standard.RetryContext(
            attempt_number=attempts,
            operation_model=operation,
            parsed_response=parsed,
            http_response=http,
            caught_exception=caught_exception,
        )
        if not RETRYABLE.is_retryable(context):
            return
        code = type(caught_exception).__name__ if caught_exception else (parsed or {}).get("Error", {}).get("Code")
        _append(
            path,
            {
                "step": os.environ.get(STEP_ENV, ""),
                "operation": operation.name,
                "attempt": attempts,
                "error": code or str(getattr(http, "status_code", "")),
            },
        )

    return log_attempt


def forget() -> None:
    """Drop the sessions and clients made so far: the next ones read the AWS config and environment again."""
    session.cache_clear()
    _client.cache_clear()


def account_id(profile: str, region: str) -> str:
    """The account a profile signs as (sts:GetCallerIdentity needs no permission)."""
    return client(profile, "sts", region).get_caller_identity()["Account"]
