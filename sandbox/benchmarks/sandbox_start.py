"""Measure the sandbox's start-to-ready and reset times; prints the figures, asserts nothing.

Target (issue 2): start to ready in under 3 s on the project's machine (2 cores).
Run: make benchmark   (or .venv/bin/python sandbox/benchmarks/sandbox_start.py [ROUNDS])
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from runbook_sandbox import process


def main(rounds: int = 5) -> None:
    starts, resets, stops = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        for index in range(rounds):
            directory = Path(folder) / f"sb{index}"
            began = time.perf_counter()
            sandbox, _ = process.start(directory)
            starts.append(time.perf_counter() - began)
            for _ in range(3):
                began = time.perf_counter()
                sandbox.reset("walkthrough")
                resets.append(time.perf_counter() - began)
            began = time.perf_counter()
            process.stop(directory)
            stops.append(time.perf_counter() - began)
    for name, figures in (("start to ready", starts), ("reset", resets), ("stop", stops)):
        print(
            f"{name:<15} median {statistics.median(figures):.2f} s   max {max(figures):.2f} s   ({len(figures)} runs)"
        )
    verdict = "meets" if max(starts) < 3.0 else "MISSES"
    print(f"start-to-ready target 3.00 s: {verdict} it (max {max(starts):.2f} s)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
