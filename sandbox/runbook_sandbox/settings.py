"""Knobs a test or trainer turns on a running sandbox: job duration, and injected faults, among them AWS
refusing one copy job across account and Region for a database type (AWS copies them in one job since
October 2025, but not everywhere at once; see backup/resource_rules.py).

One instance per server process. Scenario resets keep the knobs (a trainer's slow jobs stay slow),
except the faults that belong to the world that was reset: queued job failures and retries, a stall, and
the refused single copy jobs (`refuse_one_action_types`): a trainer sets them after the reset.

Throttling draws come from a generator seeded from os.urandom, once: each call draws anew, so a
retried run does not meet its throttle at the same request. `throttle_seed` re-seeds it, for a
test that needs the same pattern twice.

A stall holds the next `stall_calls` requests for one service (and, optionally, one operation)
for `stall_seconds` before they are answered, as a hung AWS endpoint would. A reset or shutdown
releases every held request at once.
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import botocore.session

from .backup.resource_rules import REFUSABLE_TYPES

DEFAULT_STALL_SECONDS = 600.0
MAX_STALL_SECONDS = 3600.0


MAX_JOB_SECONDS = 7 * 24 * 3600  # AWS Backup's longest default completion window: seven days
MAX_RETRY_SECONDS = 2 * 3600  # a copy job's retry phase after a system error lasts up to 2 hours ("Copy a backup")


class SettingsError(ValueError):
    """A knob's value makes no sense; the message names the knob and what it accepts."""


