"""AWS Backup's global settings: one set per organization, kept by its management account.

moto has no global settings. Any member reads them and only the management account changes them;
cross_account_backup_enabled tells a copy whether its organization allows copies across accounts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from moto.backup.models import BackupBackend

from .. import organizations
from ..world import world
from .exceptions import AccessDeniedException, InvalidParameterValueException, InvalidRequestException
from .records import utcnow

MSG_NOT_IN_ORG = "ERROR_9601: Your account is not a member of an organization."
MSG_NOT_MANAGEMENT = "Only the management account of an organization can update global settings."


class GlobalSettingsBackend(BackupBackend):
    """Global settings: a part of SandboxBackupBackend (models.py).

    Reaches the management account's backend through `backend_in`, which models.py provides.
    """

    backend_in: Callable[[str, str], GlobalSettingsBackend]

    def __init__(self, region_name: str, account_id: str):
        super().__init__(region_name, account_id)
        self.global_settings: dict[str, str] = {
            "isCrossAccountBackupEnabled": "false",
            "isMpaEnabled": "false",
            "isDelegatedAdministratorEnabled": "false",
        }
        self.global_settings_updated: datetime | None = None

    def describe_global_settings(self) -> dict[str, Any]:
        """The organization's settings, readable by any member (kept by the management account)."""
        management = organizations.management_account_of(self.account_id)
        if management is None:
            raise InvalidRequestException(msg=MSG_NOT_IN_ORG)
        owner = self.backend_in(management, "us-east-1")
        return {"GlobalSettings": dict(owner.global_settings), "LastUpdateTime": owner.global_settings_updated}

    def update_global_settings(self, global_settings: dict[str, str] | None) -> None:
        """Only the management account may change them.

        Simplification: the settings hold organization-wide, whatever Region the call names.
        """
        management = organizations.management_account_of(self.account_id)
        if management is None:
            raise InvalidRequestException(msg=MSG_NOT_IN_ORG)
        if management != self.account_id:
            raise InvalidRequestException(msg=MSG_NOT_MANAGEMENT)
        if world.is_denied(self.account_id, "backup:UpdateGlobalSettings"):
            raise AccessDeniedException(
                msg=f"User: arn:aws:iam::{self.account_id}:root is not authorized to perform: "
                "backup:UpdateGlobalSettings with an explicit deny in a service control policy"
            )
        owner = self.backend_in(management, "us-east-1")
        for key, value in (global_settings or {}).items():
            if key not in owner.global_settings:
                raise InvalidParameterValueException(msg=f"Unknown global setting: {key}")
            if str(value).lower() not in ("true", "false"):
                raise InvalidParameterValueException(msg=f"{key} must be true or false.")
            owner.global_settings[key] = str(value).lower()
        owner.global_settings_updated = utcnow()

    def cross_account_backup_enabled(self) -> bool:
        management = organizations.management_account_of(self.account_id)
        if management is None:
            return False
        owner = self.backend_in(management, "us-east-1")
        return owner.global_settings["isCrossAccountBackupEnabled"] == "true"
