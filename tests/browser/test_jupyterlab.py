"""The notebooks in JupyterLab, in a real browser (Debian's chromium, driven by Playwright), as a
trainer runs them: Run All on each step in order, Apply where the flow needs it, and what the page
shows checked where a person sees it. Screenshots go to test-artifacts/jupyterlab/."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runbook_lib.core.steps import ALL

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-artifacts" / "jupyterlab"
STEPS = ALL  # in the order a run takes them: the restore drill before the cleanup that deletes its copy
APPLIED_IN = (
    "00_prerequisites",
    "01_create_backup",
    "03_share_source_key",
    "04_copy_to_target",
    "08_restore_drill",
    "09_automate",
    "07_cleanup",
)
# Flags the machine's closed network needs (no background fetches), and none that hide a page error.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
IDLE = "text=Python 3 (ipykernel) | Idle"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def copied_notebooks(folder: Path) -> Path:
    """The notebooks as they are, but for run_dir in their parameters cell: this test's own state folder
    (as a person sets it; unset, it is the repository's runs/adhoc, which this test must not touch)."""
    notebooks = folder / "notebooks"
    notebooks.mkdir()
    for step in STEPS:
        notebook = json.loads((ROOT / "notebooks" / f"{step}.ipynb").read_text())
        for cell in notebook["cells"]:
            if "parameters" in cell["metadata"].get("tags", []):
                source = "".join(cell["source"]).replace("run_dir = ''", f"run_dir = {str(folder / 'state')!r}")
                assert str(folder / "state") in source, step
                cell["source"] = source.splitlines(keepends=True)
        (notebooks / f"{step}.ipynb").write_text(json.dumps(notebook, indent=1))
    return notebooks


@pytest.fixture
def lab(world: Any, tmp_path: Path) -> Iterator[str]:
    """JupyterLab on the copied notebooks, against the test's sandbox; its address with its token."""
    if not CHROMIUM.exists():
        pytest.fail(
            "the browser test needs Debian's chromium: sudo apt-get install chromium (make test does it as root)"
        )
    notebooks = copied_notebooks(tmp_path)
    settings = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
    }
    command = [
        str(Path(sys.executable).parent / "jupyter"),
        "lab",
        str(notebooks),
        "--no-browser",
        f"--port={port}",
        f"--ServerApp.token={token}",
        *(["--allow-root"] if os.geteuid() == 0 else []),
    ]
    with (tmp_path / "jupyterlab.log").open("w") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    address = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{address}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise AssertionError((tmp_path / "jupyterlab.log").read_text()[-3000:]) from None
                time.sleep(0.2)
        yield f"{address}|{token}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def stop_kernels(address: str, token: str) -> None:
    """Close the step's kernel, as a person closing a finished notebook would (each takes memory)."""
    with urllib.request.urlopen(f"{address}/api/kernels?token={token}", timeout=10) as answer:
        kernels = json.load(answer)
    for kernel in kernels:
        request = urllib.request.Request(f"{address}/api/kernels/{kernel['id']}?token={token}", method="DELETE")
        urllib.request.urlopen(request, timeout=10)


def menu(page: Any, name: str, command: str) -> None:
    page.click(f"div.lm-MenuBar-itemLabel:text-is('{name}')")
    page.click(f"li[data-command='{command}']")


def open_next(page: Any, step: str) -> None:
    """As a trainer goes on to the next step in one JupyterLab page: the finished notebook saved and closed,
    the next one opened from the file browser (a page load for each would cost the browser 2 s of CPU)."""
    menu(page, "File", "docmanager:save")
    menu(page, "File", "application:close")
    # A widget that redrew after the save (a job's progress) leaves the notebook changed: JupyterLab asks
    # whether to save it, and the answer is yes.
    page.wait_for_function(
        "() => document.querySelector('.jp-Dialog') || !document.querySelector('.jp-NotebookPanel')", timeout=30_000
    )
    if page.locator(".jp-Dialog").count():
        page.locator(".jp-Dialog").get_by_role("button", name="Save", exact=True).click()
        page.wait_for_function("() => !document.querySelector('.jp-NotebookPanel')", timeout=30_000)
    page.locator(".jp-DirListing-item", has_text=f"{step}.ipynb").dblclick()
    current = page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel")
    current.filter(has_text=f"{step}.ipynb").wait_for(timeout=30_000)
    assert page.locator(".jp-NotebookPanel").count() == 1, "the finished notebook was closed"


