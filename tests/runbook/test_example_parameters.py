"""parameters/example-aws.yaml: a dry run with a realistic pace, refused while a placeholder is left."""

from __future__ import annotations

import re

import pytest
import yaml

from runbook_lib.core import params
from runbook_lib.core.errors import ParameterError
from tests.runbook_steps import ROOT

EXAMPLE = ROOT / "parameters" / "example-aws.yaml"
TEXT = EXAMPLE.read_text()
# What a person would put in place of each placeholder.
OWN = {
    "<SOURCE_PROFILE>": "prod-source",
    "<DESTINATION_PROFILE>": "vault-destination",
    "<MANAGEMENT_PROFILE>": "org-management",
    "<SOURCE_REGION>": "us-east-1",
    "<DESTINATION_REGION>": "eu-west-1",
    "<SOURCE_ACCOUNT_ID>": "111122223333",
    "<VOLUME_ID>": "vol-0123456789abcdef0",
    "<SOURCE_VAULT_NAME>": "AppBackups",
    "<SOURCE_VAULT_KEY_ALIAS>": "app-backups",
    "<DESTINATION_VAULT_NAME>": "AppBackupCopies",
    "<DESTINATION_VAULT_KEY_ALIAS>": "app-backup-copies",
}


def filled(text: str, keep: str = "") -> dict:
    for placeholder, value in OWN.items():
        if placeholder != keep:
            text = text.replace(placeholder, value)
    return yaml.safe_load(text)


def test_every_placeholder_has_a_value_in_this_test():
    assert set(re.findall(r"<[A-Z_]+>", str(yaml.safe_load(TEXT)))) == set(OWN)


@pytest.mark.parametrize("placeholder", sorted(OWN))
def test_a_placeholder_left_is_refused_naming_its_parameter(placeholder):
    values = filled(TEXT, keep=placeholder)
    fields = [name for name, value in values.items() if placeholder in str(value)]
    with pytest.raises(ParameterError) as refused:
        params.validate(values, check_profiles=False)
    assert refused.value.field == fields[0]
    assert f"is still the placeholder '{placeholder}'; replace it with your own: " in str(refused.value)


def test_once_filled_in_it_is_a_dry_run_at_a_real_pace():
    chosen = params.validate(filled(TEXT), check_profiles=False)
    assert chosen.apply is False
    assert chosen.poll_seconds >= 30 and chosen.max_wait_minutes >= 120
    assert chosen.resource_arn == "arn:aws:ec2:us-east-1:111122223333:volume/vol-0123456789abcdef0"


def test_a_placeholder_inside_tags_is_refused_too():
    with pytest.raises(ParameterError, match="parameter recovery_point_tags: is still the placeholder '<OWNER>'"):
        params.validate({**filled(TEXT), "recovery_point_tags": {"Owner": "<OWNER>"}}, check_profiles=False)
