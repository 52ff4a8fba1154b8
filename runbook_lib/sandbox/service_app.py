"""The WSGI app of a service the sandbox extends: its routes matched and its handler called without Flask.

moto serves each service as a Flask app, whose request and app contexts, hooks and response
finalising cost some 0.7 ms a request; moto's handlers never read Flask's globals, and the sandbox
routes these services itself (server.EXTENDED_SERVICES), so it calls them as moto's Flask view
(convert_to_flask_response) does: the same request type, the same response, and what escapes a
handler answered as the Flask apps' error handler answers it (gate.service_error).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError
from flask import Response
from moto.core.request import Request
from moto.core.utils import convert_regex_to_flask_path
from moto.moto_api import recorder
from moto.moto_server.utilities import RegexConverter
from moto.moto_server.werkzeug_app import HTTP_METHODS
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule

from .gate import service_error

Handler = Callable[..., Any]


class ServiceRequest(Request):
    """moto's request, as its server (a real WSGI server) hands it over: moto then leaves the Date
    header to the server."""

    from_wsgi_server = True


class ServiceApp:
    """A service's routes (moto's url_paths: regex -> handler), each answered by its handler."""

    def __init__(self, service: str, url_paths: dict[str, Handler]):
        self.service = service
        self.url_map = Map(converters={"regex": RegexConverter})
        self.handlers: dict[str, Handler] = {}
        for index, (path, handler) in enumerate(url_paths.items()):
            endpoint = f"sandbox-{service}-{index}"
            rule = convert_regex_to_flask_path(path.format(""))
            self.url_map.add(Rule(rule, endpoint=endpoint, methods=HTTP_METHODS, strict_slashes=False))
            self.handlers[endpoint] = handler

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            endpoint, _ = self.url_map.bind_to_environ(environ).match()
            response: Any = self.answer(self.handlers[str(endpoint)], ServiceRequest(environ))
        except Exception as error:
            response = service_error(error, environ)
        if isinstance(response, HTTPException):
            response = response.get_response(environ)
        return response(environ, start_response)

    @staticmethod
    def answer(handler: Handler, request: ServiceRequest) -> Response:
        """The handler's (status, headers, body) as a response, as moto's convert_to_flask_response makes it."""
        recorder._record_request(request)
        try:
            result = handler(request, request.raw_url, dict(request.headers.items()))
        except ClientError as error:
            result = 400, {}, error.response["Error"]["Message"]
        if len(result) == 3:
            status, headers, content = result
        else:
            status, headers, content = 200, {}, result
        response = Response(response=content, status=status, headers=headers)
        if request.method == "HEAD" and "content-length" in headers:
            response.headers["Content-Length"] = headers["content-length"]
        return response
