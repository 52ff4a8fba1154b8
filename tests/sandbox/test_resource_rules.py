"""The sandbox plays the capability table's facts (its own copy, held here to agree with the runbook's),
and a knob moves a two-hop type to one copy job, as AWS is reported to have done for RDS."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from runbook_lib.core import resource_types
from runbook_lib.sandbox.backup import resource_rules
from runbook_lib.sandbox.settings import SandboxSettings, SettingsError
from tests.walkthrough_steps import copy, database_arn, prepare_everything


def test_the_sandbox_plays_the_capability_table():
    table = resource_types.TYPES
    assert set(table) == resource_rules.TYPES
    assert {name for name, row in table.items() if row.one_action.value} == resource_rules.ONE_ACTION_TYPES
    assert {name for name, row in table.items() if not row.one_action.value} == resource_rules.TWO_HOP_TYPES
    assert {name for name, row in table.items() if row.any_destination_key} == resource_rules.ANY_DESTINATION_KEY_TYPES
    assert {
        name for name, row in table.items() if row.source_key_customer_managed.value
    } == resource_rules.SOURCE_KEY_TYPES


@pytest.mark.parametrize("value", [["EBS"], ["RDS", "Nope"], "RDS", [1]])
def test_one_action_types_names_only_two_hop_types(value):
    with pytest.raises(SettingsError, match=r"one_action_types must be a list of Aurora, RDS"):
        SandboxSettings().configure(one_action_types=value)


def test_an_rds_copy_changes_account_and_region_in_one_job_once_the_knob_says_so(world, aws):
    point = prepare_everything(aws, resource_arn=database_arn())
    with pytest.raises(ClientError, match="cannot be initiated for RDS resources"):
        copy(aws, point)
    assert world.configure(one_action_types=["RDS"])["settings"]["one_action_types"] == ["RDS"]
    job = copy(aws, point)
    assert job["State"] == "COMPLETED", job
    assert ":rds:eu-west-1:" in job["DestinationRecoveryPointArn"]
    assert world.configure(one_action_types=[])["settings"]["one_action_types"] == []
    with pytest.raises(ClientError, match="cannot be initiated for RDS resources"):
        copy(aws, point)
