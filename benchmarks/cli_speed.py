"""Measure how long `runbook --help` and `runbook check` take, as a user runs them; prints the figures,
asserts nothing.

Targets: `runbook --help` median under 0.3 s (it imports neither the sandbox nor botocore), and
`runbook check parameters/sandbox.yaml` on a sandbox median under 1.5 s. Each figure is a whole
process, from start to exit, next to a bare `python -c pass` measured in the same run. The library
is byte-compiled first, as a pip install leaves it (an editable install does not, and where
PYTHONDONTWRITEBYTECODE is set every command would otherwise compile it again).
Run: make benchmark   (or .venv/bin/python benchmarks/cli_speed.py [ROUNDS])
"""

from __future__ import annotations

import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runbook_sandbox import process

ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = str(Path(sys.executable).parent / "runbook")


def timed(command: list[str], rounds: int, env: dict[str, str] | None = None) -> list[float]:
    figures = []
    for _ in range(rounds):
        began = time.perf_counter()
        subprocess.run(command, capture_output=True, env=env, check=False)
        figures.append(time.perf_counter() - began)
    return figures


def report(name: str, figures: list[float], target: float | None, bare: float) -> None:
    median = statistics.median(figures)
    verdict = "" if target is None else f"   target {target:.2f} s: {'meets' if median < target else 'MISSES'} it"
    print(f"{name:<34} median {median:.3f} s   max {max(figures):.3f} s   {median / bare:5.1f} x bare python{verdict}")


def main(rounds: int = 11) -> None:
    compileall.compile_dir(ROOT / "runbook_lib", quiet=1)
    bare = timed([sys.executable, "-c", "pass"], rounds)
    report("python -c pass", bare, None, statistics.median(bare))
    base = statistics.median(bare)
    report("runbook --help", timed([RUNBOOK, "--help"], rounds), 0.3, base)
    with tempfile.TemporaryDirectory() as folder:
        sandbox, _ = process.start(Path(folder) / "sandbox")
        try:
            sandbox.reset("walkthrough")
            env = {**os.environ, **sandbox.environment()}
            for name in [k for k in env if k.startswith("AWS_ENDPOINT_URL") or k == "AWS_PROFILE"]:
                del env[name]
            check = [RUNBOOK, "check", str(ROOT / "parameters" / "sandbox.yaml")]
            report("runbook check (sandbox)", timed(check, rounds, env), 1.5, base)
        finally:
            process.stop(Path(folder) / "sandbox")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 11)
