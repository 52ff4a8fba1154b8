"""The IAM policy evaluator the runbook and its sandbox share: one reading of key, vault and identity policies."""
