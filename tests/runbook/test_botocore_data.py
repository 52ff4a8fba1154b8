"""The one loader of botocore's data that every session of the runbook reads through."""

from __future__ import annotations

import botocore.loaders
import pytest

from runbook_lib.aws import clients
from runbook_lib.core import botocore_data


@pytest.mark.parametrize(
    "service, kind", [("ec2", "service-2"), ("kms", "paginators-1"), ("backup", "endpoint-rule-set-1")]
)
def test_the_loader_reads_what_botocores_own_loader_reads_in_the_same_order(service, kind):
    ours = botocore_data.LOADER.load_service_model(service, kind)
    theirs = botocore.loaders.create_loader().load_service_model(service, kind)
    assert ours == theirs
    assert list(ours) == list(theirs)
    if kind == "service-2":
        assert list(ours["shapes"]) == list(theirs["shapes"])
        assert list(ours["operations"]) == list(theirs["operations"])


def test_partitions_come_through_the_same_loader():
    assert botocore_data.LOADER.load_data("partitions") == botocore.loaders.create_loader().load_data("partitions")


def test_every_session_shares_the_loader_so_a_model_is_decoded_once(sandbox):
    source = clients.session("sandbox-source").get_component("data_loader")
    target = clients.session("sandbox-target").get_component("data_loader")
    assert source is target is botocore_data.LOADER
