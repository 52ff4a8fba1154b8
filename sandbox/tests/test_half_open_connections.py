"""Connections that send nothing, against the sandbox's own process: each holds a thread until the read
timeout, so the threads they take are bounded, those past the bound are answered 503 at once, and the
runbook's clients are answered as soon as a thread is free, while the silent ones are still open."""

from __future__ import annotations

import selectors
import socket
import time
from contextlib import ExitStack

import psutil

from runbook_sandbox.http_server import EXTRA_THREADS, POOLED_THREADS

BOUND = POOLED_THREADS + EXTRA_THREADS
FLOOD = BOUND + 80
BUSY = (
    f"The sandbox is busy: all its {BOUND} request threads are taken (by held requests or connections still "
    "sending theirs). Try again later.\n"
).encode()


def answered_and_closed(connections: list[socket.socket], count: int, seconds: float) -> dict[int, bytes]:
    """What the connections the server answered and closed got, by their index; returns once count of them
    are closed, or after the time."""
    answers: dict[int, bytes] = {}
    closed = 0
    with selectors.DefaultSelector() as selector:
        for index, connection in enumerate(connections):
            selector.register(connection, selectors.EVENT_READ, index)
        deadline = time.monotonic() + seconds
        while closed < count and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(left):
                chunk = connections[key.data].recv(65536)
                answers[key.data] = answers.get(key.data, b"") + chunk
                if not chunk:
                    selector.unregister(key.fileobj)
                    closed += 1
    return answers


def threads_down_to(server: psutil.Process, count: int, seconds: float = 30) -> int:
    deadline = time.monotonic() + seconds
    while server.num_threads() > count and time.monotonic() < deadline:
        time.sleep(0.02)
    return server.num_threads()


def test_silent_connections_take_a_bounded_number_of_threads_and_the_rest_are_answered_503(world, aws):
    host, port = world.endpoint.removeprefix("http://").split(":")
    server = psutil.Process(world.pid)
    before = server.num_threads()
    with ExitStack() as open_connections:
        silent = [
            open_connections.enter_context(socket.create_connection((host, int(port)), timeout=10))
            for _ in range(FLOOD)
        ]
        answers = answered_and_closed(silent, FLOOD - BOUND, seconds=10)
        assert sorted(answers) == list(range(BOUND, FLOOD)), "those past the bound, and only they, are answered"
        for answer in answers.values():
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 503 Service Unavailable\r\n") and body == BUSY
        holding = server.num_threads()
        assert holding <= before + BOUND, "no thread beyond the pool's and EXTRA_THREADS"

        silent[BOUND - 1].close()  # the last to take a thread: one of its own, which ends
        threads_down_to(server, holding - 1, seconds=5)
        assert aws.source("kms").list_keys()["Keys"], "answered while the other silent connections are open"
    assert threads_down_to(server, before + POOLED_THREADS) <= before + POOLED_THREADS
    assert aws.source("kms").list_keys()["Keys"]
    assert "Every request thread is busy" in (world.directory / "server.log").read_text()
