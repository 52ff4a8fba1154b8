"""The sandbox's control API under /_sandbox/: status, scenarios, state, stats, reset, join, configure,
run-plan, identity-policies, shutdown.

It answers only requests a web page cannot forge: each carries the sandbox's token in the
X-Sandbox-Token header, and each POST has a JSON body. A page that guesses the port can send
neither without a CORS preflight, which this API never grants. The token is made by
`process.start`, handed to the server in the environment (not argv, which `ps` shows) and written
to server.json and sandbox.env.
"""

from __future__ import annotations

import hmac
import json
import os
import threading
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from . import identity_policies, organizations, state
from .accounts import ACCOUNT_BY_ID, SOURCE, SOURCE_REGION
from .accounts import CONTROL_TOKEN_HEADER as TOKEN_HEADER
from .accounts import CONTROL_TOKEN_VARIABLE as TOKEN_VARIABLE
from .backup.models import PlanNotFound, run_plan, sandbox_backup_backends
from .scenarios import SCENARIOS, reset_world
from .settings import SettingsError, settings
from .stats import request_counts
from .world import world


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload, default=str), status=status, content_type="application/json")


def _refuse(message: str, status: int = 400) -> Response:
    return _json({"error": message}, status)


class ControlAPI:
    """WSGI app for /_sandbox/ requests; `shutdown` stops the server (called from another thread)."""

    def __init__(self, token: str, shutdown: Callable[[], None]):
        self.token = token
        self.shutdown = shutdown
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return self.respond(Request(environ))(environ, start_response)

    def respond(self, request: Request) -> Response:
        if not hmac.compare_digest(request.headers.get(TOKEN_HEADER, "").encode(), self.token.encode()):
            return _refuse(
                f"the control API needs the sandbox's token in the {TOKEN_HEADER} header "
                f"({TOKEN_VARIABLE} in sandbox.env)",
                403,
            )
        body: dict[str, Any] = {}
        if request.method == "POST":
            if request.mimetype != "application/json":
                return _refuse("control requests must send a JSON body (Content-Type: application/json)", 415)
            parsed = request.get_json(silent=True)
            if not isinstance(parsed, dict):
                return _refuse("the request body must be a JSON object")
            body = parsed
        action = request.path.removeprefix("/_sandbox/").strip("/")
        handler = ROUTES.get((request.method, action))
        if handler is None:
            return _refuse(f"no control action {request.method} {action}", 404)
        try:
            return handler(self, body)
        except SettingsError as error:
            return _refuse(str(error))

    @staticmethod
    def status() -> dict[str, Any]:
        return {"pid": os.getpid(), "scenario": world.scenario, "settings": settings.as_dict()}

    def _status(self, body: dict[str, Any]) -> Response:
        return _json(self.status())

    def _scenarios(self, body: dict[str, Any]) -> Response:
        return _json({name: s.story for name, s in SCENARIOS.items()})

    def _state(self, body: dict[str, Any]) -> Response:
        return _json(state.snapshot())

    def _stats(self, body: dict[str, Any]) -> Response:
        return _json(request_counts.report())

    def _clear_stats(self, body: dict[str, Any]) -> Response:
        return _json(request_counts.clear())

    def _reset(self, body: dict[str, Any]) -> Response:
        name = body.get("scenario") or world.scenario
        if not isinstance(name, str) or name not in SCENARIOS:
            return _refuse(f"unknown scenario {name!r}; choose one of {sorted(SCENARIOS)}")
        with self.lock:
            reset_world(name)
        return _json(self.status())

    def _join(self, body: dict[str, Any]) -> Response:
        account = ACCOUNT_BY_ID.get(str(body.get("account", "")))
        if account is None:
            return _refuse(f"unknown account {body.get('account')!r}")
        organizations.join_organization(account)
        return _json(self.status())

    def _configure(self, body: dict[str, Any]) -> Response:
        settings.configure(**body)
        return _json(self.status())

    def _run_plan(self, body: dict[str, Any]) -> Response:
        """Start every rule of a backup plan now: {"plan": NAME or ID, "account": ID, "region": R}, the
        account and Region defaulting to the source account's; answers the plan's ID and the backup jobs
        started, or 404 naming the plans there when none has that name."""
        name = body.get("plan")
        if not isinstance(name, str) or not name:
            return _refuse('run-plan needs the name (or ID) of a backup plan in "plan"')
        account_id = str(body.get("account") or SOURCE.account_id)
        if account_id not in ACCOUNT_BY_ID:
            return _refuse(f"unknown account {account_id!r}; accounts are {', '.join(sorted(ACCOUNT_BY_ID))}")
        region = body.get("region") or SOURCE_REGION
        if not isinstance(region, str) or region not in sandbox_backup_backends[account_id]:
            return _refuse(f"unknown Region {region!r}")
        try:
            with self.lock:
                plan_id, jobs = run_plan(account_id, region, name)
        except PlanNotFound as missing:
            return _refuse(str(missing), 404)
        return _json(
            {
                "plan": name,
                "plan_id": plan_id,
                "account": account_id,
                "region": region,
                "backup_job_ids": [job.job_id for job in jobs],
            }
        )

    def _identity_policies(self, body: dict[str, Any]) -> Response:
        """Attach an identity policy to an account's signer, or take it off: {"account": ID or role, "policy":
        a policy document, or null}; answers every account's policy (identity_policies.py enforces them)."""
        if "account" not in body or "policy" not in body:
            return _refuse('identity-policies needs "account" (an ID or role) and "policy" (a document or null)')
        try:
            policies = identity_policies.set_policy(body["account"], body["policy"])
        except identity_policies.PolicyError as error:
            return _refuse(str(error))
        return _json({"identity_policies": policies})

    def _shutdown(self, body: dict[str, Any]) -> Response:
        settings.release_stalls()
        threading.Thread(target=self.shutdown, daemon=True).start()
        return _json({"stopping": True})


ROUTES: dict[tuple[str, str], Callable[[ControlAPI, dict[str, Any]], Response]] = {
    ("GET", "status"): ControlAPI._status,
    ("GET", "scenarios"): ControlAPI._scenarios,
    ("GET", "state"): ControlAPI._state,
    ("GET", "stats"): ControlAPI._stats,
    ("POST", "stats/clear"): ControlAPI._clear_stats,
    ("POST", "reset"): ControlAPI._reset,
    ("POST", "join"): ControlAPI._join,
    ("POST", "configure"): ControlAPI._configure,
    ("POST", "run-plan"): ControlAPI._run_plan,
    ("POST", "identity-policies"): ControlAPI._identity_policies,
    ("POST", "shutdown"): ControlAPI._shutdown,
}
