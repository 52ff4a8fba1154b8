"""The sandbox server: moto's server app, the services it extends, and a gate in front of both.

The gate does what AWS does before any service sees a request: it knows every access key it
issued (and answers an unknown one as AWS does), it maps the key to its account, and, when a test
asks for it, it throttles. Requests under /_sandbox/ are the control API (reset, configure, state).

Run as `python -m runbook_lib.sandbox.server`; `runbook sandbox start` does that for you.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import uuid
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

from moto.core.utils import convert_regex_to_flask_path, convert_to_flask_response
from moto.moto_server.utilities import RegexConverter
from moto.moto_server.werkzeug_app import (
    HTTP_METHODS,
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.routing import Map
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from . import organizations, state
from .accounts import ACCOUNT_BY_ACCESS_KEY, ACCOUNT_BY_ID
from .backup import urls as backup_urls
from .ec2 import models as ec2_models
from .ec2 import urls as ec2_urls
from .kms import models as kms_models
from .kms import urls as kms_urls
from .scenarios import SCENARIOS, reset_world
from .settings import settings
from .world import world

# Services whose moto handlers the sandbox replaces: service name -> the sandbox's urls module.
EXTENDED_SERVICES: dict[str, ModuleType] = {"backup": backup_urls, "ec2": ec2_urls, "kms": kms_urls}

# How each protocol family reports an unknown key, a missing signature and throttling.
QUERY_SERVICES = {"iam", "sts", "rds", "sns", "sqs"}
INVALID_TOKEN = "The security token included in the request is invalid."
EC2_ERRORS = {
    "UnrecognizedClientException": ("AuthFailure", "AWS was not able to validate the provided access credentials"),
    "ThrottlingException": ("RequestLimitExceeded", "Request limit exceeded."),
    "MissingAuthenticationTokenException": ("MissingParameter", "Request is missing Authentication Token"),
}


def create_app(service: str) -> Any:
    """moto's Flask app for a service, with the sandbox's routes where it extends the service."""
    app = create_backend_app(service)  # type: ignore[arg-type]
    extension = EXTENDED_SERVICES.get(service)
    if extension is None:
        return app
    app.view_functions = {}
    app.url_map = Map()
    app.url_map.converters["regex"] = RegexConverter
    for index, (path, handler) in enumerate(extension.url_paths.items()):
        app.add_url_rule(
            convert_regex_to_flask_path(path.format("")),
            endpoint=f"sandbox-{service}-{index}",
            methods=HTTP_METHODS,
            view_func=convert_to_flask_response(handler),
            strict_slashes=False,
        )
    return app


def _service_of(environ: dict[str, Any]) -> str:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    try:
        return auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")[3].lower()
    except IndexError:
        return ""


def _access_key_of(environ: dict[str, Any]) -> str | None:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" not in auth:
        return None
    return auth.split("Credential=", 1)[1].split("/", 1)[0]


def aws_error(service: str, code: str, message: str, status: int = 400) -> Response:
    """An error body in the protocol the service's clients parse."""
    request_id = str(uuid.uuid4())
    if service == "ec2":
        code, message = EC2_ERRORS.get(code, (code, message))
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
            f"<Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        )
        return Response(body, status=status, content_type="text/xml")
    if service in QUERY_SERVICES:
        code = {"UnrecognizedClientException": "InvalidClientTokenId", "ThrottlingException": "Throttling"}.get(
            code, code
        )
        body = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return Response(body, status=status, content_type="text/xml")
    response = Response(
        json.dumps({"__type": code, "message": message}), status=status, content_type="application/x-amz-json-1.1"
    )
    response.headers["x-amzn-ErrorType"] = code
    response.headers["x-amzn-RequestId"] = request_id
    return response


