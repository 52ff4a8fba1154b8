"""Step 05 proves the destination key from the copy itself, and shows beside the proof what AWS's copy job
says (DescribeCopyJob: DestinationEncryptionKeyArn, the vault's type and lock state, the message category), as
step 04's wait last read it (or, for a run folder without it, read then): a copy job that names another key
than the copy's own is reported, and the proof stands."""

from __future__ import annotations

from typing import Any

from runbook_lib.aws import clients
from runbook_lib.core.steps import COPY_TO_TARGET, VERIFY_TARGET_KEY
from runbook_lib.steps.walkthrough import Run, verify_target_key
from tests.runbook_steps import copy, prepare, values


def test_the_copy_jobs_key_is_shown_beside_the_proof_and_another_one_is_reported(world, aws, tmp_path):
    run_values = values(tmp_path)
    prepare(run_values)
    target_key = aws.target("kms").describe_key(KeyId="alias/cmkTarget")["KeyMetadata"]["Arn"]
    other = aws.target("kms").describe_key(KeyId="alias/aws/backup")["KeyMetadata"]["Arn"]

    def another_key(parsed: dict[str, Any], **_: Any) -> None:
        for job in parsed.get("CopyJobs", []):
            job["DestinationEncryptionKeyArn"] = other

    backup = clients.client("sandbox-source", "backup", "us-east-1")
    backup.meta.events.register("after-call.backup.ListCopyJobs", another_key)  # what step 04's wait reads
    try:
        job_id = copy(run_values)["CopyJobId"]
    finally:
        backup.meta.events.unregister("after-call.backup.ListCopyJobs", another_key)
    reported = verify_target_key(Run("05_verify_target_key", run_values))
    assert reported["copy_job_key_differs"] == (
        f"copy job {job_id} reports DestinationEncryptionKeyArn {other}, while the copy itself is encrypted with "
        f"{target_key}: the copy's own key is what counts"
    )
    assert reported["recovery_point_key_arn"] == reported["vault_key_arn"] == target_key, "the proof stands"
    state = Run("check", run_values).state
    assert state.get(VERIFY_TARGET_KEY, "encryption")["copy_job_key_differs"] == reported["copy_job_key_differs"]

    state.record(COPY_TO_TARGET, copy_job_destination=None)  # a run folder from before: the job is read now
    shown = verify_target_key(Run("05_verify_target_key", run_values))
    assert shown["copy_job_id"] == job_id and "copy_job_key_differs" not in shown
    assert shown["copy_job_key_arn"] == shown["recovery_point_key_arn"] == target_key
    assert (shown["copy_job_key_alias"], shown["destination_vault_type"], shown["message_category"]) == (
        "alias/cmkTarget",
        "BACKUP_VAULT",
        "SUCCESS",
    )
    assert "destination_vault_lock_state" not in shown, "AWS gives it for logically air-gapped vaults only"
