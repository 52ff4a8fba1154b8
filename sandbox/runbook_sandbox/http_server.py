"""The sandbox's HTTP server: one request per connection, answered on a pooled thread in one write.

werkzeug's development server, which moto's server mode runs on, spends about 0.75 ms of CPU around the app on
a small call, this server about 0.3 ms (sandbox/benchmarks/http_server.py measures both): the headers parsed
by the email package, the WSGI environ built in two passes (werkzeug's, then moto's for underscored header
names), the status line, headers and body written in separate system calls, and a selector made and closed
after every request to drain its body.
This server speaks what SDKs and the AWS CLI send to the sandbox (HTTP/1.0 and 1.1, a body by
Content-Length or chunked, Expect: 100-continue), builds the environ werkzeug and moto build, and
answers as werkzeug does (Server and Date headers, Connection: close), in one write. A request it
cannot read gets a one-line plain-text 4xx, never a service's answer; a connection that finds every
request thread taken gets a one-line plain-text 503 at once.
"""

from __future__ import annotations

import io
import logging
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urlsplit

from moto.core.request import (
    PRESERVED_HEADER_NAMES_ENVIRON_KEY,
    environ_key_for_header,
    should_preserve_original_header_name,
)
from werkzeug.serving import DechunkedInput

logger = logging.getLogger(__name__)

SERVER = "runbook-sandbox"
MAX_LINE_BYTES = 65536  # as http.server: a longer request line or header line is refused
MAX_HEADERS = 100
READ_TIMEOUT_SECONDS = 60.0  # a client silent this long while sending its request is dropped
DRAIN_QUIET_SECONDS = 0.01  # as werkzeug: an unread body is read and dropped until the client pauses this long
DRAIN_MAX_BYTES = 10 * 1024**3  # and at most DRAIN_MAX_READS reads, as werkzeug
DRAIN_MAX_READS = 1000
POOLED_THREADS = 64  # threads kept for requests; more requests at once get threads of their own
# Threads of their own at most, beyond the pool. Each held request (a stall) and each connection still sending its
# request (for up to READ_TIMEOUT_SECONDS) takes one: 256 is many times what the sandbox's clients hold open at
# once (botocore keeps at most 10 connections per client, and a run has a handful of clients), and few enough that
# connections sending nothing cannot make the process start threads until it fails. Beyond it, answered 503.
EXTRA_THREADS = 256
REFUSED_READ_BYTES = 65536  # what a refused client already sent (its request's head) is read before the close
NO_BODY_STATUSES = ("1", "204", "304")

