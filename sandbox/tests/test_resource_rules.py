"""The sandbox plays the capability table's facts (its own copy, held here to agree with the runbook's): every
type copies across account and Region in one job since October 2025, and a knob makes StartCopyJob refuse
that for a database type again, as AWS did before (and may where single-action copies have not reached)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from runbook_lib.core import resource_types
from runbook_sandbox.backup import resource_rules
from runbook_sandbox.settings import SandboxSettings, SettingsError
from runbook_sandbox.testing.walkthrough import copy, database_arn, prepare_everything


def test_the_sandbox_plays_the_capability_table():
    table = resource_types.TYPES
    assert set(table) == resource_rules.TYPES
    assert {name for name, row in table.items() if row.one_action.value} == resource_rules.ONE_ACTION_TYPES
    assert {name for name, row in table.items() if not row.one_action.value} == resource_rules.TWO_HOP_TYPES
    assert {name for name, row in table.items() if row.any_destination_key} == resource_rules.ANY_DESTINATION_KEY_TYPES
    assert {
        name for name, row in table.items() if row.source_key_customer_managed.value
    } == resource_rules.SOURCE_KEY_TYPES
    assert resource_types.engines() == resource_rules.CLUSTER_TYPES
    assert {name for name, row in table.items() if row.arn_service == "rds"} == resource_rules.REFUSABLE_TYPES


@pytest.mark.parametrize("knob", ["refuse_one_action_types", "one_action_types"])
@pytest.mark.parametrize("value", [["EBS"], ["RDS", "Nope"], "RDS", [1]])
def test_the_type_knobs_name_only_database_types(knob, value):
    with pytest.raises(SettingsError, match=rf"{knob} must be a list of Aurora, DocumentDB, Neptune, RDS"):
        SandboxSettings().configure(**{knob: value})


def test_a_database_copies_in_one_job_until_the_sandbox_refuses_it_and_a_reset_forgets_the_refusal(world, aws):
    point = prepare_everything(aws, resource_arn=database_arn())
    job = copy(aws, point)
    assert (job["State"], job["ResourceType"]) == ("COMPLETED", "RDS"), job
    assert ":rds:eu-west-1:333333333333:snapshot:" in job["DestinationRecoveryPointArn"]
    assert world.configure(refuse_one_action_types=["RDS"])["settings"]["refuse_one_action_types"] == ["RDS"]
    with pytest.raises(ClientError, match="cannot be initiated for RDS resources"):
        copy(aws, point)
    world.configure(one_action_types=["RDS"])  # scripts from before October 2025 take a type back this way
    assert copy(aws, point)["State"] == "COMPLETED"
    world.configure(one_action_types=[])
    with pytest.raises(ClientError, match="cannot be initiated for RDS resources"):
        copy(aws, point)
    world.reset("walkthrough")
    assert world.status()["settings"]["refuse_one_action_types"] == [], "the refusal belongs to the world reset"
