"""Measure the sandbox's own HTTP server (http_server.py) against werkzeug's development server, which moto's
server mode runs on, side by side in one run; prints the figures, asserts nothing.

Target: the custom server earns its keep only while it makes a small call clearly cheaper than the stock
server does: a lower round trip and less server CPU per call (http_server.py was written for about 1 ms
that werkzeug spends around the app per small call).

One process builds the app the sandbox serves, as server.serve() builds it (install_extensions, the
walkthrough world, the control API, the gate over SandboxDispatcher(create_app)), and serves that one app
object twice on 127.0.0.1, each server in a thread of its own: with SandboxHTTPServer, and with
werkzeug.serving.make_server(threaded=True, request_handler=MotoRequestHandler), as moto's
ThreadedMotoServer does (its per-request log lines silenced, as the sandbox would have to: the stock
figures are its best case). Clients reach each server through the profiles process.write_profiles writes
for a sandbox (keys of accounts.py, which the gate maps to accounts; no token: only the control API takes
one). Both servers answer each request on a new connection (both send Connection: close).

The call mix is what a run makes many times: sts GetCallerIdentity, kms DescribeKey, backup
DescribeBackupVault (of a vault made first, as a run makes it), ec2 DescribeVolumes by tag. Each round
gives each server CALLS calls cycling the mix, in legs of 20 calls, the servers taking turns leg by leg
(custom, stock, stock, custom, custom, ...): both meet the same load on the machine within some 100 ms, which
whole batches a second or more apart do not on a busy machine. Figures per call:
- round trip: from botocore's before-send to its before-parse (a new connection, the server, the app, the
  answer read whole), without botocore's own work: p10, median, p90 (on a busy machine the p10 is nearest
  what the call costs alone, the p90 mostly other work's); beside it, the whole call and botocore's share;
- server CPU: the process's CPU time (time.process_time, every thread, including request threads that have
  ended) less the client thread's own (time.thread_time on the calling thread), over a leg and until its last
  request's thread is done (the leg's CPU is its own); the other server idles meanwhile (its accept loop wakes
  each 0.5 s). It is what the server and the app cost, whatever the other work on the machine; "around the
  app" is that less the app's own CPU, timed on the request thread by a thin meter in front of the gate
  (which also reads the app's answer whole, for both servers alike);
- ratios stock/custom of the figures over all calls, and per round (of its medians and CPU).
Both servers share the process (and its GIL) with the client, as neither does when the sandbox runs: the
client waits on its socket while the server works, so they hardly contend. A quick check first sends the
same calls (and a refused one, and a control API request) through both and compares the parsed answers.
Run: .venv/bin/python sandbox/benchmarks/http_server.py [ROUNDS [CALLS]]   (defaults 5 rounds, 200 calls)
"""

from __future__ import annotations

import json
import logging
import secrets
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.session
from botocore.exceptions import ClientError
from moto.moto_server.werkzeug_app import MotoRequestHandler
from sandbox_calls import Stopwatch  # this folder's: the same round trip, timed alike
from werkzeug.serving import make_server

from runbook_sandbox import process
from runbook_sandbox.accounts import CONTROL_TOKEN_HEADER, SOURCE, SOURCE_REGION
from runbook_sandbox.control import ControlAPI
from runbook_sandbox.gate import SandboxGate
from runbook_sandbox.http_server import SandboxHTTPServer
from runbook_sandbox.scenarios import SOURCE_VAULT_NAME, reset_world
from runbook_sandbox.server import create_app, install_extensions
from runbook_sandbox.settings import settings
from runbook_sandbox.speedups import SandboxDispatcher

HOST = "127.0.0.1"
SCENARIO = "walkthrough"
LEG_CALLS = 20  # calls in a row to one server: five passes of the mix


class AppMeter:
    """WSGI middleware: the CPU time the app takes on the request's thread, its answer read whole."""

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app
        self.seconds = 0.0
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        began = time.thread_time()
        iterable = self.app(environ, start_response)
        try:
            body = list(iterable)
        finally:
            if hasattr(iterable, "close"):
                iterable.close()
            spent = time.thread_time() - began
            with self.lock:
                self.seconds += spent
        return body


