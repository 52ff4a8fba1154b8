"""What AWS checks before an operation runs, and the error shape each wire protocol uses.

A request reaches AWS in one of four protocols: JSON (X-Amz-Target names the operation), query
and EC2 (an Action parameter), and REST-JSON (the method and path). The service's botocore model
says which protocol it speaks and which operations exist; a request that names no known operation,
or whose body the protocol cannot read, is refused here with the code AWS uses for that protocol,
so that clients parse it as they parse AWS's own refusals. A service the sandbox does not serve is
refused the same way, in the protocol the request is shaped for.
"""

from __future__ import annotations

import json
import re
import uuid
from functools import cache
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from botocore.exceptions import DataNotFoundError, UnknownServiceError
from botocore.model import ServiceModel
from moto.core.utils import get_service_model
from werkzeug.wrappers import Response

JSON, QUERY, EC2, REST_JSON = "json", "query", "ec2", "rest-json"
EC2_API_VERSION = "2016-11-15"

# How each protocol family names a refusal the gate makes (JSON and REST-JSON use the first name).
QUERY_CODES = {
    "UnrecognizedClientException": "InvalidClientTokenId",
    "ThrottlingException": "Throttling",
    "MissingAuthenticationTokenException": "MissingAuthenticationToken",
}
EC2_ERRORS = {
    "UnrecognizedClientException": ("AuthFailure", "AWS was not able to validate the provided access credentials"),
    "ThrottlingException": ("RequestLimitExceeded", "Request limit exceeded."),
    "MissingAuthenticationTokenException": ("MissingParameter", "Request is missing Authentication Token"),
}


def aws_error(protocol: str, code: str, message: str, status: int = 400) -> Response:
    """An error body in the shape the protocol's clients parse."""
    request_id = str(uuid.uuid4())
    if protocol == EC2:
        code, message = EC2_ERRORS.get(code, (code, message))
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
            f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        )
        return Response(body, status=status, content_type="text/xml")
    if protocol == QUERY:
        code = QUERY_CODES.get(code, code)
        body = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return Response(body, status=status, content_type="text/xml")
    content_type = "application/json" if protocol == REST_JSON else "application/x-amz-json-1.1"
    response = Response(json.dumps({"__type": code, "message": message}), status=status, content_type=content_type)
    response.headers["x-amzn-ErrorType"] = code
    response.headers["x-amzn-RequestId"] = request_id
    return response


class Refusal(Exception):
    """A request AWS refuses before running any operation; the class name is AWS's error code."""

    status = 400

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.code, self.message = type(self).__name__, message
        self.status = status or self.status


class SerializationException(Refusal):
    """JSON and REST-JSON: the body is not the JSON object the operation reads."""


class UnknownOperationException(Refusal):
    """JSON and REST-JSON: no operation of the service has this target (or method and path)."""


class InvalidAction(Refusal):
    """Query and EC2: no operation of the service has this Action."""


class MissingAction(Refusal):
    """Query and EC2: the request names no Action (a body that is not a form names none)."""


def unknown_operation(protocol: str, message: str) -> Refusal:
    if protocol in (QUERY, EC2):
        return InvalidAction(message)
    return UnknownOperationException(message, 404 if protocol == REST_JSON else 400)


@cache
def model_of(service: str) -> ServiceModel | None:
    try:
        return get_service_model(service)
    except (UnknownServiceError, DataNotFoundError):
        return None


def query_params(environ: dict[str, Any], body: bytes) -> dict[str, str]:
    """The parameters of a query or EC2 request: from the URL, then from a form body."""
    params = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        text = body.decode("utf-8", errors="replace")
        params.update({k: v[0] for k, v in parse_qs(text).items()})
    return params


def protocol_of(model: ServiceModel | None, environ: dict[str, Any], body: bytes) -> str:
    """The service's protocol, or, for a service without a model, the one the request is shaped for."""
    if model is not None:
        return str(model.protocol)
    if environ.get("HTTP_X_AMZ_TARGET"):
        return JSON
    params = query_params(environ, body)
    if "Action" in params:
        return EC2 if params.get("Version") == EC2_API_VERSION else QUERY
    return REST_JSON


def _json_object(body: bytes) -> None:
    if not body.strip():
        return
    try:
        parsed = json.loads(body)
    except ValueError as error:
        raise SerializationException(f"The request body is not valid JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise SerializationException("Start of structure or map found where not expected.")


@cache
def _rest_routes(service: str) -> tuple[tuple[str, re.Pattern[str], str, bool], ...]:
    """(method, path pattern, operation, whether the body holds members) for a REST service."""
    model = model_of(service)
    routes = []
    for name in model.operation_names if model else ():
        operation = model.operation_model(name)  # type: ignore[union-attr]
        uri = operation.http["requestUri"].split("?", 1)[0]
        pattern = re.sub(r"\\{[^}]+\\\+\\}", ".+", re.escape(uri))
        pattern = re.sub(r"\\{[^}]+\\}", "[^/]+", pattern)
        shape = operation.input_shape
        in_body = (
            shape is not None
            and any("location" not in member.serialization for member in shape.members.values())
            and "payload" not in shape.serialization
        )
        routes.append((operation.http["method"], re.compile(pattern.rstrip("/") + "/?$"), name, in_body))
    return tuple(sorted(routes, key=lambda route: (".+" in route[1].pattern, -len(route[1].pattern))))


def operation_of(service: str, protocol: str, environ: dict[str, Any], body: bytes) -> str:
    """The operation a request names, checked against the service's model; Refusal when AWS refuses it."""
    model = model_of(service)
    if protocol == JSON:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        prefix, _, operation = target.partition(".")
        if model is None or prefix != model.metadata.get("targetPrefix") or operation not in model.operation_names:
            raise unknown_operation(protocol, f"Operation {target or '(no X-Amz-Target)'} is not known to {service}.")
        _json_object(body)
        return operation
    if protocol in (QUERY, EC2):
        params = query_params(environ, body)
        action = params.get("Action")
        if not action:
            raise MissingAction("The request must contain the parameter Action.")
        if model is None or action not in model.operation_names:
            version = params.get("Version", "")
            if protocol == EC2:
                raise unknown_operation(protocol, f"The action {action} is not valid for this web service.")
            raise unknown_operation(protocol, f"Could not find operation {action} for version {version}")
        return action
    method = environ.get("REQUEST_METHOD", "GET")
    path = urlsplit(environ.get("RAW_URI") or environ.get("PATH_INFO", "")).path  # labels may hold %2F
    for route_method, pattern, operation, in_body in _rest_routes(service):
        if route_method == method and pattern.match(path):
            if in_body:
                _json_object(body)
            return operation
    raise unknown_operation(protocol, f"No {service} operation is {method} {path}.")
