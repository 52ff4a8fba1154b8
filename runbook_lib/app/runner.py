"""`runbook run`: every step notebook in order, headless with papermill, into one run folder.

The folder keeps the executed notebooks (the record of the run), state.json, changes.jsonl and
report.html. Each notebook gets only the parameters its step's record lists (core/steps.py), and a
fresh kernel of its own, started while the step before runs (kernels.py). On the first failure the
run stops and says, in one line, which step failed, what failed and the fix. A step that outlives
`step_timeout_minutes` is stopped; Ctrl-C stops the run. Either way report.html says what happened
and the same command with the same --out resumes. One run at a time holds a run folder.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import fcntl
import gc
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

# nbformat validates notebooks with jsonschema, whose optional IRI format check imports rfc3987_syntax, which
# compiles a grammar when imported: 2.5 s of every `runbook run`, for a format no notebook field uses.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

import papermill
from jupyter_core.utils import ensure_event_loop
from nbclient.exceptions import CellTimeoutError
from papermill.exceptions import PapermillExecutionError

from ..aws import clients, facts
from ..aws import world as worlds
from ..aws.context import Run
from ..core import changes, costs, errors, guard, params
from ..core.errors import (
    EXIT_INTERRUPTED,
    EXIT_STILL_RUNNING,
    EXIT_TERMINATED,
    RunFolderInUse,
    Terminated,
    TimedOut,
)
from ..core.params import Parameters
from ..core.runstate import RESUME_ENV, RunState, make_private_folder, private_folder
from ..core.steps import (
    ALL,
    CLEANUP,
    DEFAULT,
    notebook_path,
    record,
)
from ..display.console import TRANSIENT
from ..steps import fleet, results
from ..troubleshooting import preflight
from . import kernel_forks, kernels, report

log = logging.getLogger(__name__)
DEFAULT_STEPS, ALL_STEPS = DEFAULT, ALL
EXIT_FAILED = 1
INTERRUPTED, TERMINATED = "INTERRUPTED", "TERMINATED"  # how a run a signal stopped ends (its report says)
LOCK_FILE = ".runbook.lock"
RETRY_LOG = "retries.jsonl"
KERNEL_LOG = "kernels.log"
RUN_LOG = "runbook.log"
RUNS = Path("runs")  # where run folders go without --out
FACTS_FILE = "facts.jsonl"
PER_RUN_FILES = (FACTS_FILE, RETRY_LOG)
PER_RUN_LOGS = (RUN_LOG, KERNEL_LOG)
# How long a cell's output may trail its end (nbclient waits 4 s, then papermill fails the cell): a fleet's
# plan of hundreds of changes on a busy machine takes longer to arrive whole.
IOPUB_SECONDS = 120


@dataclass
class RunResult:
    """How a run ended: the process exit code, and the lines that say why it stopped (none when it ended well)."""

    code: int
    problems: list[str] = dataclasses.field(default_factory=list)
    folder: Path | None = None
    began: str = ""  # when its steps began (UTC, ISO 8601): what it planned since is its own


@dataclass
class StepOutcome:
    step: str
    ok: bool
    message: str = ""
    still_running: bool = False
    seconds: float = 0.0
    ended: str = ""

    @property
    def label(self) -> str:
        if self.ok:
            return "ok"
        return self.ended or ("STILL RUNNING" if self.still_running else "FAILED")


def declared_parameters(step: str) -> set[str]:
    """The parameters the step's record lists: its notebook's parameters cell declares the same (written from
    the record by tools/notebook_cells.py; tests/project/test_step_records.py fails while they differ)."""
    return set(record(step).parameters)


def given_parameters(step: str, values: Parameters) -> dict[str, Any]:
    """What papermill gives the step's notebook: the run's values of the parameters the step reads."""
    declared = declared_parameters(step)
    return {name: value for name, value in values.as_dict().items() if name in declared}


def failure_line(step: str, error: PapermillExecutionError, record: Path) -> str:
    if errors.named(error.ename) is not None:
        return str(error.evalue)
    return f"step {step} failed: {error.ename}: {error.evalue}. Fix: read the failing cell in {record}"


def _is(name: str, kind: type[errors.RunbookError]) -> bool:
    found = errors.named(name)
    return found is not None and issubclass(found, kind)


def run(
    values: Parameters,
    parameter_files: Sequence[str | Path],
    out: str | Path | None = None,
    steps: tuple[str, ...] = DEFAULT_STEPS,
    forks: kernel_forks.KernelForks | None = None,
    guarded: bool = True,
) -> RunResult:
    """Check what only AWS knows (preflight), then run the steps in the runbook's order. Each step's
    progress and the summary are logged; the result holds the exit code and why the run stopped.
    `values` are the validated parameters read from `parameter_files`; `forks`, the fork server of the
    steps' kernels when the caller started one (one is started here otherwise). `guarded`: a run that applies
    first checks that its accounts are the sandbox's or were confirmed (False: its dry run planned nothing, so
    there is nothing to confirm; each step's kernel still refuses a change no one confirmed)."""
    steps = tuple(step for step in ALL_STEPS if step in steps)
    with contextlib.ExitStack() as stack:
        if forks is None:  # the kernels' imports load while the command loads and the preflight reads AWS
            forks = stack.enter_context(kernel_forks.forked([notebook_path(step) for step in steps]))
        if out:
            folder = Path(out).resolve()
            made = _first_missing(folder)
            private_folder(folder)
        else:
            made = _first_missing(RUNS.resolve())
            folder = _new_run_folder()
            made = made or folder
        try:
            return _run_steps(values, parameter_files, folder, steps, forks, guarded)
        except BaseException:
            # Refused before its first step (the preflight, Ctrl-C meanwhile): no folder of its is left behind.
            if made and not any(notebook_path(step).name in os.listdir(folder) for step in steps):
                shutil.rmtree(made, ignore_errors=True)
            raise


