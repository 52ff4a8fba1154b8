"""The WSGI app of a service the sandbox extends: its routes matched and its handler called without Flask.

moto serves each service as a Flask app, whose request and app contexts, hooks and response
finalising cost some 0.7 ms a request; moto's handlers never read Flask's globals, and the sandbox
routes these services itself (server.EXTENDED_SERVICES), so it calls them as moto's Flask view
(convert_to_flask_response) does: the same request type, the same response, and what escapes a
handler answered as the Flask apps' error handler answers it (gate.service_error).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache
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
from werkzeug.sansio.utils import get_current_url
from werkzeug.utils import cached_property

from .gate import service_error

Handler = Callable[..., Any]
MAX_REMEMBERED_PATHS = 4096


@lru_cache(maxsize=64)
def root_url_of(scheme: str, host: str, root_path: str) -> str:
    """werkzeug's root URL (scheme, host, root path as an IRI), worked out once per host: a request's
    full URL, which every handler is given, is built from it."""
    return get_current_url(scheme, host, root_path)


class ServiceRequest(Request):
    """moto's request, as its server (a real WSGI server) hands it over: moto then leaves the Date
    header to the server."""

    from_wsgi_server = True

    @cached_property
    def root_url(self) -> str:
        return root_url_of(self.scheme, self.host, self.root_path)


class ServiceApp:
    """A service's routes (moto's url_paths: regex -> handler), each answered by its handler."""

    def __init__(self, service: str, url_paths: dict[str, Handler]):
        self.service = service
        self.url_map = Map(converters={"regex": RegexConverter})
        self.handlers: dict[str, Handler] = {}
        self.endpoints: dict[tuple[str, str], str] = {}
        for index, (path, handler) in enumerate(url_paths.items()):
            endpoint = f"sandbox-{service}-{index}"
            rule = convert_regex_to_flask_path(path.format(""))
            self.url_map.add(Rule(rule, endpoint=endpoint, methods=HTTP_METHODS, strict_slashes=False))
            self.handlers[endpoint] = handler

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            response: Any = self.answer(self.handlers[self.endpoint(environ)], ServiceRequest(environ))
        except Exception as error:
            response = service_error(error, environ)
        if isinstance(response, HTTPException):
            response = response.get_response(environ)
        return response(environ, start_response)

    def endpoint(self, environ: dict[str, Any]) -> str:
        """The route a request's method and path match, remembered for the paths seen (at most
        MAX_REMEMBERED_PATHS): a match depends on nothing else, and a run polls the same paths. A request
        to upgrade the connection (which werkzeug's Map refuses) is always matched anew. NotFound or
        MethodNotAllowed when no route matches (not remembered)."""
        if "HTTP_UPGRADE" in environ:
            return str(self.url_map.bind_to_environ(environ).match()[0])
        key = (environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", ""))
        endpoint = self.endpoints.get(key)
        if endpoint is None:
            endpoint = str(self.url_map.bind_to_environ(environ).match()[0])
            if len(self.endpoints) >= MAX_REMEMBERED_PATHS:
                self.endpoints.clear()
            self.endpoints[key] = endpoint
        return endpoint

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