def build_app(token: str, stop: Callable[[], None]) -> SandboxGate:
    """The app server.serve() serves, built by the same calls (serve() builds it inline and binds it)."""
    install_extensions()
    settings.configure(job_seconds=0.0)
    reset_world(SCENARIO)
    return SandboxGate(SandboxDispatcher(create_app), ControlAPI(token, stop))


@dataclass
class Served:
    """One server in its thread, and the clients of the source account that reach it."""

    name: str
    server: Any
    endpoint: str
    clients: dict[str, Any] = field(default_factory=dict)
    round_trips: list[float] = field(default_factory=list)
    whole_calls: list[float] = field(default_factory=list)
    by_operation: dict[str, list[float]] = field(default_factory=dict)
    server_cpu: float = 0.0  # seconds, over all measured calls
    app_cpu: float = 0.0
    calls: int = 0
    retries: int = 0
    rounds: list[list[float]] = field(default_factory=list)  # each round's round trips
    round_cpu: list[float] = field(default_factory=list)  # each round's server CPU, seconds


def serve(name: str, server: Any) -> Served:
    threading.Thread(target=server.serve_forever, name=f"{name}-server", daemon=True).start()
    return Served(name, server, f"http://{HOST}:{server.server_port}")


def make_clients(served: Served, folder: Path, token: str, stopwatch: Stopwatch) -> None:
    """botocore clients of the source account's profile, as a sandbox's aws-config describes it."""
    directory = folder / served.name
    directory.mkdir()
    process.write_profiles(directory, served.endpoint, token)
    session = botocore.session.Session(profile=SOURCE.profile)
    session.set_config_variable("config_file", str(directory / "aws-config"))
    session.set_config_variable("credentials_file", str(directory / "credentials"))
    for service in ("sts", "kms", "backup", "ec2"):
        client = session.create_client(service, region_name=SOURCE_REGION)
        stopwatch.watch(client)
        served.clients[service] = client


def mix(served: Served) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
    sts, kms, backup, ec2 = (served.clients[s] for s in ("sts", "kms", "backup", "ec2"))
    tag = [{"Name": "tag:Name", "Values": ["walkthrough-volume"]}]
    return [
        ("sts:GetCallerIdentity", lambda: sts.get_caller_identity()),
        ("kms:DescribeKey", lambda: kms.describe_key(KeyId="alias/cmkSource")),
        ("backup:DescribeBackupVault", lambda: backup.describe_backup_vault(BackupVaultName=SOURCE_VAULT_NAME)),
        ("ec2:DescribeVolumes (by tag)", lambda: ec2.describe_volumes(Filters=tag)),
    ]


def without_metadata(answer: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in answer.items() if key != "ResponseMetadata"}