@contextmanager
def _bounded(minutes: float, what: str, resume: str) -> Iterator[None]:
    """Stop the block once `minutes` have passed, as a step is stopped after step_timeout_minutes: the alarm
    interrupts even a call that waits for an answer that never comes (botocore would wait 60 s an attempt,
    15 attempts), and TimedOut names that call. Only the main thread receives signals: elsewhere (a run
    started from another thread) the block runs unbounded, as the steps' own timeout still holds."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(_signal: int, _frame: object) -> None:
        raise _Expired(clients.in_flight())

    previous = signal.signal(signal.SIGALRM, expire)
    started, (earlier, interval) = time.monotonic(), signal.setitimer(signal.ITIMER_REAL, minutes * 60)
    try:
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)  # the alarm may still fire up to here: caught below as well
    except _Expired as expired:
        raise TimedOut(what, minutes, expired.call, resume) from None
    finally:
        signal.signal(signal.SIGALRM, previous)
        if earlier:  # a timer set before this block goes on, less the time the block took
            signal.setitimer(signal.ITIMER_REAL, max(earlier - (time.monotonic() - started), 0.001), interval)


class _Expired(BaseException):
    """The alarm of `_bounded`, raised wherever the block is. Not an Exception: botocore turns any Exception
    raised while it waits for an answer into a connection error, and retries it."""

    def __init__(self, call: str):
        super().__init__(call)
        self.call = call


CONFIRM_HOW = "confirm it at a terminal, or add --yes"


def _confirmed(values: Parameters, steps: tuple[str, ...]) -> None:
    """Before anything else of a run that applies: its accounts are the sandbox's, or the person confirmed
    them (guard.NotConfirmed otherwise, with the world the CLI shows before asking). The answers are the
    run's facts: the preflight reads them from its store, not again from AWS."""
    run = Run(steps[0], values)
    with _environment(**{clients.STEP_ENV: steps[0]}):
        found = run.world(worlds.sides_of(values, steps))
    if not found.confirmed_here():
        raise guard.NotConfirmed(found, "the run (apply: true)", CONFIRM_HOW)


def _first_missing(folder: Path) -> Path | None:
    """The outermost of the folder and its parents that does not exist yet: what making the folder makes."""
    return next((path for path in reversed([folder, *folder.parents]) if not path.exists()), None)