def run_all(page: Any) -> None:
    page.wait_for_selector(IDLE, timeout=90_000)
    page.click("div.lm-MenuBar-itemLabel:text-is('Run')")
    page.click("li[data-command='runmenu:run-all']")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-Notebook .jp-InputArea-prompt')]"
        ".every(p => p.textContent.trim() !== '[*]:' && p.textContent.trim() !== '[ ]:')",
        timeout=180_000,
    )
    page.wait_for_selector(IDLE, timeout=90_000)


# What a person would see as broken: error output, a widget that failed, a table cut off or too wide.
PROBLEMS = """() => {
    const found = [];
    const stderr = "application/vnd.jupyter.stderr";
    for (const e of document.querySelectorAll(`.jp-OutputArea-output[data-mime-type='${stderr}']`))
        found.push("error output: " + e.innerText.slice(0, 300));
    for (const e of document.querySelectorAll(".jp-OutputArea-output"))
        if (/Error displaying widget|Failed to (load|render) model/.test(e.innerText))
            found.push("widget: " + e.innerText.slice(0, 200));
    for (const table of document.querySelectorAll(".jp-OutputArea-output table"))
        if (table.getBoundingClientRect().width > table.closest(".jp-OutputArea-output").clientWidth + 1)
            found.push("table wider than its output: " + table.innerText.slice(0, 80));
    for (const td of document.querySelectorAll(".jp-OutputArea-output table td")) {
        if (td.scrollWidth > td.clientWidth + 1) found.push("cut-off cell: " + td.innerText.slice(0, 80));
        if (td.innerText.endsWith("...") && !td.querySelector("[title]"))
            found.push("shortened cell: " + td.innerText);
    }
    return found;
}"""


def problems(page: Any) -> list[str]:
    return list(page.evaluate(PROBLEMS))


def apply_all(page: Any, step: str) -> int:
    """Press every Apply button that can be pressed, in the page's order, until none is left; each
    press must end with its outcome in its own panel."""
    pressed = 0
    while True:
        buttons = page.locator("button.jupyter-button:has-text('Apply'):not([disabled])")
        if buttons.count() == 0:
            return pressed
        outcomes = "[...document.querySelectorAll('.widget-html-content')].map(e => e.innerText)"
        applied = page.evaluate(f"() => {outcomes}.filter(t => t === 'applied').length")
        buttons.first.click()
        page.wait_for_function(
            f"() => {outcomes}.filter(t => t === 'applied').length > {applied} || "
            f"{outcomes}.some(t => t.startsWith('failed'))",
            timeout=60_000,
        )
        failed = [t for t in page.locator(".widget-html-content").all_inner_texts() if t.startswith("failed")]
        assert not failed, f"{step}: {failed}"
        pressed += 1
        assert pressed < 20, f"{step}: Apply buttons do not run out"


