"""The sandbox server: moto's server app, the services it extends, and a gate in front of both, served
over HTTP by http_server.py.

The gate (gate.py) does what AWS does before any service sees a request; requests under /_sandbox/
are the control API (control.py). Run as `python -m runbook_sandbox.server` with the control
token in RUNBOOK_SANDBOX_TOKEN; `runbook sandbox start` does that for you.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from types import ModuleType
from typing import Any

from moto.moto_server.werkzeug_app import create_backend_app

from . import speedups
from .backup import urls as backup_urls
from .control import TOKEN_VARIABLE, ControlAPI
from .ec2 import models as ec2_models
from .ec2 import urls as ec2_urls
from .events import models as events_models
from .gate import SandboxGate, on_service_error
from .http_server import SandboxHTTPServer
from .kms import models as kms_models
from .kms import urls as kms_urls
from .scenarios import SCENARIOS, reset_world
from .service_app import ServiceApp
from .settings import SettingsError, settings, validate
from .speedups import SandboxDispatcher

# Services whose moto handlers the sandbox replaces: service name -> the sandbox's urls module.
EXTENDED_SERVICES: dict[str, ModuleType] = {"backup": backup_urls, "ec2": ec2_urls, "kms": kms_urls}


def create_app(service: str) -> Any:
    """The app that answers a service: the sandbox's (service_app.py) where it extends the service,
    else moto's Flask app.

    Whatever escapes a handler is answered in the service's protocol, never as an HTML page.
    """
    extension = EXTENDED_SERVICES.get(service)
    if extension is not None:
        return ServiceApp(service, extension.url_paths)
    app = create_backend_app(service)  # type: ignore[arg-type]
    app.register_error_handler(Exception, on_service_error)
    return app


def install_extensions() -> None:
    speedups.install()
    kms_models.install()
    ec2_models.install()
    events_models.install()


def serve(host: str, port: int, scenario: str, job_seconds: float, ready_file: str | None, token: str) -> None:
    """Build the world, bind, announce the port in ready_file, serve until told to stop.

    Requests in flight are finished before the process exits, so the reply to a shutdown request
    (and to any request in flight) is sent whole; held (stalled) requests are released first.
    """
    install_extensions()
    settings.configure(job_seconds=job_seconds)
    reset_world(scenario)
    holder: dict[str, Any] = {}
    control = ControlAPI(token, lambda: holder["server"].shutdown())
    gate = SandboxGate(SandboxDispatcher(create_app), control)
    server = SandboxHTTPServer(host, port, gate)
    holder["server"] = server

    def stop(*_: Any) -> None:
        settings.release_stalls()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    if ready_file:
        temporary = f"{ready_file}.tmp"
        with open(temporary, "w") as handle:
            json.dump({"pid": os.getpid(), "host": host, "port": server.server_port}, handle)
        os.replace(temporary, ready_file)
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
    token = os.environ.pop(TOKEN_VARIABLE, "")
    if not token:
        parser.error(f"{TOKEN_VARIABLE} must hold the control API's token (runbook sandbox start sets it)")
    try:
        validate({"job_seconds": args.job_seconds})
    except SettingsError as error:
        parser.error(str(error))
    serve(args.host, args.port, args.scenario, args.job_seconds, args.ready_file, token)


if __name__ == "__main__":
    main()
