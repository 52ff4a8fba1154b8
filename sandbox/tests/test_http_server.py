"""The sandbox's HTTP server: the environ and answer werkzeug's server (moto's) gives for the same
request, requests it cannot read refused in one plain line, bodies however sent, and a stop that
lets requests in flight finish. Each test serves a small WSGI app in this process."""

from __future__ import annotations

import http.client
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from runbook_sandbox import http_server
from runbook_sandbox.http_server import MAX_HEADERS, SandboxHTTPServer

App = Callable[[dict[str, Any], Callable[..., Any]], Any]
# What differs between two servers however alike: the streams, the socket, the ports, the name.
VOLATILE = {"wsgi.input", "wsgi.errors", "werkzeug.socket", "REMOTE_PORT", "SERVER_PORT", "SERVER_SOFTWARE"}


@contextmanager
def serving(app: App, server_kind: str = "sandbox") -> Iterator[tuple[str, int]]:
    if server_kind == "sandbox":
        server: Any = SandboxHTTPServer("127.0.0.1", 0, app)
    else:
        server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def exchange(address: tuple[str, int], raw: bytes) -> bytes:
    """Sends raw bytes, returns every byte answered until the server closes."""
    with socket.create_connection(address, timeout=10) as connection:
        connection.sendall(raw)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def head_of(answer: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin1").split("\r\n")
    return status, dict(line.split(": ", 1) for line in lines), body


class Recorder:
    """An app that keeps each request's environ and body, and answers with a JSON-ish body."""

    def __init__(self) -> None:
        self.environs: list[dict[str, Any]] = []
        self.bodies: list[bytes] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        self.environs.append({k: v for k, v in environ.items() if k not in VOLATILE})
        self.bodies.append(Request(environ).get_data())
        return Response(b'{"ok": true}', status=201, headers={"X-Amzn-RequestId": "abc"})(environ, start_response)


REQUESTS = {
    "plain": b"GET /backup-vaults/ HTTP/1.1\r\nHost: h:1\r\n\r\n",
    "query and escapes": (
        b"GET /backup-vaults/v/recovery-points/arn%3Aaws%3Aec2%3A%3A%3Asnapshot%2Fsnap-1?maxResults=5&x=%2F"
        b" HTTP/1.1\r\n"
        b"Host: h:1\r\n\r\n"
    ),
    "absolute target": b"GET http://backup.us-east-1.amazonaws.com/backup-jobs/?a=b HTTP/1.1\r\nHost: h:1\r\n\r\n",
    "double slash path": b"GET //kms/x HTTP/1.1\r\nHost: h:1\r\n\r\n",
    "repeated and underscored headers": (
        b"POST / HTTP/1.1\r\nHost: h:1\r\nX-Thing: a\r\nX-Thing: b\r\nX_Thing: spoof\r\nX-Amz-Meta-my_key: m\r\n"
        b"Content-Type: application/x-amz-json-1.1\r\nContent-Length: 2\r\n\r\n{}"
    ),
    "dashed header beats underscored": (
        b"GET / HTTP/1.1\r\nHost: h:1\r\nx-amz-meta-a_b: under\r\nx-amz-meta-a-b: dash\r\n\r\n"
    ),
    "http 1.0": b"GET /x HTTP/1.0\r\nHost: h:1\r\n\r\n",
    "blanks and folded lines": (
        b"GET / HTTP/1.1\r\nHost: h:1\r\nX-Pad:   v  \r\nX-Long: one\r\n  two\r\n\tthree\r\n\r\n"
    ),
    "unicode path": "GET /caf%C3%A9/\u00e9 HTTP/1.1\r\nHost: h:1\r\n\r\n".encode("utf-8"),
}


@pytest.mark.parametrize("name", REQUESTS)
def test_the_app_sees_the_environ_werkzeugs_server_builds(name):
    environs = {}
    for kind in ("werkzeug", "sandbox"):
        recorder = Recorder()
        with serving(recorder, kind) as address:
            exchange(address, REQUESTS[name])
        (environs[kind],) = recorder.environs
    assert environs["sandbox"] == environs["werkzeug"]


@pytest.mark.parametrize("name", ["plain", "repeated and underscored headers"])
def test_the_answer_is_werkzeugs_but_for_the_server_name(name):
    answers = {}
    for kind in ("werkzeug", "sandbox"):
        with serving(Recorder(), kind) as address:
            status, headers, body = head_of(exchange(address, REQUESTS[name]))
        headers.pop("Server")
        assert (
            abs(
                time.mktime(time.strptime(headers.pop("Date"), "%a, %d %b %Y %H:%M:%S GMT"))
                - time.mktime(time.gmtime())
            )
            < 60
        )
        answers[kind] = status, headers, body
    assert answers["sandbox"] == answers["werkzeug"]
    assert answers["sandbox"][1]["Connection"] == "close"


REFUSED = [
    ("no version", b"GET /\r\n\r\n", "400 Bad Request", "Bad request line"),
    ("junk line", b"\x16\x03\x01 hello\r\n\r\n", "400 Bad Request", "Bad request line"),
    ("unknown version", b"GET / HTTP/9.9\r\n\r\n", "505 HTTP Version Not Supported", "HTTP/9.9 is not served"),
    ("not http", b"GET / FTP/1.0\r\n\r\n", "400 Bad Request", "Bad request version"),
    ("header without colon", b"GET / HTTP/1.1\r\nHost h\r\n\r\n", "400 Bad Request", "Bad header line"),
    ("space before colon", b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", "400 Bad Request", "Bad header line"),
    ("fold first", b"GET / HTTP/1.1\r\n folded\r\n\r\n", "400 Bad Request", "continuation line"),
    ("long request line", b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", "414 URI Too Long", "request line"),
    (
        "long header",
        b"GET / HTTP/1.1\r\nX-A: " + b"a" * 70000 + b"\r\n\r\n",
        "431 Request Header Fields Too Large",
        "header line",
    ),
    (
        "many headers",
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS + 1)) + b"\r\n",
        "431 Request Header Fields Too Large",
        f"More than {MAX_HEADERS} header fields",
    ),
    ("bad target", b"GET http://[::1/ HTTP/1.1\r\n\r\n", "400 Bad Request", "Bad request target"),
    (
        "two lengths",
        b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
        "400 Bad Request",
        "two different Content-Length headers",
    ),
    *(
        (
            f"length {shown}",
            b"POST / HTTP/1.1\r\nContent-Length: " + length + b"\r\n\r\nabc",
            "400 Bad Request",
            f"The Content-Length must be a non-negative whole number, not {length.decode('latin1')!r}.",
        )
        for shown, length in [
            ("-5", b"-5"),
            ("abc", b"abc"),
            ("+3", b"+3"),
            ("superscript", b"\xb2"),
            ("1_0", b"1_0"),
            ("3.0", b"3.0"),
            ("empty", b""),
        ]
    ),
    (
        "length -5 beside chunked",
        b"POST / HTTP/1.1\r\nContent-Length: -5\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "400 Bad Request",
        "The Content-Length must be a non-negative whole number, not '-5'.",
    ),
    (
        "length of 5000 digits",
        b"POST / HTTP/1.1\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\nabc",
        "400 Bad Request",
        "The Content-Length has too many digits (5000).",
    ),
]


@pytest.mark.parametrize("case, raw, status, reason", REFUSED, ids=[case[0] for case in REFUSED])
def test_a_request_it_cannot_read_is_refused_in_one_plain_line_and_the_app_never_called(case, raw, status, reason):
    recorder = Recorder()
    with serving(recorder) as address:
        answered, headers, body = head_of(exchange(address, raw))
        assert answered == f"HTTP/1.1 {status}"
        assert headers["Content-Type"] == "text/plain; charset=utf-8"
        assert reason in body.decode() and body.count(b"\n") == 1
        assert recorder.environs == []
        exchange(address, REQUESTS["plain"])  # and the next request is served
    assert len(recorder.environs) == 1


def test_a_chunked_body_reaches_the_app_whole():
    recorder = Recorder()
    with serving(recorder) as address:
        connection = http.client.HTTPConnection(*address, timeout=10)
        connection.request("PUT", "/x", body=(part for part in (b"abc", b"defg", b"")), encode_chunked=True)
        assert connection.getresponse().status == 201
        connection.close()
    assert recorder.bodies == [b"abcdefg"]
    assert recorder.environs[0]["wsgi.input_terminated"] is True


@pytest.mark.parametrize("chunks", [b"zz\r\nhello\r\n0\r\n\r\n", b"10\r\nhel"], ids=["bad chunk size", "cut chunk"])
def test_a_malformed_chunked_body_is_refused_400_and_not_logged(chunks, caplog):
    def reads_its_body(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Length", "0")])
        return []

    with caplog.at_level(logging.WARNING), serving(reads_its_body) as address:
        with socket.create_connection(address, timeout=10) as connection:
            connection.sendall(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
            connection.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
    status, headers, body = head_of(answer)
    assert status == "HTTP/1.1 400 Bad Request"
    assert body.startswith(b"Bad chunked body: ") and body.count(b"\n") == 1
    assert caplog.text == ""


def test_expect_100_continue_is_answered_before_the_body_is_sent():
    recorder = Recorder()
    with serving(recorder) as address:
        with socket.create_connection(address, timeout=10) as connection:
            connection.sendall(b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            assert connection.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
            connection.sendall(b"hello")
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 201 CREATED\r\n")
        # HTTP/1.0 has no 100 (RFC 9110 section 10.1.1): the answer comes once the body is read
        raw = b"PUT /y HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nok"
        assert exchange(address, raw).startswith(b"HTTP/1.1 201 CREATED\r\n")
    assert recorder.bodies == [b"hello", b"ok"]


def test_a_body_the_app_leaves_unread_does_not_reset_the_answer():
    def refuse_unread(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return Response(b"too big", status=413)(environ, start_response)

    megabytes = 8
    with serving(refuse_unread) as address:
        connection = http.client.HTTPConnection(*address, timeout=10)
        connection.request("POST", "/", body=b"x" * (megabytes * 1024 * 1024))
        response = connection.getresponse()
        assert (response.status, response.read()) == (413, b"too big")
        connection.close()


def raises(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    raise RuntimeError("the app broke")


def answers_text(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    start_response("200 OK", [])
    return ["not bytes"]


def answers_a_header_outside_latin1(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    start_response("200 OK", [("X-Amz-Meta-Name", "\u65e5\u672c")])
    return [b"{}"]


@pytest.mark.parametrize(
    "app, logged",
    [
        (raises, "RuntimeError: the app broke"),
        (answers_text, "TypeError"),
        (answers_a_header_outside_latin1, "Unicode"),
    ],
    ids=["raises", "text body", "header outside latin-1"],
)
def test_an_app_that_fails_gets_a_plain_500_logged_with_its_traceback(app, logged, caplog):
    with caplog.at_level(logging.ERROR), serving(app) as address:
        status, headers, body = head_of(exchange(address, REQUESTS["plain"]))
    assert status == "HTTP/1.1 500 Internal Server Error"
    assert (headers["Content-Type"], body) == ("text/plain; charset=utf-8", b"Internal Server Error\n")
    assert "Error on request GET /backup-vaults/" in caplog.text
    assert logged in caplog.text


def test_head_answers_carry_no_body_and_a_missing_length_is_added():
    def streamed(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter([b"one ", b"two"])

    with serving(streamed) as address:
        _, headers, body = head_of(exchange(address, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"))
        assert (headers["Content-Length"], body) == ("7", b"one two")
        _, headers, body = head_of(exchange(address, b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"))
        assert "Content-Length" not in headers and body == b""


def test_requests_are_answered_side_by_side_and_a_stop_lets_them_finish():
    """A held request does not hold up others; closing the server waits for it and its answer is whole."""
    release, arrived = threading.Event(), threading.Event()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ["PATH_INFO"] == "/held":
            arrived.set()
            release.wait(10)
        body = environ["PATH_INFO"].encode() * 1000
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    server = SandboxHTTPServer("127.0.0.1", 0, app)
    serving_thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    serving_thread.start()
    address = ("127.0.0.1", server.server_port)
    held: dict[str, bytes] = {}
    holder = threading.Thread(target=lambda: held.update(answer=exchange(address, b"GET /held HTTP/1.1\r\n\r\n")))
    holder.start()
    assert arrived.wait(10)
    assert head_of(exchange(address, b"GET /other HTTP/1.1\r\n\r\n"))[2] == b"/other" * 1000
    server.shutdown()
    closer = threading.Thread(target=server.server_close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive(), "server_close waits for the request in flight"
    release.set()
    closer.join(10)
    holder.join(10)
    assert head_of(held["answer"])[2] == b"/held" * 1000


def test_a_client_that_leaves_mid_request_leaves_no_trace(caplog, capfd):
    """Before its request line, within its headers, or before the end of its declared body; nothing is
    answered to a body cut short (half-closed), and the app never sees it as if whole."""
    bodies: list[bytes] = []

    def reads_its_body(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        bodies.append(environ["wsgi.input"].read())
        start_response("200 OK", [("Content-Length", "0")])
        return []

    with caplog.at_level(logging.WARNING), serving(reads_its_body) as address:
        for partial in (b"", b"GET / HTTP/1.1\r\nHost: h\r\n", b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"):
            with socket.create_connection(address, timeout=10) as connection:
                connection.sendall(partial)
        with socket.create_connection(address, timeout=10) as connection:
            connection.sendall(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + b"x" * 43)
            connection.shutdown(socket.SHUT_WR)
            assert connection.recv(65536) == b""
        assert head_of(exchange(address, b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nok"))[0] == "HTTP/1.1 200 OK"
    assert bodies == [b"ok"]
    assert caplog.text == ""
    assert capfd.readouterr().err == ""


def test_more_held_requests_than_pooled_threads_hold_up_no_other(monkeypatch):
    """Held requests (a stall) take threads of their own once the pool's are busy: others, such as the
    control API's, are answered at once, and a stop still waits for every one of them."""
    monkeypatch.setattr(http_server, "POOLED_THREADS", 2)
    release = threading.Event()
    held = threading.Semaphore(0)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ["PATH_INFO"] == "/held":
            held.release()
            release.wait(10)
        start_response("200 OK", [])
        return [environ["PATH_INFO"].encode()]

    answers: list[bytes] = []
    with serving(app) as address:
        holders = [
            threading.Thread(target=lambda: answers.append(exchange(address, b"GET /held HTTP/1.1\r\n\r\n")))
            for _ in range(4)
        ]
        for holder in holders:
            holder.start()
        for _ in holders:
            assert held.acquire(timeout=10), "every held request reached the app"
        began = time.monotonic()
        assert head_of(exchange(address, b"GET /other HTTP/1.1\r\n\r\n"))[2] == b"/other"
        assert time.monotonic() - began < 2
        release.set()
        for holder in holders:
            holder.join(10)
    assert [head_of(answer)[2] for answer in answers] == [b"/held"] * 4


def test_a_stop_does_not_wait_for_connections_still_sending_their_request():
    recorder = Recorder()
    server = SandboxHTTPServer("127.0.0.1", 0, recorder)
    serving_thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    serving_thread.start()
    address = ("127.0.0.1", server.server_port)
    idle = [socket.create_connection(address, timeout=10) for _ in range(3)]
    idle[1].sendall(b"GET /half")
    idle[2].sendall(b"GET / HTTP/1.1\r\nHost: h\r\n")
    time.sleep(0.2)
    began = time.monotonic()
    server.shutdown()
    server.server_close()
    assert time.monotonic() - began < 2, "the server does not wait out the read timeout"
    for connection in idle:
        assert connection.recv(100) == b"", "each is closed, unanswered"
        connection.close()
    assert recorder.environs == []


@pytest.mark.parametrize(
    "length, read", [(b"3", b"abc"), (b"003", b"abc"), (b"2 ", b"ab"), (b"0", b"")], ids=["3", "003", "2 ", "0"]
)
def test_the_body_stream_holds_the_declared_length_as_the_gate_reads_it(length, read):
    """The gate reads Content-Length with int(): the server hands over as many bytes (a length that is not
    digits is refused before, see REFUSED)."""
    seen: list[bytes] = []

    def greedy(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        seen.append(environ["wsgi.input"].read())
        start_response("204 No Content", [])
        return []

    with serving(greedy) as address:
        status, headers, body = head_of(
            exchange(address, b"POST / HTTP/1.1\r\nContent-Length: " + length + b"\r\n\r\nabc")
        )
    assert seen == [read]
    assert status == "HTTP/1.1 204 No Content" and "Content-Length" not in headers and body == b""


def request_threads() -> int:
    """The threads the sandbox's servers in this process answer on, pooled or of their own."""
    return sum(thread.name.startswith("sandbox-request") for thread in threading.enumerate())


def test_connections_beyond_the_thread_bound_are_answered_503_at_once(monkeypatch, caplog):
    """Connections that send nothing hold a thread each until the read timeout: past the pool and
    EXTRA_THREADS more, a connection is answered 503 at once and closed, whether it sent a request or not,
    and no thread is started for it; once a thread is free, requests are answered again."""
    monkeypatch.setattr(http_server, "POOLED_THREADS", 2)
    monkeypatch.setattr(http_server, "EXTRA_THREADS", 3)
    recorder = Recorder()
    before = request_threads()
    with caplog.at_level(logging.WARNING), serving(recorder) as address:
        silent = [socket.create_connection(address, timeout=10) for _ in range(5)]
        try:
            for raw in (b"", REQUESTS["plain"], b"GET /half"):
                began = time.monotonic()
                status, headers, body = head_of(exchange(address, raw))
                assert time.monotonic() - began < 2, "refused at once, not after the read timeout"
                assert status == "HTTP/1.1 503 Service Unavailable"
                assert (headers["Content-Type"], headers["Connection"]) == ("text/plain; charset=utf-8", "close")
                assert body == (
                    b"The sandbox is busy: all its 5 request threads are taken (by held requests or connections "
                    b"still sending theirs). Try again later.\n"
                )
            assert request_threads() - before == 5
            silent.pop().close()  # the last came after the pool's two: its thread of its own ends with it
            deadline = time.monotonic() + 10
            while request_threads() - before > 4 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert head_of(exchange(address, REQUESTS["plain"]))[0] == "HTTP/1.1 201 CREATED"
        finally:
            for connection in silent:
                connection.close()
    assert len(recorder.environs) == 1, "a refused request never reaches the app"
    assert caplog.text.count("Every request thread is busy (2 pooled, 3 more)") == 1, "logged once per spell"
