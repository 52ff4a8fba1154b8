"""Organizations with the sandbox's fixed account IDs, and the membership questions copies ask.

moto's CreateAccount draws a random account ID; a runbook people learn from needs the same IDs
every time, so members are added with the ID of the sandbox account they stand for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from moto.organizations import utils as org_utils
from moto.organizations.models import organizations_backends

from .accounts import SandboxAccount


@contextmanager
def _fixed_account_id(account_id: str) -> Iterator[None]:
    original = org_utils.make_random_account_id
    org_utils.make_random_account_id = lambda: account_id
    try:
        yield
    finally:
        org_utils.make_random_account_id = original


def create_organization(management: SandboxAccount, members: Iterable[SandboxAccount]) -> str:
    """Create an organization (all features) with these members; returns its ID."""
    backend = organizations_backends[management.account_id]["aws"]
    backend.create_organization(region="us-east-1", FeatureSet="ALL")
    for member in members:
        with _fixed_account_id(member.account_id):
            backend.create_account(AccountName=member.role, Email=f"{member.role}@example.com")
    assert backend.org is not None
    return backend.org.id


def join_organization(account: SandboxAccount) -> None:
    """The account accepts an invitation into the management account's organization.

    Simplification: moto has no InviteAccountToOrganization or AcceptHandshake, so a trainer (or a
    test) joins the account directly, with the effect accepting the invitation has.
    """
    from .accounts import MANAGEMENT

    backend = organizations_backends[MANAGEMENT.account_id]["aws"]
    if backend.org is None or management_account_of(account.account_id) is not None:
        return
    with _fixed_account_id(account.account_id):
        backend.create_account(AccountName=account.role, Email=f"{account.role}@example.com")


def management_account_of(account_id: str) -> str | None:
    """The management account of the account's organization, or None outside any organization."""
    if organizations_backends[account_id]["aws"].org is not None:
        return account_id
    entry = organizations_backends.master_accounts.get(account_id)
    return entry[0] if entry else None


def organization_id_of(account_id: str) -> str | None:
    management = management_account_of(account_id)
    if management is None:
        return None
    org = organizations_backends[management]["aws"].org
    return org.id if org else None


def organization_paths_of(account_id: str) -> tuple[str, ...] | None:
    """aws:PrincipalOrgPaths of the account: organization ID, root, then the OUs down to it.

    Simplification: the sandbox's accounts sit directly under the root, as create_account puts them.
    """
    management = management_account_of(account_id)
    if management is None:
        return None
    backend = organizations_backends[management]["aws"]
    if backend.org is None:
        return None
    return (f"{backend.org.id}/{backend.org.root_id}/",)


def same_organization(first: str, second: str) -> bool:
    org = organization_id_of(first)
    return org is not None and org == organization_id_of(second)


def forget_memberships() -> None:
    """moto's reset keeps the member-to-management map; a new world must not inherit it."""
    organizations_backends.master_accounts.clear()
