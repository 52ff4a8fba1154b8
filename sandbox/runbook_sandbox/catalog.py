"""The worlds a sandbox can be reset to, by name, with the story each tells.

Read without moto (whose import takes seconds), so `runbook sandbox scenarios` and the check of a
`--scenario` answer at once. scenarios.py builds each world, under a name this catalog holds.
"""

from __future__ import annotations

STORIES: dict[str, str] = {
    "walkthrough": (
        "The blog's example before step 00: two member accounts, keys, volumes, a database, Neptune and "
        "DocumentDB clusters and a file system, no vaults yet."
    ),
    "outside-organization": "The target account is not in the source account's organization: copies fail (failure 1).",
    "cross-account-locked": (
        "Cross-account backup is off and a service control policy stops the management account "
        "turning it on: copies fail (failure 7)."
    ),
    "default-key-target-vault": (
        "CABTargetVault already exists in the target account, encrypted with the default Backup key (failure 5)."
    ),
    "key-policy-denies-target": (
        "cmkSource's policy explicitly denies the target account: sharing the key cannot help (failure 2)."
    ),
    "target-vault-denies-source": (
        "CABTargetVault exists under cmkTarget, and its access policy explicitly denies the source account (failure 3)."
    ),
    "target-key-denies-restore": (
        "cmkTarget's policy explicitly denies the target account's AWSBackupDefaultServiceRole: copies "
        "arrive, but a restore with that role fails."
    ),
    "fleet": (
        "The walkthrough plus 200 volumes tagged Fleet=demo (fleet-001 to fleet-200), encrypted round-robin "
        "under cmkSource, cmkFleetB and cmkFleetC: a run that selects many resources."
    ),
    "many-recovery-points": (
        "The walkthrough plus SourceVault holding 10,000 completed hourly recovery points of walkthrough-volume: "
        "listings that page (1,000 a page)."
    ),
}

# Worlds for running the runbook at size; they produce no known failure, so no lesson teaches them.
AT_SCALE: tuple[str, ...] = ("fleet", "many-recovery-points")
