"""A plain-data picture of everything the runbook can change, for before/after comparisons.

Backends that only answered reads (no vault, job or setting ever written) are left out, so that
looking does not count as changing.
"""

from __future__ import annotations

from typing import Any

from moto.kms.models import KmsBackend, kms_backends

from .backup.models import SandboxBackupBackend, sandbox_backup_backends


def snapshot() -> dict[str, Any]:
    backup: dict[str, Any] = {}
    for account, region, backend in sandbox_backup_backends.iter_backends():
        assert isinstance(backend, SandboxBackupBackend)  # moto types iter_backends() as BaseBackend
        backend.settle_due_jobs()
        entry = {
            "vaults": {n: v.encryption_key_arn for n, v in sorted(backend.vaults.items())},
            "vault_policies": dict(sorted(backend.vault_policies.items())),
            "recovery_points": {a: p.status for a, p in sorted(backend.recovery_points.items())},
            "backup_jobs": {i: j.state for i, j in sorted(backend.backup_jobs.items())},
            "copy_jobs": {i: j.state for i, j in sorted(backend.copy_jobs.items())},
            "global_settings": dict(backend.global_settings),
        }
        if any(value for name, value in entry.items() if name != "global_settings") or backend.global_settings_updated:
            backup[f"{account}/{region}"] = entry
    keys: dict[str, Any] = {}
    for _account, _region, backend in kms_backends.iter_backends():
        assert isinstance(backend, KmsBackend)  # moto types iter_backends() as BaseBackend
        for key in backend.keys.values():
            keys[key.arn] = {"policy": key.policy, "state": key.key_state}
    return {"backup": dict(sorted(backup.items())), "kms": dict(sorted(keys.items()))}
