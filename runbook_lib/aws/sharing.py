"""What lets the destination account receive a copy: who copies in, and the organization's setting."""

from __future__ import annotations

import logging

from runbook_policy import iam_policy

from ..core import arns
from ..core.changes import Change, NotMade
from ..core.errors import StepFailed
from . import clients
from .context import Run

log = logging.getLogger(__name__)


def vaults_principal(run: Run) -> iam_policy.Principal:
    """Who copies into the destination vault: the source account, through the backup role."""
    role = run.role()
    return iam_policy.Principal(
        run.account("source"),
        role["Arn"] if role else None,
        run.organization("source"),
        partition=arns.partition(run.source_region),
    )


def enable_cross_account_change(run: Run) -> Change:
    """Plan turning on cross-account backup from the management account."""
    management = clients.client(run.management_profile, "backup", run.source_region)

    def enable() -> NotMade | None:
        try:
            management.update_global_settings(GlobalSettings={"isCrossAccountBackupEnabled": "true"})
        except management.exceptions.ClientError as error:
            if run.force_copy:
                log.warning(f"force_copy: going on although the management account may not enable it: {error}")
                return NotMade(f"force_copy went on past {error.response['Error']['Code']}")
            raise StepFailed(
                run.step,
                f"[cross-account-enabled] the management account may not enable "
                f"cross-account backup: {error.response['Error']['Message']}",
                "ask an administrator of the management account to allow "
                "backup:UpdateGlobalSettings (a service control policy may deny it)",
            ) from None
        return None

    return Change(
        run.step,
        run.management_profile,
        run.source_region,
        "backup:UpdateGlobalSettings",
        "organization",
        "enable cross-account backup for the organization",
        enable,
        effect={"kind": "cross-account-backup", "enabled": True},
    )
