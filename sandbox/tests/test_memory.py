"""Memory stays flat across resets: a trainer's sandbox runs all day."""

from __future__ import annotations

import time
from pathlib import Path


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS line")


def test_memory_is_flat_across_100_resets(world, aws):
    aws.source("backup").create_backup_vault(BackupVaultName="Scratch")
    for _ in range(10):
        world.reset()
    after_10 = resident_kib(world.pid)
    started = time.monotonic()
    for _ in range(90):
        world.reset()
    seconds = time.monotonic() - started
    after_100 = resident_kib(world.pid)
    assert after_100 <= after_10 * 1.10, f"{after_10} KiB after 10 resets, {after_100} KiB after 100"
    assert seconds < 60, f"90 resets took {seconds:.0f} s"