def _number(knob: str, value: Any, low: float, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingsError(f"{knob} must be a number, not {value!r}")
    if not math.isfinite(value) or not low <= value <= high:
        allowed = f"from {low:g} to {high:g}" if math.isfinite(high) else f"{low:g} or more"
        raise SettingsError(f"{knob} must be a finite number {allowed}, not {value!r}")
    return float(value)


def _whole(knob: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SettingsError(f"{knob} must be a whole number, {low} or more, not {value!r}")
    return value


@cache
def _services() -> frozenset[str]:
    return frozenset(botocore.session.get_session().get_available_services())


def _service(knob: str, value: Any) -> str:
    """A service name as requests sign it (backup, kms, ec2, ...): a stall on a name no request carries
    would never fire."""
    name = _text(knob, value).lower()
    if name not in _services():
        raise SettingsError(f"{knob} must be an AWS service name such as backup, kms or ec2, not {value!r}")
    return name


def _text(knob: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"{knob} must be a non-empty string, not {value!r}")
    return value.strip()


def _types(knob: str, value: Any) -> frozenset[str]:
    """Database types (those AWS copied in two hops before October 2025); an empty list names none."""
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value) or set(value) - REFUSABLE_TYPES:
        raise SettingsError(f"{knob} must be a list of {', '.join(sorted(REFUSABLE_TYPES))}, not {value!r}")
    return frozenset(value)


# Each knob and the check that turns what a request sent into the value the sandbox keeps.
KNOBS = {
    "job_seconds": lambda v: _number("job_seconds", v, 0, MAX_JOB_SECONDS),
    "throttle_rate": lambda v: _number("throttle_rate", v, 0, 1),
    "throttle_seed": lambda v: _whole("throttle_seed", v, 0),
    "fail_next_backup": lambda v: _text("fail_next_backup", v),
    "fail_next_copy": lambda v: _text("fail_next_copy", v),
    "stall_service": lambda v: _service("stall_service", v),
    "stall_operation": lambda v: _text("stall_operation", v),
    "stall_seconds": lambda v: _number("stall_seconds", v, 0, MAX_STALL_SECONDS),
    "stall_calls": lambda v: _whole("stall_calls", v, 0),
    "one_action_types": lambda v: _types("one_action_types", v),
    "refuse_one_action_types": lambda v: _types("refuse_one_action_types", v),
    "retry_next_copy": lambda v: _number("retry_next_copy", v, 0, MAX_RETRY_SECONDS),
}
STALL_KNOBS = ("stall_service", "stall_operation", "stall_seconds", "stall_calls")


def validate(knobs: dict[str, Any]) -> dict[str, Any]:
    """The knobs, checked and converted; SettingsError naming the first knob that makes no sense."""
    unknown = sorted(set(knobs) - set(KNOBS))
    if unknown:
        raise SettingsError(f"unknown knob {unknown[0]!r}; knobs are: {', '.join(KNOBS)}")
    checked = {name: KNOBS[name](value) for name, value in knobs.items() if value is not None}
    stall = {name: checked[name] for name in STALL_KNOBS if name in checked}
    if stall and "stall_service" not in stall and stall.get("stall_calls") != 0:
        raise SettingsError("stall_service is required to set a stall (stall_calls 0 alone removes it)")
    return checked


@dataclass
class Stall:
    service: str
    operation: str | None
    seconds: float
    calls: int

    def matches(self, service: str, operation: str | None) -> bool:
        return self.calls > 0 and self.service == service and self.operation in (None, operation)


@dataclass
class SandboxSettings:
    job_seconds: float = 0.0
    throttle_rate: float = 0.0
    throttle_seed: int | None = None
    queued_job_failures: dict[str, list[str]] = field(default_factory=lambda: {"backup": [], "copy": []})
    stall: Stall | None = None
    one_action_types: frozenset[str] = frozenset()  # copied in one job even when refuse_one_action_types names them
    refuse_one_action_types: frozenset[str] = frozenset()  # StartCopyJob refuses one job across account and Region
    queued_copy_retries: list[float] = field(default_factory=list)  # seconds the next copy jobs stay CREATED
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _rng: random.Random = field(default_factory=random.Random, repr=False)  # seeded from os.urandom
    _release: threading.Event = field(default_factory=threading.Event, repr=False)

    def configure(self, /, **knobs: Any) -> None:
        """Change the knobs given; all are checked before any changes (SettingsError names the first bad one)."""
        checked = validate(knobs)
        with self._lock:
            if "job_seconds" in checked:
                self.job_seconds = checked["job_seconds"]
            if "throttle_rate" in checked:
                self.throttle_rate = checked["throttle_rate"]
            if "throttle_seed" in checked:
                self.throttle_seed = checked["throttle_seed"]
                self._rng.seed(self.throttle_seed)
            if "one_action_types" in checked:
                self.one_action_types = checked["one_action_types"]
            if "refuse_one_action_types" in checked:
                self.refuse_one_action_types = checked["refuse_one_action_types"]
            if "retry_next_copy" in checked:
                self.queued_copy_retries.append(checked["retry_next_copy"])
            if "fail_next_backup" in checked:
                self.queued_job_failures["backup"].append(checked["fail_next_backup"])
            if "fail_next_copy" in checked:
                self.queued_job_failures["copy"].append(checked["fail_next_copy"])
            if "stall_service" in checked:
                self.stall = Stall(
                    checked["stall_service"],
                    checked.get("stall_operation"),
                    checked.get("stall_seconds", DEFAULT_STALL_SECONDS),
                    checked.get("stall_calls", 1),
                )
            elif checked.get("stall_calls") == 0:
                self.stall = None

    def take_injected_failure(self, kind: str) -> str | None:
        """The StatusMessage the next job of this kind must fail with, if a test queued one."""
        with self._lock:
            queue = self.queued_job_failures[kind]
            return queue.pop(0) if queue else None

    def take_copy_retry(self) -> float:
        """How long the next copy job stays CREATED in AWS's retry phase before it runs (0: it runs at once)."""
        with self._lock:
            return self.queued_copy_retries.pop(0) if self.queued_copy_retries else 0.0

    def refused_one_action(self) -> frozenset[str]:
        """The types whose copy across account and Region in one job StartCopyJob refuses now."""
        with self._lock:
            return self.refuse_one_action_types - self.one_action_types

    def should_throttle(self) -> bool:
        with self._lock:
            return self.throttle_rate > 0 and self._rng.random() < self.throttle_rate

    def take_stall(self, service: str, operation: str | None) -> tuple[threading.Event, float] | None:
        """(event, seconds) when this request must be held: wait on the event for that long."""
        with self._lock:
            if self.stall is None or not self.stall.matches(service, operation):
                return None
            self.stall.calls -= 1
            return self._release, self.stall.seconds

    def release_stalls(self) -> None:
        """Answer every held request now, and forget the stall (a reset or a shutdown)."""
        with self._lock:
            self.stall = None
            self._release.set()
            self._release = threading.Event()

    def clear_world_faults(self) -> None:
        """Forget queued job failures and retries, refused single copy jobs, and release any stall: they belong
        to the world being reset."""
        with self._lock:
            for queue in self.queued_job_failures.values():
                queue.clear()
            self.queued_copy_retries.clear()
            self.refuse_one_action_types = frozenset()
        self.release_stalls()

    def as_dict(self) -> dict[str, object]:
        with self._lock:
            return {
                "job_seconds": self.job_seconds,
                "throttle_rate": self.throttle_rate,
                "throttle_seed": self.throttle_seed,
                "one_action_types": sorted(self.one_action_types),
                "refuse_one_action_types": sorted(self.refuse_one_action_types),
                "queued_copy_retries": list(self.queued_copy_retries),
                "queued_job_failures": {k: list(v) for k, v in self.queued_job_failures.items()},
                "stall": None
                if self.stall is None
                else {
                    "service": self.stall.service,
                    "operation": self.stall.operation,
                    "seconds": self.stall.seconds,
                    "calls": self.stall.calls,
                },
            }


settings = SandboxSettings()