class SandboxGate:
    """WSGI middleware: control API, credential check, account mapping, throttling."""

    def __init__(self, app: Callable[..., Iterable[bytes]], shutdown: Callable[[], None]):
        self.app = app
        self.shutdown = shutdown
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_sandbox/"):
            return self.control(Request(environ))(environ, start_response)
        if path.startswith("/moto-api"):
            return Response("Use the sandbox's /_sandbox/ control API.", status=404)(environ, start_response)
        service = _service_of(environ)
        access_key = _access_key_of(environ)
        if access_key is None:
            error = aws_error(service, "MissingAuthenticationTokenException", "Missing Authentication Token", 403)
            return error(environ, start_response)
        account = ACCOUNT_BY_ACCESS_KEY.get(access_key)
        if account is None:
            return aws_error(service, "UnrecognizedClientException", INVALID_TOKEN, 403)(environ, start_response)
        environ["HTTP_X_MOTO_ACCOUNT_ID"] = account.account_id
        if settings.should_throttle():
            return aws_error(service, "ThrottlingException", "Rate exceeded", 400)(environ, start_response)
        return self.app(environ, start_response)

    def control(self, request: Request) -> Response:
        action = request.path.removeprefix("/_sandbox/").strip("/")
        body = request.get_json(silent=True) or {}
        try:
            if action == "status" and request.method == "GET":
                return _json(self.status())
            if action == "scenarios" and request.method == "GET":
                return _json({name: s.story for name, s in SCENARIOS.items()})
            if action == "state" and request.method == "GET":
                return _json(state.snapshot())
            if action == "reset" and request.method == "POST":
                name = body.get("scenario") or world.scenario
                if name not in SCENARIOS:
                    return _json({"error": f"unknown scenario {name!r}; choose one of {sorted(SCENARIOS)}"}, 400)
                with self.lock:
                    reset_world(name)
                return _json(self.status())
            if action == "join" and request.method == "POST":
                account = ACCOUNT_BY_ID.get(str(body.get("account", "")))
                if account is None:
                    return _json({"error": f"unknown account {body.get('account')!r}"}, 400)
                organizations.join_organization(account)
                return _json(self.status())
            if action == "configure" and request.method == "POST":
                settings.configure(**{k: body[k] for k in body})
                return _json(self.status())
            if action == "shutdown" and request.method == "POST":
                threading.Thread(target=self.shutdown, daemon=True).start()
                return _json({"stopping": True})
        except (TypeError, ValueError) as error:
            return _json({"error": str(error)}, 400)
        return _json({"error": f"no control action {request.method} {action}"}, 404)

    @staticmethod
    def status() -> dict[str, Any]:
        return {"pid": os.getpid(), "scenario": world.scenario, "settings": settings.as_dict()}


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload, default=str), status=status, content_type="application/json")


def install_extensions() -> None:
    kms_models.install()
    ec2_models.install()


def serve(host: str, port: int, scenario: str, job_seconds: float, ready_file: str | None) -> None:
    """Build the world, bind, announce the port in ready_file, serve until told to stop.

    Request threads are joined before the process exits, so the reply to a shutdown request
    (and to any request in flight) is sent whole.
    """
    install_extensions()
    settings.configure(job_seconds=job_seconds)
    reset_world(scenario)
    holder: dict[str, Any] = {}
    gate = SandboxGate(DomainDispatcherApplication(create_app), lambda: holder["server"].shutdown())
    server = make_server(host, port, gate, threaded=True, request_handler=MotoRequestHandler)
    holder["server"] = server
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    if ready_file:
        temporary = f"{ready_file}.tmp"
        with open(temporary, "w") as handle:
            json.dump({"pid": os.getpid(), "host": host, "port": server.server_port}, handle)
        os.replace(temporary, ready_file)
    server.daemon_threads = False
    server.serve_forever()
    server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--scenario", default="walkthrough", choices=sorted(SCENARIOS))
    parser.add_argument("--job-seconds", type=float, default=0.0)
    parser.add_argument("--ready-file")
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.scenario, args.job_seconds, args.ready_file)


if __name__ == "__main__":
    main()