def _run_steps(
    checked: Parameters,
    parameter_files: Sequence[str | Path],
    folder: Path,
    steps: tuple[str, ...],
    forks: kernel_forks.KernelForks | None,
    guarded: bool = True,
) -> RunResult:
    values = dataclasses.replace(checked, run_dir=str(folder))
    resume = f"runbook run {' '.join(str(f) for f in parameter_files)} --out {folder}"
    kernel_environment = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        clients.RETRY_LOG_ENV: str(folder / RETRY_LOG),
        facts.FACTS_ENV: str(folder / FACTS_FILE),
        RESUME_ENV: resume,
    }
    before = facts.active()
    try:
        with _holding(folder):
            _start_afresh(folder)
            result = _run_held(values, folder, steps, forks, resume, kernel_environment, guarded)
    finally:
        facts.activate(before)  # the run's store (in its folder) ends with it: a later command reads AWS
    result.folder = folder
    return result


def _start_afresh(folder: Path) -> None:
    """What one run reads, counts and logs starts with it: the facts AWS answered (a rerun reads AWS as it is
    now, not as the last run found it), the retries, and the logs (the last run's stay beside them, as
    runbook.log.previous and kernels.log.previous). state.json and changes.jsonl stay: they are how a rerun
    resumes, and each step checks them against AWS as it is now."""
    for name in PER_RUN_FILES:
        (folder / name).unlink(missing_ok=True)
    for name in PER_RUN_LOGS:
        if (folder / name).exists():
            os.replace(folder / name, folder / f"{name}.previous")


def _run_held(
    values: Parameters,
    folder: Path,
    steps: tuple[str, ...],
    forks: kernel_forks.KernelForks | None,
    resume: str,
    kernel_environment: dict[str, str],
    guarded: bool = True,
) -> RunResult:
    outcomes: list[StepOutcome] = []
    with (
        _logging_to(folder / RUN_LOG),
        _environment(**kernel_environment),
        kernels.ahead(steps, notebook_path, folder, folder / KERNEL_LOG, forks) as step_kernels,
    ):
        if steps:
            step_kernels.start(steps[0])  # while the preflight reads AWS
        minutes = values.step_timeout()
        with _bounded(minutes, "the preflight (it only reads: nothing was changed)", resume):
            if values.apply and steps and guarded:
                _confirmed(values, steps)
            preflight.before_run(values, steps)
        began = changes.now()
        facts.persist(folder / FACTS_FILE)  # the steps' kernels start from what the preflight read
        running: str | None = None
        step_began = time.monotonic()
        try:
            for step in steps:
                running, step_began = step, time.monotonic()
                since = changes.now()
                outcome = _run_step(step, folder, values, step_kernels)
                running = None
                outcomes.append(outcome)
                if outcome.ok:
                    try:
                        with _bounded(minutes, f"the run after step {step}", resume):
                            outcome.message = results.clause(step, folder, since, values.apply)
                    except TimedOut as stopped:
                        outcomes.append(StepOutcome("(between steps)", False, str(stopped), ended="TIMED OUT"))
                        break
                    log.info("[%s] ok %.1f s: %s", step, outcome.seconds, outcome.message)
                else:
                    log.info("[%s] %s %.1f s", step, outcome.label, outcome.seconds)
                if not outcome.ok:
                    break
        except KeyboardInterrupt as stop:
            _end_interrupted_tasks(stop)
            where = (
                f"during step {running}"
                if running
                else f"after step {outcomes[-1].step}"
                if outcomes
                else "before the first step"
            )
            how, ended = (
                ("stopped (SIGTERM)", TERMINATED)
                if isinstance(stop, Terminated)
                else ("interrupted (Ctrl-C)", INTERRUPTED)
            )
            outcomes.append(
                StepOutcome(
                    running or "(between steps)",
                    False,
                    f"{how} {where}; what it started goes on in AWS",
                    seconds=time.monotonic() - step_began,
                    ended=ended,
                )
            )
        with _bounded(minutes, "writing report.html", resume):
            write_report(folder, outcomes, values)
    retried = retry_counts(folder)
    if retried:
        log.info(
            "AWS asked for %d retries (throttling or transient errors); botocore retried them: see %s",
            sum(retried.values()),
            folder / "report.html",
        )
    failed = [o for o in outcomes if not o.ok]
    if not failed:
        log.info("%s", summary(folder, values.apply, steps, since=began, values=values))
        failed_resources = fleet.failures_line(RunState(folder).load())
        return (
            RunResult(EXIT_FAILED, [failed_resources], began=began) if failed_resources else RunResult(0, began=began)
        )
    if failed[0].ended:
        code = {INTERRUPTED: EXIT_INTERRUPTED, TERMINATED: EXIT_TERMINATED}.get(failed[0].ended, EXIT_STILL_RUNNING)
        return RunResult(code, [f"{failed[0].message}. Resume with: {resume}"])
    if failed[0].still_running:
        return RunResult(EXIT_STILL_RUNNING, [failed[0].message])
    return RunResult(EXIT_FAILED, [failed[0].message])


