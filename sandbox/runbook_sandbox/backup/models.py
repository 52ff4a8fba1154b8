"""AWS Backup for the sandbox: moto's vaults and plans, plus what the runbook needs of the rest.

moto 5.2.5 keeps vaults and plans only. SandboxBackupBackend extends moto's BackupBackend (so vaults
are shared with moto's own operations) with one part per concern:

- vaults.py: vault keys, access policies, and the recovery points a vault holds;
- global_settings.py: the organization's global settings, kept by its management account;
- jobs.py: backup, copy and restore jobs, and the clock that finishes them;
- plans.py: plans' selections and updates, and running a plan now;
- job_events.py: the EventBridge events of jobs that end.

The backends live in a BackendDict, so moto's reset clears them. This module ties the parts to it:
the job clock settles the jobs of every backend, and a part reaches another account's backend
through `backend_in`.
"""

from __future__ import annotations

from typing import cast

from moto.core.base_backend import BackendDict

from .jobs import settle_jobs
from .plans import PlansBackend
from .records import BackupJob


class PlanNotFound(LookupError):
    """No backup plan has this name (or ID) in the account and Region; str() says which plans there are."""


def settle_due_jobs() -> None:
    """Finish every job, in every account, whose time is up (see jobs.py)."""
    backends = sandbox_backup_backends.iter_backends()
    # moto types iter_backends() as BaseBackend; this BackendDict holds SandboxBackupBackends only.
    settle_jobs(cast(SandboxBackupBackend, backend) for _account, _region, backend in backends)


class SandboxBackupBackend(PlansBackend):
    """moto's Backup backend plus jobs, recovery points, access policies, global settings and selections."""

    @staticmethod
    def settle_due_jobs() -> None:
        settle_due_jobs()

    @staticmethod
    def backend_in(account_id: str, region: str) -> SandboxBackupBackend:
        """The backend of an account and Region: where a copy lands, or the organization's settings."""
        return sandbox_backup_backends[account_id][region]


sandbox_backup_backends = BackendDict(SandboxBackupBackend, "backup")


def run_plan(account_id: str, region: str, name_or_id: str) -> tuple[str, list[BackupJob]]:
    """Start every rule of the named plan now (plans.py); (the plan's ID, the backup jobs started)."""
    backend = sandbox_backup_backends[account_id][region]
    plan = backend.plan_named(name_or_id)
    if plan is None:
        there = ", ".join(backend.live_plan_names()) or "none"
        raise PlanNotFound(
            f"no backup plan named {name_or_id!r} in account {account_id} in {region} (plans there: {there})"
        )
    return plan.backup_plan_id, backend.run_backup_plan(plan)
