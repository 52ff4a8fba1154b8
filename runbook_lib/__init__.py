"""Guided runbook for copying KMS-encrypted AWS Backup recovery points across accounts and Regions."""

__version__ = "0.1.0"
