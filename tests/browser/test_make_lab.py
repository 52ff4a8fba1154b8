"""`make lab`, as README tells people to start it: JupyterLab comes up (as root too), and Ctrl-C
ends it and stops the sandbox it started."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from runbook_sandbox import process
from tests.browser.test_jupyterlab import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_make_lab_serves_the_notebooks_and_ctrl_c_stops_its_sandbox(tmp_path):
    port, sandbox = free_port(), tmp_path / "sandbox"
    lab = subprocess.Popen(
        # -o bytecode: the environment make test built is the one to use, whatever changed since.
        [
            "make",
            "-o",
            "bytecode",
            "lab",
            f"LAB_SANDBOX={sandbox}",
            f"LAB_ARGS=--no-browser --port {port} --ServerApp.token=t",
        ],
        cwd=ROOT,
        stdout=(tmp_path / "make-lab.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as a terminal gives it: Ctrl-C reaches all of it
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents?token=t", timeout=2) as answer:
                    listed = answer.read().decode()
                break
            except OSError:
                assert lab.poll() is None, (tmp_path / "make-lab.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "JupyterLab did not come up"
                time.sleep(0.3)
        assert '"00_prerequisites.ipynb"' in listed and '"07_cleanup.ipynb"' in listed
        assert process.find(sandbox) is not None, "make lab starts a sandbox"
    finally:
        for _ in range(2):  # Ctrl-C twice: JupyterLab's own way to stop without asking
            os.killpg(lab.pid, signal.SIGINT)
            time.sleep(0.5)
        lab.wait(timeout=60)
    log = (tmp_path / "make-lab.log").read_text()
    assert f"Sandbox in {sandbox} stopped." in log
    assert process.find(sandbox) is None, "Ctrl-C left the sandbox running"
