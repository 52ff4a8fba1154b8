"""botocore's data (service models, endpoints, partitions), read once per process: one loader that every
session shares. Each session would otherwise read the same JSON (megabytes) again."""

from __future__ import annotations

import botocore.loaders
import botocore.session

LOADER = botocore.loaders.create_loader()


def new_session(profile: str | None = None) -> botocore.session.Session:
    """A botocore session (of this profile) that reads botocore's data through the shared loader."""
    session = botocore.session.Session(profile=profile)
    session.register_component("data_loader", LOADER)
    return session
