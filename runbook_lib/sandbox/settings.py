"""Knobs a test or trainer turns on a running sandbox: job duration and injected faults.

One instance per server process. Scenario resets keep the knobs (a trainer's slow jobs stay slow),
except queued job failures, which belong to the world that was reset.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field


@dataclass
class SandboxSettings:
    job_seconds: float = 0.0
    throttle_rate: float = 0.0
    throttle_seed: int = 7
    queued_job_failures: dict[str, list[str]] = field(default_factory=lambda: {"backup": [], "copy": []})
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self._rng.seed(self.throttle_seed)

    def configure(
        self,
        job_seconds: float | None = None,
        throttle_rate: float | None = None,
        fail_next_backup: str | None = None,
        fail_next_copy: str | None = None,
    ) -> None:
        with self._lock:
            if job_seconds is not None:
                if job_seconds < 0:
                    raise ValueError("job_seconds must be 0 or more")
                self.job_seconds = float(job_seconds)
            if throttle_rate is not None:
                if not 0 <= throttle_rate <= 1:
                    raise ValueError("throttle_rate must be between 0 and 1")
                self.throttle_rate = float(throttle_rate)
                self._rng.seed(self.throttle_seed)
            if fail_next_backup:
                self.queued_job_failures["backup"].append(fail_next_backup)
            if fail_next_copy:
                self.queued_job_failures["copy"].append(fail_next_copy)

    def take_injected_failure(self, kind: str) -> str | None:
        """The StatusMessage the next job of this kind must fail with, if a test queued one."""
        with self._lock:
            queue = self.queued_job_failures[kind]
            return queue.pop(0) if queue else None

    def should_throttle(self) -> bool:
        with self._lock:
            return self.throttle_rate > 0 and self._rng.random() < self.throttle_rate

    def clear_queued_failures(self) -> None:
        with self._lock:
            for queue in self.queued_job_failures.values():
                queue.clear()

    def as_dict(self) -> dict[str, object]:
        return {
            "job_seconds": self.job_seconds,
            "throttle_rate": self.throttle_rate,
            "queued_job_failures": {k: list(v) for k, v in self.queued_job_failures.items()},
        }


settings = SandboxSettings()
