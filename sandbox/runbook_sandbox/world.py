"""What a scenario sets beyond AWS resources: which calls an account's identity is denied.

AWS decides identity-based permissions (IAM policies, SCPs) that moto does not model. A scenario
that must show "your role may not do this" lists the account and action here; the handlers that
honour it raise AccessDeniedException as AWS does. A reset clears it with the world.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class World:
    scenario: str = "walkthrough"
    denied_actions: set[tuple[str, str]] = field(default_factory=set)

    def deny(self, account_id: str, action: str) -> None:
        self.denied_actions.add((account_id, action))

    def is_denied(self, account_id: str, action: str) -> bool:
        return (account_id, action) in self.denied_actions

    def clear(self, scenario: str) -> None:
        self.scenario = scenario
        self.denied_actions.clear()


world = World()