PLAIN_TEXT = [("Content-Type", "text/plain; charset=utf-8")]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class BadRequest(Exception):
    """A request the server cannot read: answered with its status and reason, the app never called."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason

    def answer(self, method: str) -> bytes:
        return plain_answer(method, self.status, self.reason)


class RequestBody(io.RawIOBase):
    """A body of declared length: reads stop at its end, what is left unread is known, and a client that
    leaves before the end is a dropped connection (ConnectionResetError), not a short body."""

    def __init__(self, stream: io.BufferedIOBase, length: int):
        self.stream = stream
        self.remaining = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self.remaining)
        if wanted <= 0:
            return 0
        data = self.stream.read(wanted)
        if len(data) < wanted:  # a blocking read returns less only at the end of the stream
            raise ConnectionResetError("the client closed the connection before the end of its body")
        buffer[: len(data)] = data
        self.remaining -= len(data)
        return len(data)


class ChunkedBody(DechunkedInput):
    """A chunked body (werkzeug's reader): a malformed or cut chunk is the request's fault, answered 400."""

    def readinto(self, buffer: Any) -> int:
        try:
            return super().readinto(buffer)
        except (ConnectionError, TimeoutError):
            raise
        except OSError as error:
            raise BadRequest("400 Bad Request", f"Bad chunked body: {error}.") from None


@lru_cache(maxsize=2)
def _formatted_date(second: int) -> str:
    return formatdate(second, usegmt=True)


def http_date() -> str:
    """The Date header's value, formatted once a second."""
    return _formatted_date(int(time.time()))


def wsgi_string(text: str) -> str:
    """A string as WSGI carries it (PEP 3333): its UTF-8 bytes read as Latin-1, as werkzeug does."""
    return text.encode().decode("latin1")


def rendered(method: str, status: str, headers: list[tuple[str, str]], content: list[bytes]) -> bytes:
    """Status line, headers and body as one write, as werkzeug's server sends them (its Server and Date
    first, Connection: close last, a Content-Length added where the app gave none)."""
    body = b"".join(content)
    lines = [f"HTTP/1.1 {status}", f"Server: {SERVER}", f"Date: {http_date()}"]
    declared_length = False
    for name, value in headers:
        lines.append(f"{name}: {value}")
        declared_length = declared_length or name.lower() == "content-length"
    if not declared_length and method != "HEAD" and not status.startswith(NO_BODY_STATUSES):
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close\r\n\r\n")
    head = "\r\n".join(lines).encode("latin1")
    return head if method == "HEAD" else head + body


def plain_answer(method: str, status: str, reason: str) -> bytes:
    """An answer of the server's own, never the app's: its status and a one-line plain-text reason."""
    return rendered(method, status, PLAIN_TEXT, [f"{reason}\n".encode()])


def declared_length(value: str | None) -> int:
    """The body length a Content-Length declares, 0 without one. Its value must be digits (RFC 9112 section
    6.3): anything else leaves the body's end unknown, so the request is refused 400 before the app is called
    (the gate, reading it with int(), would take -5 or abc for no body, or +3 and 1_0 for a length)."""
    if value is None:
        return 0
    digits = value.strip(" \t")
    if not (digits.isascii() and digits.isdigit()):
        raise BadRequest(
            "400 Bad Request", f"The Content-Length must be a non-negative whole number, not {value[:40]!r}."
        )
    try:
        return int(digits)
    except ValueError:  # more digits than int() reads (sys.get_int_max_str_digits), as the gate would find
        raise BadRequest("400 Bad Request", f"The Content-Length has too many digits ({len(digits)}).") from None


class RequestHandler(socketserver.StreamRequestHandler):
    """Reads one request, calls the app, writes its answer, and closes the connection."""

    timeout = READ_TIMEOUT_SECONDS
    disable_nagle_algorithm = True  # an answer after 100 Continue is not held back for an ACK
    server: SandboxHTTPServer

    def handle(self) -> None:
        self.server.reading.add(self.connection)
        try:
            request = None if self.server.closing else self.read_request()
        except BadRequest as refusal:
            self.send(refusal.answer("GET"))
            return
        except (ConnectionError, TimeoutError):
            return
        finally:
            self.server.reading.discard(self.connection)
        if request is None:
            return
        method, environ, body = request
        try:
            self.send(self.answer(method, environ))
        except (ConnectionError, TimeoutError):
            return  # the client left (or stopped sending its body): nobody to answer, nothing to log
        finally:
            if isinstance(body, ChunkedBody) or (isinstance(body, RequestBody) and body.remaining):
                self.drain()

    def send(self, answer: bytes) -> None:
        try:
            self.connection.sendall(answer)
        except (ConnectionError, TimeoutError):
            pass  # the client left before its answer

    def read_request(self) -> tuple[str, dict[str, Any], io.RawIOBase | None] | None:
        """The request's method, WSGI environ and body stream; None when the client sent nothing."""
        line = self.rfile.readline(MAX_LINE_BYTES + 1)
        if not line:
            return None
        if len(line) > MAX_LINE_BYTES:
            raise BadRequest("414 URI Too Long", f"The request line is longer than {MAX_LINE_BYTES} bytes.")
        words = line.decode("latin1").split()
        if len(words) != 3:
            raise BadRequest("400 Bad Request", f"Bad request line: {line[:200]!r}.")
        method, target, version = words
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            if version.startswith("HTTP/") and version[5:6].isdigit() and version[5:6] != "0":
                raise BadRequest("505 HTTP Version Not Supported", f"{version} is not served; send HTTP/1.1.")
            raise BadRequest("400 Bad Request", f"Bad request version: {version[:40]!r}.")
        if target.startswith("//"):
            target = "/" + target.lstrip("/")  # as http.server: never read as a URL naming another host
        headers = self.read_headers()
        if len({value.strip() for name, value in headers if name.lower() == "content-length"}) > 1:
            raise BadRequest("400 Bad Request", "The request has two different Content-Length headers.")
        environ = self.environ(method, target, version, headers)
        length = declared_length(environ.get("CONTENT_LENGTH"))  # the gate reads it too, even beside chunked
        body: io.RawIOBase | None = None
        transfer_encoding = environ.get("HTTP_TRANSFER_ENCODING", "")
        if any(part.strip().lower() == "chunked" for part in transfer_encoding.split(",")):
            body = ChunkedBody(self.rfile)  # type: ignore[arg-type]  # a BufferedReader
            environ["wsgi.input_terminated"] = True
        elif length > 0:
            body = RequestBody(self.rfile, length)
        environ["wsgi.input"] = body if body is not None else io.BytesIO()
        if version == "HTTP/1.1" and environ.get("HTTP_EXPECT", "").lower().strip(" \t") == "100-continue":
            self.connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        return method, environ, body

    def read_headers(self) -> list[tuple[str, str]]:
        """The header fields in order, their values as werkzeug's server gives them (read by the email
        package): leading blanks dropped, trailing ones kept, and a folded line (obsolete, RFC 9112
        section 5.2) appended to the value before it, its own leading blanks included."""
        headers: list[tuple[str, str]] = []
        while True:
            line = self.rfile.readline(MAX_LINE_BYTES + 1)
            if len(line) > MAX_LINE_BYTES:
                raise BadRequest(
                    "431 Request Header Fields Too Large", f"A header line is over {MAX_LINE_BYTES} bytes."
                )
            if line in (b"\r\n", b"\n"):
                return headers
            if not line:
                raise ConnectionError("the client closed the connection within the headers")
            text = line.decode("latin1").rstrip("\r\n")
            if text[:1] in (" ", "\t"):
                if not headers:
                    raise BadRequest("400 Bad Request", "The first header line is a continuation line.")
                folded_name, folded_value = headers[-1]
                headers[-1] = (folded_name, folded_value + text)
                continue
            name, colon, value = text.partition(":")
            if not colon or not name or name.strip(" \t") != name or " " in name:
                raise BadRequest("400 Bad Request", f"Bad header line: {line[:200]!r}.")
            if len(headers) == MAX_HEADERS:
                raise BadRequest("431 Request Header Fields Too Large", f"More than {MAX_HEADERS} header fields.")
            headers.append((name, value.lstrip(" \t")))

    def environ(self, method: str, target: str, version: str, headers: list[tuple[str, str]]) -> dict[str, Any]:
        """The WSGI environ werkzeug's server builds for the request, with moto's preserved header names."""
        try:
            url = urlsplit(target)
        except ValueError as error:
            raise BadRequest("400 Bad Request", f"Bad request target: {error}.") from None
        path = f"/{url.netloc}{url.path}" if not url.scheme and url.netloc else url.path
        host, port = self.server.server_address[:2]
        environ: dict[str, Any] = {
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "werkzeug.socket": self.connection,
            "SERVER_SOFTWARE": SERVER,
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": wsgi_string(unquote(path)),
            "QUERY_STRING": wsgi_string(url.query),
            "REQUEST_URI": wsgi_string(target),
            "RAW_URI": wsgi_string(target),
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": self.client_address[1],
            "SERVER_NAME": host,
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": version,
        }
        preserved_names: dict[str, str] = {}
        preserved_values: dict[str, list[str]] = {}
        for name, value in headers:
            if "_" in name:
                if should_preserve_original_header_name(name):
                    key = environ_key_for_header(name)
                    preserved_names.setdefault(key, name)
                    preserved_values.setdefault(key, []).append(value)
                continue
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = f"HTTP_{key}"
                if key in environ:
                    value = f"{environ[key]},{value}"
            environ[key] = value
        for key, values in preserved_values.items():
            if key in environ:  # a dashed header of the same WSGI name wins, as in moto's server
                del preserved_names[key]
                continue
            environ[key] = ",".join(values)
        environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = preserved_names
        if url.scheme and url.netloc:
            environ["HTTP_HOST"] = url.netloc
        return environ

    def answer(self, method: str, environ: dict[str, Any]) -> bytes:
        """The app's answer, ready to send; a plain 500, logged with its traceback, when the app fails or
        its answer cannot be sent as HTTP (a body that is not bytes, a header outside Latin-1)."""
        try:
            return rendered(method, *self.call_app(environ))
        except (ConnectionError, TimeoutError):
            raise
        except BadRequest as refusal:
            return refusal.answer(method)
        except Exception:
            logger.exception("Error on request %s %s", environ["REQUEST_METHOD"], environ["RAW_URI"])
            return rendered(method, "500 Internal Server Error", PLAIN_TEXT, [b"Internal Server Error\n"])

    def call_app(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], list[bytes]]:
        """The app's status, headers and body."""
        answer: list[Any] = []
        content: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., None]:
            if answer and exc_info is None:
                raise AssertionError("start_response called twice without exc_info")
            answer[:] = [status, headers]
            return content.append

        iterable = self.server.app(environ, start_response)
        try:
            content.extend(iterable)
        finally:
            if hasattr(iterable, "close"):
                iterable.close()
        if not answer:
            raise AssertionError("the app returned without calling start_response")
        return answer[0], answer[1], content

    def drain(self) -> None:
        """Read and drop what is left of a body the app did not read, so that the client sees the answer,
        not a connection reset (a socket closed with unread data resets)."""
        self.connection.settimeout(DRAIN_QUIET_SECONDS)
        dropped = 0
        try:
            for _ in range(DRAIN_MAX_READS):
                data = self.rfile.read1(1024 * 1024)
                dropped += len(data)
                if not data or dropped >= DRAIN_MAX_BYTES:
                    return
        except OSError:
            pass


