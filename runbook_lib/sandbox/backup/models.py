"""AWS Backup for the sandbox: moto's vaults and plans, plus what the runbook needs of the rest.

moto 5.2.5 keeps vaults and plans only. SandboxBackupBackend extends moto's BackupBackend (so vaults
are shared with moto's own operations) with one part per concern:

- vaults.py: vault keys, access policies, and the recovery points a vault holds;
- global_settings.py: the organization's global settings, kept by its management account;
- jobs.py: backup, copy and restore jobs, and the clock that finishes them.

The backends live in a BackendDict, so moto's reset clears them. This module ties the parts to it:
the job clock settles the jobs of every backend, and a part reaches another account's backend
through `backend_in`.
"""

from __future__ import annotations

from typing import cast

from moto.core.base_backend import BackendDict

from .jobs import JobsBackend, settle_jobs


def settle_due_jobs() -> None:
    """Finish every job, in every account, whose time is up (see jobs.py)."""
    backends = sandbox_backup_backends.iter_backends()
    # moto types iter_backends() as BaseBackend; this BackendDict holds SandboxBackupBackends only.
    settle_jobs(cast(SandboxBackupBackend, backend) for _account, _region, backend in backends)


class SandboxBackupBackend(JobsBackend):
    """moto's Backup backend plus jobs, recovery points, access policies and global settings."""

    @staticmethod
    def settle_due_jobs() -> None:
        settle_due_jobs()

    @staticmethod
    def backend_in(account_id: str, region: str) -> SandboxBackupBackend:
        """The backend of an account and Region: where a copy lands, or the organization's settings."""
        return sandbox_backup_backends[account_id][region]


sandbox_backup_backends = BackendDict(SandboxBackupBackend, "backup")
