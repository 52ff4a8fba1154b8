"""The steps, one constant each: the names of the notebooks, the run folder's records and the state."""

from __future__ import annotations

from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
PREREQUISITES = "00_prerequisites"
CREATE_BACKUP = "01_create_backup"
VERIFY_SOURCE_KEY = "02_verify_source_key"
SHARE_SOURCE_KEY = "03_share_source_key"
COPY_TO_TARGET = "04_copy_to_target"
VERIFY_TARGET_KEY = "05_verify_target_key"
TROUBLESHOOT = "06_troubleshoot"
CLEANUP = "07_cleanup"
RESTORE_DRILL = "08_restore_drill"
AUTOMATE = "09_automate"

# What `runbook run` runs unless --steps says otherwise, and every step, in the order a run takes them:
# the restore drill needs the copy, and the automation the vaults, so both run before the cleanup.
DEFAULT = (PREREQUISITES, CREATE_BACKUP, VERIFY_SOURCE_KEY, SHARE_SOURCE_KEY, COPY_TO_TARGET, VERIFY_TARGET_KEY)
ALL = (*DEFAULT, TROUBLESHOOT, RESTORE_DRILL, AUTOMATE, CLEANUP)


def notebook_path(step: str) -> Path:
    """The step's notebook, as shipped."""
    return NOTEBOOKS / f"{step}.ipynb"


# AWS calls each step of the walkthrough may make on the sandbox's walkthrough, job polls left out:
# at most 46 in all. A run reads each fact once (aws/facts.py), so a step pays only for what it alone
# reads or changes. tests/runbook/test_batch_runs.py fails when a step goes over.
CALL_BUDGET = {
    # pickers' vault lists (2), both accounts (2) and organizations (2), the role, the volume, the keys
    # tables (2 alias listings, 7 keys, 3 policies), both vaults before and after they are made (4),
    # global settings before and after (2), the vault policy, the 4 changes, the source vault's points,
    # and the management profile's account (the preflight refuses one that is not the organization's
    # management account before any change, while cross-account backup is off)
    PREREQUISITES: 33,
    CREATE_BACKUP: 2,  # StartBackupJob, the source vault's recovery points
    VERIFY_SOURCE_KEY: 2,  # the recovery point and its snapshot
    SHARE_SOURCE_KEY: 3,  # the policy as it is now (an edit starts from it), PutKeyPolicy, and read back
    COPY_TO_TARGET: 3,  # the recovery point for the checks, StartCopyJob, the copy jobs table
    VERIFY_TARGET_KEY: 3,  # the copy, its snapshot, the target vault's recovery points
}
