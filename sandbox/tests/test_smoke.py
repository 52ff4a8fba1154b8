from runbook_sandbox.testing.walkthrough import TARGET_VAULT, copy, prepare_everything


def test_walkthrough_copy_completes_and_is_reencrypted(aws):
    point = prepare_everything(aws)
    job = copy(aws, point)
    assert job["State"] == "COMPLETED", job
    target = aws.target("backup").describe_recovery_point(
        BackupVaultName=TARGET_VAULT, RecoveryPointArn=job["DestinationRecoveryPointArn"]
    )
    cmk_target = aws.target("kms").describe_key(KeyId="alias/cmkTarget")["KeyMetadata"]["Arn"]
    assert target["EncryptionKeyArn"] == cmk_target
