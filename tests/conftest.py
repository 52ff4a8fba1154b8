"""The runbook's tests: the sandbox's fixtures (runbook_sandbox.testing, loaded as a plugin by pyproject.toml) give one
sandbox server per test process, and every test a fresh scenario; here, what the runbook adds."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import pytest

from runbook_lib.app import kernel_forks, runner
from runbook_lib.aws import clients, facts
from runbook_lib.core.steps import ALL

# As runbook_lib.app.runner does: nbformat without jsonschema's IRI check, which compiles a grammar at import (2.5 s).
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def no_facts_between_tests() -> Iterator[None]:
    """A Run makes its store of facts the active one (aws/facts.py); a test that ends leaves none active,
    so that the next test, in another world, reads AWS."""
    yield
    facts.activate(None)


@pytest.fixture
def own_clients() -> Iterator[None]:
    """The runbook's clients made for this test alone, for a test that throttles them (their adaptive
    rate limiter remembers) or changes their retry settings. Other tests share one set per process."""
    clients.forget()
    yield
    clients.forget()


@pytest.fixture(scope="session")
def process_fork_server() -> Iterator[Callable[[], kernel_forks.KernelForks | None]]:
    """One fork server for the step kernels of every run this test process makes in process (as one sandbox
    serves them all): its imports, a second of CPU, are paid once, not once a run. Started when the first run
    asks for it, and again if it died; it ends with the process's tests."""
    forked = kernel_forks.forked
    notebooks = [runner.notebook_path(step) for step in ALL]
    with ExitStack() as stack:
        held: list[kernel_forks.KernelForks | None] = []

        def serving() -> kernel_forks.KernelForks | None:
            if not held or (held[0] is not None and (held[0].ended or held[0].process.poll() is not None)):
                held[:] = [stack.enter_context(forked(notebooks))]
            return held[0]

        yield serving


@pytest.fixture(autouse=True)
def one_fork_server_per_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run made in process (runner.run, cli.main) forks its kernels from the process's fork server. A test
    whose subject is the fork server itself (marked own_fork_server) and a `runbook` process start their own."""
    if request.node.get_closest_marker("own_fork_server"):
        return
    serving = request.getfixturevalue("process_fork_server")

    @contextmanager
    def forked(_notebooks: object) -> Iterator[kernel_forks.KernelForks | None]:
        yield serving()

    monkeypatch.setattr(kernel_forks, "forked", forked)


# The tests that take longest (seconds of wall time, measured with `pytest -n 4` and `-n 5` on two cores). With
# `make test`'s `--dist load --maxschedchunk 1` each worker starts with two tests from the head of the list:
# the list starts with the longest paired with the shorter of the long ones, so no worker gets two of them.
LONG_TESTS = {
    "tests/browser/test_jupyterlab.py::test_every_notebook": 90,
    "tests/runbook/test_fleet.py::test_a_fleet_run_copies_every_volume": 47,
    "tests/runbook/test_hostile_runs.py::test_two_throttled_runs_at_once": 38,
    "tests/runbook/test_make_demo.py::": 28,
    "tests/runbook/test_reruns.py::test_the_retries_a_run_reports_are_its_own": 27,
    "tests/runbook/test_batch_runs.py::test_run_keeps_a_record": 26,
    "tests/runbook/test_hostile_runs.py::test_a_step_that_hangs": 18,
    "tests/runbook/test_reruns.py::test_a_hang_between_steps": 17,
    "tests/project/test_docs.py::test_make_docs_builds_the_site_strictly": 18,
    "sandbox/tests/test_aws_cli_walkthrough.py::": 16,
    "tests/runbook/test_job_resume.py::test_a_job_slower_than_max_wait_minutes": 16,
    "tests/runbook/test_hostile_runs.py::test_ctrl_c_during_the_copy": 16,
    "tests/runbook/test_notebooks.py::test_notebooks_pass_nbval": 15,
    "tests/runbook/test_guard.py::test_at_a_terminal_a_run_shows_its_plan": 14,
    "tests/runbook/test_reruns.py::test_a_preflight_call_that_hangs": 13,
    "tests/runbook/test_shared_setup.py::test_at_a_terminal": 11,
    "tests/runbook/test_job_resume.py::test_throttled_while_waiting": 10,
    "tests/runbook/test_reruns.py::test_a_wait_ends_at_max_wait_minutes": 9,
    "tests/runbook/test_reruns.py::test_a_rerun_after_the_sandbox_forgot": 9,
    "tests/runbook/test_notebooks.py::test_a_notebook_runs_alone": 9,
    "tests/runbook/test_hostile_runs.py::test_a_wait_survives": 8,
    "tests/runbook/test_fleet.py::test_at_most_max_concurrent_jobs_run_at_once": 8,
    "sandbox/tests/test_output_shapes.py::": 7,
    "tests/runbook/test_shared_setup.py::test_a_dry_run_asks_nothing": 7,
    "tests/runbook/test_guard.py::test_yes_confirms_a_batch_run": 7,
    "tests/browser/test_make_lab.py::": 7,
    "tests/runbook/test_refused_up_front.py::test_an_error_line_quotes_at_most_200_characters": 7,
    "tests/runbook/test_own_values.py::": 6,
    "tests/runbook/test_dry_run.py::": 6,
    "sandbox/tests/test_lifecycle.py::test_start_status_reset_stop": 5,
    "tests/runbook/test_fleet.py::test_a_wait_for_a_free_slot": 5,
}


def seconds(item: pytest.Item) -> int:
    return next((s for prefix, s in LONG_TESTS.items() if item.nodeid.startswith(prefix)), 0)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    long = sorted((i for i in items if seconds(i)), key=seconds, reverse=True)
    head = long[: 2 * workers]
    paired = [item for pair in zip(head, reversed(head)) for item in pair][: len(head)]
    rest = [i for i in items if not seconds(i)]
    items[:] = paired + long[len(head) :] + rest
