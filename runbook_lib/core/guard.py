"""The guard before a change to accounts that are not the sandbox.

The sandbox names itself in a header of every answer it gives (SANDBOX_HEADER); real AWS never sends
it, and an account number proves nothing (the sandbox's are made up, and a real one could be typed).
Before a run, a fix or a cleanup changes anything elsewhere, the runbook shows who and where (each
account with its alias where readable, Region, partition and endpoint) and how many changes it will
make, and goes on only once confirmed: at a terminal by the person, elsewhere by `--yes`. A kernel
(papermill, JupyterLab) makes a change on real accounts only when the accounts were confirmed
(CONFIRMED_ENV, set by the command that asked) or by an Apply button, which names them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import RunbookError

SANDBOX_HEADER = "x-runbook-sandbox"
SANDBOX_MARK = "local sandbox"
# Set for a sandbox server that answers without the mark (`runbook sandbox start --unmarked`).
UNMARKED_ENV = "RUNBOOK_SANDBOX_UNMARKED"
# The accounts a person confirmed for this run, comma-separated: the kernels of `runbook run` read it.
CONFIRMED_ENV = "RUNBOOK_CONFIRMED_ACCOUNTS"


@dataclass(frozen=True)
class Side:
    """One profile of the run as AWS answered it."""

    role: str  # source, destination, management
    profile: str
    account: str
    alias: str  # the account's alias, "" when it has none, "not readable" when IAM refused
    region: str
    partition: str
    endpoint: str
    sandbox: bool

    def line(self) -> str:
        alias = f" ({self.alias})" if self.alias else ""
        return (
            f"  {self.role:<12} account {self.account}{alias}, profile {self.profile}, Region {self.region}, "
            f"partition {self.partition}, endpoint {self.endpoint}"
        )


@dataclass(frozen=True)
class World:
    """The accounts a run talks to, and whether they are all the sandbox."""

    sides: tuple[Side, ...]

    @property
    def sandbox(self) -> bool:
        return bool(self.sides) and all(side.sandbox for side in self.sides)

    @property
    def accounts(self) -> tuple[str, ...]:
        return tuple(sorted({side.account for side in self.sides}))

    def headline(self) -> str:
        """One line for the top of a notebook or a report: which world this is."""
        if self.sandbox:
            return "The local sandbox: no real AWS account is read or changed."
        named = ", ".join(f"{side.role} {side.account} ({side.region})" for side in self.sides)
        return f"Real AWS accounts: {named}. A change here changes them."

    def places(self) -> str:
        """The accounts, Regions and endpoints in one line."""
        accounts = ", ".join(f"{side.account} ({side.role}, {side.region})" for side in self.sides)
        endpoints = ", ".join(sorted({side.endpoint for side in self.sides}))
        return f"real AWS accounts {accounts} at {endpoints}"

    def who_and_where(self) -> str:
        return "\n".join(side.line() for side in self.sides)

    def confirmed_here(self) -> bool:
        """Whether the accounts this kernel talks to are the ones the person confirmed for the run."""
        confirmed = {a for a in os.environ.get(CONFIRMED_ENV, "").split(",") if a}
        return self.sandbox or (bool(confirmed) and set(self.accounts) <= confirmed)


class NotConfirmed(RunbookError):
    """A change to real accounts that no one confirmed: nothing was changed."""

    def __init__(self, world: World, what: str, how: str):
        self.world = world
        self.what = what
        super().__init__(f"not confirmed: {what} in {world.places()}; nothing was changed; {how}")
