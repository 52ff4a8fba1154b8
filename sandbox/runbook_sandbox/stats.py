"""How many AWS requests the server answered, per operation: what a run costs in calls.

Every request the gate answers counts once, under `service:Operation` (backup:ListCopyJobs),
whatever the answer: a throttled or refused call is still a call the client made (and its retry
another). A request refused before it names a known operation (no credentials, a key the sandbox
did not issue, an operation the service does not have) counts under its signing service and
`(unknown)`, `(unsigned):(unknown)` when unsigned. Control requests (/_sandbox/) are not AWS
requests and never count. A reset starts the counts again with the world; so does a clear.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timezone
from typing import Any

UNKNOWN_OPERATION = "(unknown)"
UNSIGNED = "(unsigned)"


def operation_name(service: str, operation: str | None) -> str:
    return f"{service or UNSIGNED}:{operation or UNKNOWN_OPERATION}"


class RequestCounts:
    """Requests per operation since the last reset or clear; safe across request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._since = datetime.now(timezone.utc)

    def count(self, service: str, operation: str | None) -> None:
        with self._lock:
            self._counts[operation_name(service, operation)] += 1

    def report(self) -> dict[str, Any]:
        """The counts, most requested first (then by name), their total, and since when."""
        with self._lock:
            return self._report()

    def clear(self) -> dict[str, Any]:
        """Start counting again; returns the counts it cleared, so no request falls between a read and a clear."""
        with self._lock:
            cleared = self._report()
            self._counts.clear()
            self._since = datetime.now(timezone.utc)
            return cleared

    def _report(self) -> dict[str, Any]:
        ordered = sorted(self._counts.items(), key=lambda item: (-item[1], item[0]))
        return {
            "operations": dict(ordered),
            "total": sum(self._counts.values()),
            "since": self._since.isoformat(timespec="seconds"),
        }


request_counts = RequestCounts()