def _new_run_folder() -> Path:
    """runs/<UTC time>, made here so that two runs started in the same second get a folder each."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    RUNS.mkdir(exist_ok=True)
    for attempt in range(1, 1000):
        folder = RUNS / (stamp if attempt == 1 else f"{stamp}-{attempt}")
        try:
            make_private_folder(folder)
            return folder.resolve()
        except FileExistsError:
            continue
    raise params.ParameterError("--out", f"runs/{stamp}* are all taken; give --out")


def _run_step(step: str, folder: Path, values: Parameters, step_kernels: kernels.StepKernels) -> StepOutcome:
    """One notebook in its own kernel (started while the step before ran), with the step's whole time
    bounded by step_timeout_minutes."""
    record = folder / f"{step}.ipynb"
    given = given_parameters(step, values)
    timeout = values.step_timeout()
    budget = timeout * 60
    started = time.monotonic()
    log.info("[%s] running", step, extra={TRANSIENT: True})
    with _environment(**{clients.STEP_ENV: step}), step_kernels.running(step) as kernel:
        try:
            papermill.execute_notebook(
                str(notebook_path(step)),
                str(record),
                parameters=given,
                kernel_name="python3",
                progress_bar=False,
                cwd=str(folder),
                km=kernel,
                timeout_func=lambda _cell: max(1, int(budget - (time.monotonic() - started))),
                iopub_timeout=IOPUB_SECONDS,
            )
        except PapermillExecutionError as error:
            return StepOutcome(
                step,
                False,
                failure_line(step, error, record),
                still_running=_is(error.ename, errors.StillRunning),
                seconds=time.monotonic() - started,
            )
        except CellTimeoutError:
            return StepOutcome(
                step,
                False,
                f"step {step} was stopped after step_timeout_minutes "
                f"({timeout:g}); what it started goes on in AWS, and its record "
                f"is {record}",
                seconds=time.monotonic() - started,
                ended="TIMED OUT",
            )
    return StepOutcome(step, True, seconds=time.monotonic() - started)


def _end_interrupted_tasks(stop: KeyboardInterrupt) -> None:
    """A step interrupted (Ctrl-C, SIGTERM) leaves nbclient's tasks on this thread's event loop, one of them
    holding the interruption: the next call that runs the loop (ending the step's kernel) would raise it again,
    out of the run, without its report line and before its kernels end. They are cancelled and ended here;
    an interruption other than this one (a second Ctrl-C) goes on as usual."""
    loop = ensure_event_loop()
    for _ in range(10):
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        if not pending:
            return
        for task in pending:
            task.cancel()
        try:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        except KeyboardInterrupt as again:
            if again is not stop:
                raise


@contextmanager
def _holding(folder: Path) -> Iterator[IO[str]]:
    """An exclusive lock on the run folder for as long as this run lives (the OS drops it if the run dies)."""
    handle = (folder / LOCK_FILE).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise RunFolderInUse(str(folder), holder) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    try:
        yield handle
    finally:
        handle.close()


@contextmanager
def _logging_to(path: Path) -> Iterator[None]:
    """What the libraries log while the run drives them (papermill, nbclient, the runbook) goes to the
    run folder; the console keeps the run's own lines."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        # A step stopped by Ctrl-C or its timeout leaves nbclient tasks that failed with the kernel; asyncio
        # reports them when they are collected. Collected here, the report goes to this file, not the console.
        gc.collect()
        root.removeHandler(handler)
        handler.close()


@contextmanager
def _environment(**variables: str) -> Iterator[None]:
    """Variables the step kernels inherit, set for this run and restored after it."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def retry_counts(folder: Path) -> collections.Counter[tuple[str, str, str]]:
    """Attempts AWS refused in a way botocore retries, per (step, operation, error code)."""
    log = folder / RETRY_LOG
    if not log.exists():
        return collections.Counter()
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return collections.Counter((e["step"], e["operation"], e["error"]) for e in entries)


def planned_lines(folder: Path, steps: tuple[str, ...] = ALL_STEPS) -> list[str]:
    """Every change the run planned but did not make, per step, in the order they were planned."""
    lines = []
    for entry in RunState(folder).planned():
        if entry["step"] not in steps:
            continue
        lines.append(f"  [{entry['step']}] {entry['action']} on {entry['target']}: {entry['summary']}")
        if entry.get("blocked_by"):
            lines.append(f"      blocked until {entry['blocked_by']}")
        lines += [f"      note: {note}" for note in entry.get("notes", [])]
    return lines


def awaiting_confirmation(folder: Path, steps: tuple[str, ...], since: str) -> list[dict[str, Any]]:
    """The changes the run that began at `since` planned and did not make because others may use what they take
    back: they wait for take_back_shared (`runbook run --yes`), or their Apply button."""
    return [
        e for e in RunState(folder).planned() if e.get("confirm") and e["step"] in steps and e.get("time", "") >= since
    ]


def summary(
    folder: Path,
    applied: bool = True,
    steps: tuple[str, ...] = ALL_STEPS,
    since: str = "",
    values: Parameters | None = None,
) -> str:
    """What the run leaves: its plans (dry run) or the changes it made since `since`, what cleanup kept,
    and the recovery points it made, marked when a cleanup deleted them."""
    run_state = RunState(folder)
    state = run_state.load()
    entries = run_state.changes.entries()
    lines = [f"Run folder: {folder}"]
    if not applied:
        planned = planned_lines(folder, steps)
        heading = "Planned changes:" if planned else "Nothing to change."
        lines.append(f"Dry run (apply: false): nothing was changed in AWS. {heading}")
        lines += planned
        if values is not None:
            lines += costs.summary_lines(state, values, steps)
    made = [e for e in entries if since and e["time"] >= since and e["step"] in steps]
    if applied and since:
        lines.append("Changes made by this run:" if made else "Nothing needed changing.")
        lines += [f"  [{e['step']}] {e['action']} on {e['target']}: {e['outcome']}" for e in made]
    waiting = awaiting_confirmation(folder, steps, since) if applied and since else []
    if waiting:
        lines.append("Not made until confirmed (take_back_shared: true, or runbook run ... --yes):")
        lines += [f"  [{e['step']}] {e['action']} on {e['target']}: {e['summary']} ({e['confirm']})" for e in waiting]
    if CLEANUP in steps:
        kept = state.get(CLEANUP, {}).get("kept", [])
        lines += ["Kept by cleanup:", *(f"  {reason}" for reason in kept)] if kept else []
    deleted = {
        e["target"] for e in entries if e["action"] == "backup:DeleteRecoveryPoint" and e["outcome"] == "applied"
    }
    finished = fleet.results(state)
    if finished and applied:
        done = sum(1 for row in finished if row["outcome"] == "COMPLETED")
        gone = sum(1 for row in finished for arn in (row["recovery point"], row["copy"]) if arn in deleted)
        note = f"; {gone} of their recovery points deleted by 07_cleanup" if gone else ""
        lines.append(f"Resources: {done} of {len(finished)} copied and verified (one row each: report.html){note}")
    for side in results.SIDES:
        arn = side.recovery_point(state)
        if arn:
            label = f"{side.name.capitalize()} recovery point:"
            kept = "(deleted by 07_cleanup)" if arn in deleted else f"(key {side.key_alias(state) or '?'})"
            lines.append(f"{label:<27} {arn} {kept}")
    return "\n".join(lines)


def write_report(folder: Path, outcomes: list[StepOutcome], values: Parameters) -> Path:
    """report.html of the run (report.py): what it did, the picture of the copy, every change."""
    steps = tuple(o.step for o in outcomes)
    rows = [report.StepRow(o.step, o.label, o.seconds, o.message) for o in outcomes]
    return report.write(
        folder, rows, values, summary(folder, values.apply, steps, values=values), dict(retry_counts(folder))
    )