class SandboxHTTPServer(socketserver.TCPServer):
    """Serves a WSGI app on host:port. shutdown() from any thread ends serve_forever and the connections
    still sending their request; server_close() then waits for the requests in flight, so their answers
    are sent whole."""

    allow_reuse_address = True
    request_queue_size = 1024  # connections waiting to be accepted (the system may allow fewer)

    def __init__(self, host: str, port: int, app: WSGIApp):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.app = app
        self.workers = ThreadPoolExecutor(POOLED_THREADS, thread_name_prefix="sandbox-request")
        self.pooled_busy = 0
        self.own_threads: set[threading.Thread] = set()
        self.threads_lock = threading.Lock()
        self.reading: set[socket.socket] = set()  # connections whose request is still arriving
        self.refusing = False  # since the last refusal no thread was freed: logged once per spell
        self.closing = False
        super().__init__((host, port), RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """On a pooled thread (a thread started for every request cost about 0.25 ms of CPU), or, while
        every pooled thread is busy (held requests, see settings.stall), on a thread of its own: no
        request waits for another, the control API's included. Beyond EXTRA_THREADS of its own, the
        connection is refused 503 at once rather than queued behind requests that may be held for minutes."""
        thread = None
        with self.threads_lock:
            pooled = self.pooled_busy < POOLED_THREADS
            if pooled:
                self.pooled_busy += 1
            elif len(self.own_threads) < EXTRA_THREADS:
                thread = threading.Thread(
                    target=self.answer_alone, args=(request, client_address), name="sandbox-request"
                )
                self.own_threads.add(thread)
        if pooled:
            self.workers.submit(self.answer_pooled, request, client_address)
            return
        if thread is not None:
            try:
                thread.start()
                return
            except RuntimeError:  # the system allows no more threads
                with self.threads_lock:
                    self.own_threads.discard(thread)
        self.refuse_busy(request, client_address)

    def refuse_busy(self, request: socket.socket, client_address: Any) -> None:
        """Answers 503 and closes, on the accepting thread and without waiting on the client: a new
        connection's send buffer takes the answer whole, and what the client already sent is read first,
        as a close with unread data resets the connection and the client could lose the answer."""
        with self.threads_lock:
            first_of_spell, self.refusing = not self.refusing, True
        if first_of_spell:
            logger.warning(
                "Every request thread is busy (%d pooled, %d more): new connections are answered 503 until one "
                "is free; the first refused came from %s",
                POOLED_THREADS,
                EXTRA_THREADS,
                client_address[0],
            )
        try:
            request.setblocking(False)
            request.send(
                plain_answer(
                    "GET",
                    "503 Service Unavailable",
                    f"The sandbox is busy: all its {POOLED_THREADS + EXTRA_THREADS} request threads are taken "
                    "(by held requests or connections still sending theirs). Try again later.",
                )
            )
            request.recv(REFUSED_READ_BYTES)
        except OSError:
            pass  # the client left, or sent nothing yet
        self.shutdown_request(request)

    def answer_pooled(self, request: Any, client_address: Any) -> None:
        try:
            self.answer(request, client_address)
        finally:
            with self.threads_lock:
                self.pooled_busy -= 1
                self.refusing = False

    def answer_alone(self, request: Any, client_address: Any) -> None:
        try:
            self.answer(request, client_address)
        finally:
            with self.threads_lock:
                self.own_threads.discard(threading.current_thread())
                self.refusing = False

    def answer(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.exception("Error on a connection from %s", client_address[0])

    def shutdown(self) -> None:
        """Ends serve_forever, then the connections whose request is still arriving: each would hold
        server_close for up to READ_TIMEOUT_SECONDS."""
        super().shutdown()
        self.closing = True
        for connection in list(self.reading):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed

    def server_close(self) -> None:
        super().server_close()
        self.workers.shutdown(wait=True)
        with self.threads_lock:
            alone = list(self.own_threads)
        for thread in alone:
            thread.join()

    @property
    def server_port(self) -> int:
        return int(self.server_address[1])
