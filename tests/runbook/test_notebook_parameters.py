"""Each step's record lists (and so its notebook declares) the profile and Region of every account the step
acts in (its record's actions): the runner gives a notebook only the parameters its record lists, and a
profile left out would be the sandbox's default, on any account."""

from __future__ import annotations

import pytest

from runbook_lib.app.runner import ALL_STEPS, declared_parameters
from runbook_lib.aws import world

OF_ACCOUNT = {
    world.SOURCE: {"source_profile", "source_region"},
    world.DESTINATION: {"target_profile", "target_region"},
    world.MANAGEMENT: {"management_profile"},
}


@pytest.mark.parametrize("step", ALL_STEPS)
def test_a_notebook_declares_the_profiles_of_the_accounts_its_step_uses(step):
    needed = set().union(*(OF_ACCOUNT[role] for role in world.roles_of((step,))))
    assert needed - declared_parameters(step) == set()
