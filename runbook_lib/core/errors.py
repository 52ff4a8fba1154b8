"""The runbook's one exception family: each error carries the fields a person needs to act."""

from __future__ import annotations

EXIT_INTERRUPTED = 130  # the exit code of a command stopped by Ctrl-C: 128 + SIGINT, as shells report it
EXIT_TERMINATED = 143  # stopped by SIGTERM (systemd, CI, kill): 128 + SIGTERM, as shells report it
EXIT_STILL_RUNNING = 75  # EX_TEMPFAIL: a job goes on in AWS, or AWS did not answer in time; run again to resume


QUOTED_CHARACTERS = 200  # an error line quotes at most this much of a value (a 10 MB value stays one short line)


def quoted(value: object, limit: int = QUOTED_CHARACTERS) -> str:
    """A value as an error line quotes it: its repr, cut after `limit` characters (saying how long it was)."""
    shown = repr(value)
    return shown if len(shown) <= limit else f"{shown[:limit]}... ({len(shown)} characters)"


class RunbookError(Exception):
    """Base of every error the runbook raises on purpose; str() is one line a person can act on."""


class ParameterError(RunbookError):
    """A parameter is missing, unknown or out of range; raised before any AWS call."""

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"parameter {field}: {problem}")


class StepFailed(RunbookError):
    """A step could not do its job; says which step, what failed and how to fix it."""

    def __init__(self, step: str, what: str, fix: str):
        self.step = step
        self.what = what
        self.fix = fix
        super().__init__(f"step {step} failed: {what.rstrip('.')}. Fix: {fix}")


class StillRunning(StepFailed):
    """A step stopped waiting while its job goes on in AWS; the job stays the run's job."""

    def __init__(self, step: str, what: str, resume: str):
        self.step = step
        self.what = what
        self.fix = resume
        RunbookError.__init__(self, f"step {step} stopped: {what.rstrip('.')}. To resume: {resume}")


class JobFailed(RunbookError):
    """An AWS Backup job ended without completing (FAILED, ABORTED, EXPIRED or PARTIAL)."""

    def __init__(self, kind: str, job_id: str, state: str, status_message: str | None):
        self.kind = kind
        self.job_id = job_id
        self.state = state
        self.status_message = status_message or ""
        super().__init__(f"{kind} job {job_id} ended {state}: {self.status_message or 'no status message'}")


class JobNotFinished(RunbookError):
    """The wait for a job ended (time budget, throttling, network, credentials) while it may still run;
    str() is the whole reason."""

    def __init__(self, kind: str, job_id: str, state: str, reason: str):
        self.kind = kind
        self.job_id = job_id
        self.state = state
        self.reason = reason
        super().__init__(reason)


class JobUnknown(RunbookError):
    """AWS does not know the job (another account, or a sandbox that was reset)."""

    def __init__(self, kind: str, job_id: str, message: str):
        self.kind = kind
        self.job_id = job_id
        self.message = message
        super().__init__(f"{kind} job {job_id} is unknown: {message}")


class RunFolderInUse(RunbookError):
    """Another `runbook run` holds the run folder; two runs writing one folder would mix their records."""

    def __init__(self, folder: str, holder: str):
        self.folder = folder
        self.holder = holder
        super().__init__(
            f"run folder {folder} is in use by another runbook run ({holder}); wait for it to end, "
            "or give another --out"
        )


class RecordsOutdated(RunbookError):
    """A run folder's records (its jobs, recovery points, accounts) no longer hold in AWS as it is now: a
    rerun into it would act on a world that has gone (a sandbox restarted, a recovery point deleted)."""

    def __init__(self, folder: str, what: str, fix: str):
        self.folder = folder
        self.what = what
        self.fix = fix
        super().__init__(f"run folder {folder}: {what.rstrip('.')}; nothing was changed. Fix: {fix}")


class OutOfTime(RunbookError):
    """A time limit passed while an AWS call was being made or retried: the call did not start, or its failed
    attempt was not retried. `call` names it; `refused` is what AWS last answered (an error code) or ''."""

    def __init__(self, call: str, refused: str = ""):
        self.call = call
        self.refused = refused
        answered = f", AWS last answered {refused}" if refused else ""
        super().__init__(f"the time allowed ran out during {call}{answered}")


class TimedOut(RunbookError):
    """A part of a run outlived its time (the preflight, the work between steps): says which, the AWS call it
    was waiting for, and how to resume."""

    def __init__(self, what: str, minutes: float, call: str, resume: str):
        self.what = what
        self.minutes = minutes
        self.call = call
        self.resume = resume
        waiting = f": {call} did not answer" if call else ""
        super().__init__(f"{what} was stopped after step_timeout_minutes ({minutes:g}){waiting}. Resume with: {resume}")


class Terminated(KeyboardInterrupt):
    """SIGTERM (systemd, CI, kill) stops a run the way Ctrl-C does: the run ends its kernels, writes its
    report and says in one line where it stopped."""


def named(name: str) -> type[RunbookError] | None:
    """The runbook's error class of this name, or None. A step's error reaches `runbook run` from its
    kernel as a class name only; this turns it back into the class, so that it is recognised by type."""
    found = globals().get(name)
    return found if isinstance(found, type) and issubclass(found, RunbookError) else None
