"""Backup paths the sandbox serves: moto's own, plus the operations it adds."""

from moto.backup.urls import url_bases  # noqa: F401  (the same hosts as moto's Backup)

from .responses import SandboxBackupResponse

url_paths = {
    "{0}/audit/report-plans/$": SandboxBackupResponse.dispatch,
    "{0}/audit/report-plans/(?P<reportPlanName>[^/]+)$": SandboxBackupResponse.dispatch,
    "{0}/backup/plans/$": SandboxBackupResponse.dispatch,
    "{0}/backup/plans/(?P<name>[^/]+)$": SandboxBackupResponse.dispatch,
    "{0}/backup/plans/(?P<name>[^/]+)/$": SandboxBackupResponse.dispatch,
    "{0}/backup/plans/(?P<name>[^/]+)/selections/$": SandboxBackupResponse.dispatch,
    "{0}/backup/plans/(?P<name>[^/]+)/selections/(?P<selection_id>[^/]+)$": SandboxBackupResponse.dispatch,
    "{0}/backup-vaults/$": SandboxBackupResponse.dispatch,
    "{0}/backup-vaults/(?P<name>[^/]+)$": SandboxBackupResponse.dispatch,
    "{0}/backup-vaults/(?P<name>[^/]+)/vault-lock$": SandboxBackupResponse.dispatch,
    "{0}/backup-vaults/(?P<name>[^/]+)/access-policy$": SandboxBackupResponse.dispatch,
    "{0}/backup-vaults/(?P<name>[^/]+)/recovery-points/$": SandboxBackupResponse.dispatch,
    "{0}/backup-vaults/(?P<name>[^/]+)/recovery-points/(?P<arn>.+)/restore-metadata$": SandboxBackupResponse.dispatch,
    "{0}/backup-vaults/(?P<name>[^/]+)/recovery-points/(?P<arn>.+)$": SandboxBackupResponse.dispatch,
    "{0}/backup-jobs/$": SandboxBackupResponse.dispatch,
    "{0}/backup-jobs/(?P<job_id>[^/]+)$": SandboxBackupResponse.dispatch,
    "{0}/copy-jobs/$": SandboxBackupResponse.dispatch,
    "{0}/copy-jobs/(?P<job_id>[^/]+)$": SandboxBackupResponse.dispatch,
    "{0}/restore-jobs/$": SandboxBackupResponse.dispatch,
    "{0}/restore-jobs/(?P<job_id>[^/]+)$": SandboxBackupResponse.dispatch,
    "{0}/restore-jobs/(?P<job_id>[^/]+)/validations$": SandboxBackupResponse.dispatch,
    "{0}/resources/(?P<arn>.+)/recovery-points/$": SandboxBackupResponse.dispatch,
    "{0}/global-settings$": SandboxBackupResponse.dispatch,
    "{0}/tags/(?P<resource_arn>.+)$": SandboxBackupResponse.dispatch,
    "{0}/untag/(?P<resource_arn>.+)$": SandboxBackupResponse.dispatch,
}
