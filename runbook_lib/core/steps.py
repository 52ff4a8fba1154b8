"""The steps, one constant each: the names of the notebooks, the run folder's records and the state."""

from __future__ import annotations

PREREQUISITES = "00_prerequisites"
CREATE_BACKUP = "01_create_backup"
VERIFY_SOURCE_KEY = "02_verify_source_key"
SHARE_SOURCE_KEY = "03_share_source_key"
COPY_TO_TARGET = "04_copy_to_target"
VERIFY_TARGET_KEY = "05_verify_target_key"
TROUBLESHOOT = "06_troubleshoot"
CLEANUP = "07_cleanup"

# What `runbook run` runs unless --steps says otherwise, and every step, in the runbook's order.
DEFAULT = (PREREQUISITES, CREATE_BACKUP, VERIFY_SOURCE_KEY, SHARE_SOURCE_KEY, COPY_TO_TARGET, VERIFY_TARGET_KEY)
ALL = (*DEFAULT, TROUBLESHOOT, CLEANUP)