def control_status(served: Served, token: str | None) -> tuple[int, Any]:
    headers = {} if token is None else {CONTROL_TOKEN_HEADER: token}
    request = urllib.request.Request(f"{served.endpoint}/_sandbox/status", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def check_same_answers(custom: Served, stock: Served, token: str) -> None:
    """The same calls through both servers: the same parsed answers, the same refusal, the same control API."""
    differences = []
    for (name, through_custom), (_, through_stock) in zip(mix(custom), mix(stock)):
        first, second = through_custom(), through_stock()
        status = (first["ResponseMetadata"]["HTTPStatusCode"], second["ResponseMetadata"]["HTTPStatusCode"])
        marks = tuple(answer["ResponseMetadata"]["HTTPHeaders"].get("x-runbook-sandbox") for answer in (first, second))
        if without_metadata(first) != without_metadata(second) or status[0] != status[1] or marks[0] != marks[1]:
            differences.append(name)
    refusals = []
    for served in (custom, stock):
        try:
            served.clients["kms"].describe_key(KeyId="alias/not-there")
            refusals.append(None)
        except ClientError as error:
            refusals.append((error.response["Error"], error.response["ResponseMetadata"]["HTTPStatusCode"]))
    if refusals[0] != refusals[1] or refusals[0] is None:
        differences.append("kms:DescribeKey of a missing alias (refused)")
    for token_sent in (token, None):
        answers = [control_status(served, token_sent) for served in (custom, stock)]
        if answers[0] != answers[1]:
            differences.append(f"control API status ({'with' if token_sent else 'without'} the token)")
    checked = len(mix(custom)) + 3
    if differences:
        print(f"correctness: the servers' answers DIFFER for {', '.join(differences)}")
    else:
        print(f"correctness: the same parsed answers from both servers ({checked} requests, a refusal among them)")


def request_threads_busy(custom: Served) -> bool:
    """Whether a request is still on a server's thread (answered, its connection not yet closed)."""
    server = custom.server
    if server.pooled_busy or server.own_threads:
        return True
    return any(thread.name.endswith("(process_request_thread)") for thread in threading.enumerate())


def settle(custom: Served) -> None:
    """Wait until both servers are done with every request, so that a leg's CPU is all its own."""
    deadline = time.monotonic() + 5.0
    while request_threads_busy(custom) and time.monotonic() < deadline:
        time.sleep(0.0002)


def run_leg(
    served: Served, calls: int, stopwatch: Stopwatch, meter: AppMeter, custom: Served, measured: bool = True
) -> None:
    """CALLS calls cycling through the mix; the server's CPU is the process's less this thread's, up to the
    moment the last request's thread is done."""
    operations = mix(served)
    app_before = meter.seconds
    process_before, client_before = time.process_time(), time.thread_time()
    for index in range(calls):
        name, call = operations[index % len(operations)]
        began = time.perf_counter()
        answer = call()
        whole = (time.perf_counter() - began) * 1000
        if measured:
            served.round_trips.append(stopwatch.round_trip_ms)
            served.rounds[-1].append(stopwatch.round_trip_ms)
            served.whole_calls.append(whole)
            served.by_operation.setdefault(name, []).append(stopwatch.round_trip_ms)
            served.retries += answer["ResponseMetadata"].get("RetryAttempts", 0)
    settle(custom)
    process_after, client_after = time.process_time(), time.thread_time()
    if not measured:
        return
    server_cpu = (process_after - process_before) - (client_after - client_before)
    served.round_cpu[-1] += server_cpu
    served.server_cpu += server_cpu
    served.app_cpu += meter.seconds - app_before
    served.calls += calls


def run_round(custom: Served, stock: Served, calls: int, stopwatch: Stopwatch, meter: AppMeter, first: int) -> None:
    """CALLS calls per server in legs of LEG_CALLS, the servers taking turns (A B B A A B ...)."""
    for served in (custom, stock):
        served.rounds.append([])
        served.round_cpu.append(0.0)
    legs = [LEG_CALLS] * (calls // LEG_CALLS) + ([calls % LEG_CALLS] if calls % LEG_CALLS else [])
    for index, leg in enumerate(legs):
        pair = (custom, stock) if (first + index) % 2 == 0 else (stock, custom)
        for served in pair:
            run_leg(served, leg, stopwatch, meter, custom)


def p90(figures: list[float]) -> float:
    return statistics.quantiles(figures, n=10)[-1]


def report(custom: Served, stock: Served, rounds: int, calls: int) -> None:
    print(f"\n{rounds} rounds of {calls} calls per server, milliseconds per call:")
    heads = ("round trip: p10", "median", "p90", "whole call", "botocore", "server CPU", "app", "around the app")
    print(
        f"  {'server':<14}{heads[0]:>16}{heads[1]:>8}{heads[2]:>7}{heads[3]:>12}{heads[4]:>10}{heads[5]:>12}"
        f"{heads[6]:>7}{heads[7]:>16}"
    )
    rows = {}
    for served in (custom, stock):
        overhead = [whole - trip for whole, trip in zip(served.whole_calls, served.round_trips)]
        cpu, app = served.server_cpu * 1000 / served.calls, served.app_cpu * 1000 / served.calls
        row = rows[served.name] = (
            statistics.quantiles(served.round_trips, n=10)[0],
            statistics.median(served.round_trips),
            p90(served.round_trips),
            statistics.median(served.whole_calls),
            statistics.median(overhead),
            cpu,
            app,
            cpu - app,
        )
        print(
            f"  {served.name:<14}{row[0]:16.2f}{row[1]:8.2f}{row[2]:7.2f}{row[3]:12.2f}{row[4]:10.2f}{row[5]:12.2f}"
            f"{row[6]:7.2f}{row[7]:16.2f}"
        )
    ratio = [s / c if c else float("nan") for s, c in zip(rows["stock"], rows["custom"])]
    print(
        f"  {'stock/custom':<14}{ratio[0]:15.2f}x{ratio[1]:7.2f}x{ratio[2]:6.2f}x{ratio[3]:11.2f}x{ratio[4]:9.2f}x"
        f"{ratio[5]:11.2f}x{ratio[6]:6.2f}x{ratio[7]:15.2f}x"
    )
    saved = [s - c for s, c in zip(rows["stock"], rows["custom"])]
    print(
        f"  {'stock-custom':<14}{saved[0]:16.2f}{saved[1]:8.2f}{saved[2]:7.2f}{saved[3]:12.2f}{saved[4]:10.2f}"
        f"{saved[5]:12.2f}{saved[6]:7.2f}{saved[7]:16.2f}"
    )
    trip_ratios = [statistics.median(s) / statistics.median(c) for s, c in zip(stock.rounds, custom.rounds)]
    cpu_ratios = [s / c for s, c in zip(stock.round_cpu, custom.round_cpu)]
    print(
        f"  per round, stock/custom: round-trip median {statistics.median(trip_ratios):.2f}x "
        f"(rounds: {', '.join(f'{r:.2f}' for r in trip_ratios)}); server CPU {statistics.median(cpu_ratios):.2f}x "
        f"(rounds: {', '.join(f'{r:.2f}' for r in cpu_ratios)})"
    )
    print("  round-trip median by operation, custom / stock:")
    for name in custom.by_operation:
        first, second = statistics.median(custom.by_operation[name]), statistics.median(stock.by_operation[name])
        print(f"    {name:<30}{first:7.2f} /{second:6.2f}   {second / first:.2f}x")
    if custom.retries or stock.retries:
        print(f"  retries (botocore's, counted in the figures): custom {custom.retries}, stock {stock.retries}")


def main(rounds: int = 5, calls: int = 200) -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request: stock's best case
    token = secrets.token_urlsafe(32)
    holder: dict[str, Served] = {}
    app = build_app(token, lambda: [threading.Thread(target=s.server.shutdown).start() for s in holder.values()])
    meter = AppMeter(app)
    holder["custom"] = serve("custom", SandboxHTTPServer(HOST, 0, meter))
    holder["stock"] = serve("stock", make_server(HOST, 0, meter, threaded=True, request_handler=MotoRequestHandler))
    custom, stock = holder["custom"], holder["stock"]
    stopwatch = Stopwatch()
    try:
        with tempfile.TemporaryDirectory(prefix="http-server-bench-") as folder:
            for served in (custom, stock):
                make_clients(served, Path(folder), token, stopwatch)
            # The vault a run makes first; the mix describes it.
            vault_key = custom.clients["kms"].describe_key(KeyId="alias/cmkSourceVault")["KeyMetadata"]["Arn"]
            custom.clients["backup"].create_backup_vault(BackupVaultName=SOURCE_VAULT_NAME, EncryptionKeyArn=vault_key)
            check_same_answers(custom, stock, token)
            for served in (custom, stock):  # models loaded, caches filled, threads started
                run_leg(served, 40, stopwatch, meter, custom, measured=False)
            print(f"threads in the process: {threading.active_count()} (client, accept loops, pooled threads)")
            for index in range(rounds):
                run_round(custom, stock, calls, stopwatch, meter, first=index)
            report(custom, stock, rounds, calls)
    finally:
        for served in (custom, stock):
            served.server.shutdown()
            served.server.server_close()


if __name__ == "__main__":
    main(*(int(argument) for argument in sys.argv[1:3]))