def test_every_notebook_in_jupyterlab_runs_clean_and_its_apply_buttons_make_the_changes(lab, aws):
    from playwright.sync_api import sync_playwright

    address, token = lab.split("|")
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    seen: dict[str, list[str]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 3200})
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        try:
            page.goto(f"{address}/lab/tree/{STEPS[0]}.ipynb?token={token}&reset")
            for step in STEPS:
                if step != STEPS[0]:
                    open_next(page, step)
                run_all(page)
                seen[step] = problems(page)
                top = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output").first.inner_text()
                assert top.startswith("The local sandbox: no real AWS account"), f"{step} starts with {top!r}"
                page.screenshot(path=str(SCREENSHOTS / f"{step}-run-all.png"))
                if step in APPLIED_IN:
                    assert apply_all(page, step) > 0, f"{step}: no Apply button to press"
                    page.screenshot(path=str(SCREENSHOTS / f"{step}-after-apply.png"))
                    if step in ("01_create_backup", "04_copy_to_target", "08_restore_drill"):
                        run_all(page)  # the job started by Apply, followed to its end
                        seen[step] += problems(page)
                        page.screenshot(path=str(SCREENSHOTS / f"{step}-followed.png"))
                    if step == "08_restore_drill":  # the verdict and the deletion, planned once the volume is read
                        assert apply_all(page, step) == 2, f"{step}: the verdict and the deletion"
                        run_all(page)
                        seen[step] += problems(page)
                        page.screenshot(path=str(SCREENSHOTS / f"{step}-done.png"))
                text = page.locator(".jp-NotebookPanel:visible .jp-Notebook").inner_text()
                check_step(step, text, aws)
                stop_kernels(address, token)
        finally:
            browser.close()
    assert {step: found for step, found in seen.items() if found} == {}
    assert [url for url in requests if not url.startswith(address)] == [], "the page fetched from outside"


def check_step(step: str, text: str, aws: Any) -> None:
    """What the sandbox and the page say once the step's notebook ran (and its changes were applied)."""
    backup_source, backup_target = aws.source("backup"), aws.target("backup")
    if step == "00_prerequisites":
        assert backup_source.describe_global_settings()["GlobalSettings"]["isCrossAccountBackupEnabled"] == "true"
        assert [v["BackupVaultName"] for v in backup_target.list_backup_vaults()["BackupVaultList"]] == [
            "CABTargetVault"
        ]
        assert text.count("changed") >= 4, "each applied plan says what was done"
    if step == "01_create_backup":
        points = backup_source.list_recovery_points_by_backup_vault(BackupVaultName="SourceVault")["RecoveryPoints"]
        assert [p["Status"] for p in points] == ["COMPLETED"]
    if step == "02_verify_source_key":
        assert "encrypted with alias/cmkSource while its vault uses alias/cmkSourceVault" in text
    if step == "03_share_source_key":
        kms = aws.source("kms")
        key = kms.describe_key(KeyId="alias/cmkSource")["KeyMetadata"]["KeyId"]
        assert "RunbookAllowUseOfTheKey333333333333" in kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    if step == "04_copy_to_target":
        points = backup_target.list_recovery_points_by_backup_vault(BackupVaultName="CABTargetVault")
        assert [p["Status"] for p in points["RecoveryPoints"]] == ["COMPLETED"]
    if step == "05_verify_target_key":
        assert "The copy is encrypted with alias/cmkTarget, the key of vault CABTargetVault." in text
    if step == "06_troubleshoot":
        assert "No failed copy or backup job: nothing to diagnose, nothing to fix." in text
    if step == "08_restore_drill":
        assert "The copy restores: volume vol-" in text and "the volume is deleted." in text
        jobs = backup_target.list_restore_jobs()["RestoreJobs"]
        assert [(job["Status"], job.get("ValidationStatus")) for job in jobs] == [("COMPLETED", "SUCCESSFUL")]
        volume = jobs[0]["CreatedResourceArn"].rsplit("/", 1)[-1]
        left = aws.target("ec2").describe_volumes(Filters=[{"Name": "volume-id", "Values": [volume]}])["Volumes"]
        assert left == [], "the drill leaves no volume behind"
    if step == "09_automate":
        assert [p["BackupPlanName"] for p in backup_source.list_backup_plans()["BackupPlansList"]] == [
            "CrossAccountCopy"
        ]
        assert "source-account.yaml" in text and "failed copies go to arn:aws:sns:us-east-1:" in text
    if step == "07_cleanup":
        assert "Apply in this order" in text
        assert backup_source.list_backup_plans()["BackupPlansList"] == [], "step 09's plan is taken back"
        assert backup_target.list_backup_vaults()["BackupVaultList"] == []
        assert backup_source.list_backup_vaults()["BackupVaultList"] == []
