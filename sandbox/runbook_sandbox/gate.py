"""The gate in front of every service: what AWS does before an operation runs.

It knows every access key it issued (and answers an unknown one as AWS does), maps the key to its
account, refuses a request that names no operation of a served service (protocols.py), refuses what
an account's identity policy does not allow when one is set (identity_policies.py), holds a
request when a stall is set, throttles when asked, and then brings every job whose time is up to
its end, so that all operations, of every service, see the same world at the same moment.
It counts every request it answers, per operation (stats.py). Requests under /_sandbox/ go to the
control API.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.wrappers import Response

from runbook_lib.core import guard

from . import identity_policies, protocols
from .accounts import ACCOUNT_BY_ACCESS_KEY
from .backup.models import settle_due_jobs
from .control import ControlAPI
from .settings import settings
from .speedups import backend_for_host
from .stats import request_counts

logger = logging.getLogger(__name__)

INVALID_TOKEN = "The security token included in the request is invalid."
PROTOCOL_KEY = "sandbox.protocol"
SERVICE_KEY = "sandbox.service"
OPERATION_KEY = "sandbox.operation"


def _service_of(environ: dict[str, Any]) -> str:
    """The service the request is signed for (its credential scope), or '' when unsigned."""
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


def _declared_length(environ: dict[str, Any]) -> int:
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request body, read once and put back for the service to read again."""
    stream = environ.get("wsgi.input")
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if stream is None:
        body = b""
    elif length > 0:
        body = stream.read(length)
    elif environ.get("wsgi.input_terminated"):
        body = stream.read(MAX_BODY_BYTES + 1)  # a chunked body declares no length: read no more than the limit
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


# What moto's handlers raise on a value of the wrong type: the request's fault, answered 400 (not retried).
BAD_INPUT_ERRORS = (ValueError, TypeError, AttributeError)
MAX_BODY_BYTES = 16 * 1024 * 1024
UNMARKED = os.environ.get(guard.UNMARKED_ENV) == "1"  # started with --unmarked: answers as real AWS would


def backend_of(dispatcher: DomainDispatcherApplication, environ: dict[str, Any]) -> str | None:
    """The moto backend that serves the request, or None for a service moto does not know."""
    host = dispatcher.infer_service_region_host(environ, environ.get("PATH_INFO", ""))
    return None if host is None else backend_for_host(host)


def on_service_error(error: Exception) -> Response | HTTPException:
    """Flask error handler of the service apps moto serves as they are: service_error for Flask's request."""
    from flask import request

    return service_error(error, request.environ)


def service_error(error: Exception, environ: dict[str, Any]) -> Response | HTTPException:
    """What escapes a service's handler, answered in the service's protocol, never as an HTML page."""
    if isinstance(error, HTTPException) and not isinstance(error, (NotFound, MethodNotAllowed)):
        return error  # moto's own AWS errors carry their response
    protocol = environ.get(PROTOCOL_KEY, protocols.JSON)
    operation = f"{environ.get(SERVICE_KEY, '')} {environ.get(OPERATION_KEY, '')}".strip()
    if isinstance(error, (NotFound, MethodNotAllowed, NotImplementedError)):
        return protocols.aws_error(protocol, "NotImplemented", f"The sandbox does not implement {operation}.", 501)
    if isinstance(error, BAD_INPUT_ERRORS):
        logger.warning("%s refused a value of the wrong type (or the sandbox has a bug)", operation, exc_info=error)
        code = "ValidationException" if protocol in (protocols.JSON, protocols.REST_JSON) else "InvalidParameterValue"
        return protocols.aws_error(
            protocol,
            code,
            f"A value of the {operation} request is not of the type the operation takes ({type(error).__name__}).",
            400,
        )
    logger.error("%s failed", operation, exc_info=error)
    return protocols.aws_error(
        protocol, "InternalFailure", f"The sandbox failed on {operation}: {type(error).__name__}", 500
    )


class SandboxGate:
    """WSGI middleware: control API, credential check, account mapping, request checks, faults, counts."""

    def __init__(self, app: DomainDispatcherApplication, control: ControlAPI):
        self.app = app
        self.control = control

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_sandbox/"):
            return self.control(environ, start_response)
        if path.startswith("/moto-api"):
            return Response("Use the sandbox's /_sandbox/ control API.", status=404)(environ, start_response)
        app = self.gate(environ)
        request_counts.count(environ.get(SERVICE_KEY, ""), environ.get(OPERATION_KEY))

        def marked(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            """Every AWS answer names the sandbox: the runbook tells it from real AWS by this alone."""
            return start_response(status, [*headers, (guard.SANDBOX_HEADER, guard.SANDBOX_MARK)], *rest)

        return app(environ, start_response if UNMARKED else marked)

    def gate(self, environ: dict[str, Any]) -> Callable[..., Iterable[bytes]]:
        """The app that answers the request: an AWS-shaped refusal, or the service."""
        service = _service_of(environ)
        backend = backend_of(self.app, environ) if service else None
        body = _read_body(environ) if _declared_length(environ) <= MAX_BODY_BYTES else b""
        if _declared_length(environ) > MAX_BODY_BYTES or len(body) > MAX_BODY_BYTES:
            protocol = protocols.protocol_of(protocols.model_of(backend) if backend else None, environ, b"")
            return protocols.aws_error(
                protocol, "RequestEntityTooLarge", f"The request body is over {MAX_BODY_BYTES} bytes.", 413
            )
        protocol = protocols.protocol_of(protocols.model_of(backend) if backend else None, environ, body)
        environ[PROTOCOL_KEY], environ[SERVICE_KEY] = protocol, service
        access_key = _access_key_of(environ)
        if access_key is None:
            return protocols.aws_error(
                protocol, "MissingAuthenticationTokenException", "Missing Authentication Token", 403
            )
        account = ACCOUNT_BY_ACCESS_KEY.get(access_key)
        if account is None:
            return protocols.aws_error(protocol, "UnrecognizedClientException", INVALID_TOKEN, 403)
        environ["HTTP_X_MOTO_ACCOUNT_ID"] = account.account_id
        try:
            if backend is None:
                raise protocols.unknown_operation(protocol, f"The sandbox does not serve the service {service!r}.")
            operation = protocols.operation_of(backend, protocol, environ, body)
        except protocols.Refusal as refusal:
            return protocols.aws_error(protocol, refusal.code, refusal.message, refusal.status)
        environ[OPERATION_KEY] = operation
        denied = identity_policies.denial(account.account_id, backend, service, protocol, operation, environ, body)
        if denied is not None:
            return protocols.aws_error(protocol, denied.code, denied.message, denied.status)
        stall = settings.take_stall(service, operation)
        if stall is not None:
            released, seconds = stall
            logger.info("holding %s %s for up to %s s", service, operation, seconds)
            released.wait(seconds)
        if settings.should_throttle():
            return protocols.aws_error(protocol, "ThrottlingException", "Rate exceeded", 400)
        settle_due_jobs()
        return self.app
