"""botocore's data (service models, endpoints, partitions), read once per process: one loader that every
session shares. Each session would otherwise read the same JSON (megabytes) again."""

from __future__ import annotations

import gzip
import json
import os
from typing import Any

import botocore
import botocore.loaders
import botocore.session


class PlainJSONFileLoader(botocore.loaders.JSONFileLoader):
    """Decodes botocore's JSON into plain dicts (ordered, as every dict is) rather than OrderedDicts,
    which take twice as long: EC2's model is 4 MB, and every command and kernel that reads a volume
    decodes it."""

    OPENERS = ((".json", open), (".json.gz", gzip.open))

    def load_file(self, file_path: str) -> Any:
        for suffix, opener in self.OPENERS:
            if os.path.isfile(file_path + suffix):
                with opener(file_path + suffix, "rb") as handle:
                    return json.loads(handle.read().decode("utf-8"))
        return None


LOADER = botocore.loaders.Loader(file_loader=PlainJSONFileLoader())


def new_session(profile: str | None = None) -> botocore.session.Session:
    """A botocore session (of this profile) that reads botocore's data through the shared loader."""
    session = botocore.session.Session(profile=profile)
    session.register_component("data_loader", LOADER)
    return session


# The services a run's steps call.
SERVICES = ("backup", "ec2", "iam", "kms", "organizations", "rds", "sts")


def read_ahead(services: tuple[str, ...] = SERVICES) -> None:
    """Read, into the shared loader, all the data a client of each service reads (its model, endpoint
    rules, paginators, waiters), as making one does: a process forked afterwards (a step's kernel) makes
    its clients without reading any of it. The clients made here are dropped; no call is made."""
    for service in services:
        made = new_session().create_client(
            service, region_name="us-east-1", aws_access_key_id="read-ahead", aws_secret_access_key="read-ahead"
        )
        made.can_paginate(botocore.xform_name(made.meta.service_model.operation_names[0]))
        made.waiter_names  # noqa: B018  (reads the service's waiters)
