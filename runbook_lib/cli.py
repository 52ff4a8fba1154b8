"""The `runbook` command line.

`runbook run PARAMS.yaml` runs the step notebooks headless; `runbook sandbox ...` manages the local
AWS sandbox. Every failure ends in one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from .core import guard
from .core.errors import (
    EXIT_INTERRUPTED,
    EXIT_STILL_RUNNING,
    EXIT_TERMINATED,
    ParameterError,
    RunbookError,
    Terminated,
    TimedOut,
    quoted,
)
from .display.console import messages_on_stdout
from .sandbox import process
from .troubleshooting import registry

if TYPE_CHECKING:
    from . import kernel_forks, runner
    from .core.params import Parameters


def _sandbox_start(args: argparse.Namespace) -> int:
    sandbox, started = process.start(args.dir, args.port, args.scenario, args.job_seconds, args.unmarked)
    if not started:
        status = sandbox.status()
        where = f"{sandbox.endpoint} (pid {sandbox.pid}, scenario {status['scenario']})"
        print(f"The sandbox is already running at {where}.")
        if args.unmarked:
            print("It was left as it is: stop it first to start it --unmarked.")
        print(f"Use it with: source {sandbox.env_file}")
        return 0
    print(f"Sandbox started at {sandbox.endpoint} (pid {sandbox.pid}), scenario {args.scenario}.")
    print(f"AWS config:  {sandbox.config_file}")
    print(f"Environment: source {sandbox.env_file}")
    print("Profiles:    " + ", ".join(a.profile for a in process.ACCOUNTS))
    return 0


def _require(args: argparse.Namespace) -> process.Sandbox:
    sandbox = process.find(args.dir)
    if sandbox is None:
        raise process.SandboxError(f"no sandbox is running in {args.dir}; start one with: runbook sandbox start")
    return sandbox


def _sandbox_stop(args: argparse.Namespace) -> int:
    if process.stop(args.dir):
        print(f"Sandbox in {args.dir} stopped.")
    else:
        print(f"No sandbox was running in {args.dir}.")
    return 0


def _sandbox_status(args: argparse.Namespace) -> int:
    sandbox = process.find(args.dir)
    if sandbox is None:
        print(f"No sandbox is running in {args.dir}.")
        return 1
    status = sandbox.status()
    print(f"Running at {sandbox.endpoint} (pid {sandbox.pid}), scenario {status['scenario']}.")
    print("Settings: " + json.dumps(status["settings"]))
    return 0


def _sandbox_reset(args: argparse.Namespace) -> int:
    status = _require(args).reset(args.scenario)
    print(f"Sandbox reset to scenario {status['scenario']}.")
    return 0


def _sandbox_scenarios(args: argparse.Namespace) -> int:
    from .sandbox.catalog import STORIES

    width = max(len(name) for name in STORIES)
    for name, story in STORIES.items():
        print(f"{name:<{width}}  {story}")
    return 0


def _sandbox_configure(args: argparse.Namespace) -> int:
    knobs = {
        "job_seconds": _number("--job-seconds", args.job_seconds),
        "throttle_rate": _number("--throttle-rate", args.throttle_rate),
        "throttle_seed": _number("--throttle-seed", args.throttle_seed, whole=True),
        "fail_next_backup": args.fail_next_backup,
        "fail_next_copy": args.fail_next_copy,
        "stall_service": args.stall_service,
        "stall_operation": args.stall_operation,
        "stall_seconds": _number("--stall-seconds", args.stall_seconds),
        "stall_calls": _number("--stall-calls", args.stall_calls, whole=True),
        "one_action_types": _types(args.one_action_types),
        "refuse_one_action_types": _types(args.refuse_one_action_types),
        "retry_next_copy": _number("--retry-next-copy", args.retry_next_copy),
    }
    status = _require(args).configure(**knobs)
    print("Settings: " + json.dumps(status["settings"]))
    return 0


def _types(text: str | None) -> list[str] | None:
    """Comma-separated resource types (empty for none); the sandbox checks the names."""
    return None if text is None else [name for name in text.split(",") if name]


def _sandbox_identity_policy(args: argparse.Namespace) -> int:
    """Attach an identity policy file to a sandbox account (or take it off): the sandbox then refuses what it
    does not allow, as IAM would; to try the files `runbook permissions` writes."""
    policy = None
    if args.policy is not None:
        try:
            policy = json.loads(Path(args.policy).read_text())
        except (OSError, ValueError) as error:
            raise process.SandboxError(f"--policy {args.policy}: {error}") from None
    _require(args).set_identity_policy(args.account, policy)
    print(f"Account {args.account}: " + ("identity policy attached" if policy is not None else "no identity policy"))
    return 0


def _number(option: str, text: str | None, whole: bool = False) -> float | int | None:
    """The option's number; the sandbox checks its range (nan, inf and negatives included)."""
    if text is None:
        return None
    try:
        return int(text) if whole else float(text)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise process.SandboxError(f"{option} must be {kind}, not {quoted(text)}") from None


def _scenario(text: str) -> str:
    """A scenario name, checked against the catalog (which, unlike the builders, needs no moto)."""
    from .sandbox.catalog import STORIES

    if text not in STORIES:
        raise argparse.ArgumentTypeError(f"unknown scenario {quoted(text)}; choose one of {', '.join(sorted(STORIES))}")
    return text


def _steps(text: str | None) -> tuple[str, ...]:
    """The steps `--steps` names, each known and named once; the default steps when it is not given."""
    from .core.steps import ALL, DEFAULT

    if text is None:
        return DEFAULT
    steps = tuple(step.strip() for step in text.split(","))
    allowed = f"allowed: comma-separated steps from {', '.join(ALL)}"
    for index, step in enumerate(steps):
        if not step:
            raise ParameterError("--steps", f"got {quoted(text)}, with an empty step; {allowed}")
        if step not in ALL:
            raise ParameterError("--steps", f"unknown step {quoted(step)}; {allowed}")
        if step in steps[:index]:
            raise ParameterError("--steps", f"step {quoted(step)} is named twice; allowed: each step once")
    return steps


def _writable_folder(option: str, text: str) -> None:
    """The run folder can be made (or is) a folder this user can write in; nothing is left behind."""
    allowed = "allowed: a folder, new or existing, in a place you can write to"
    if not text.strip() or "\0" in text:
        raise ParameterError(option, f"got {quoted(text)}; {allowed}")
    folder = Path(text)
    try:
        existing = next(p for p in (folder, *folder.parents) if p.exists() or p == Path(p.anchor or "."))
        if not existing.is_dir():
            what = "is" if existing == folder else f"is inside {existing}, which is"
            raise ParameterError(option, f"{text} {what} a file, not a folder; {allowed}")
        os.rmdir(tempfile.mkdtemp(prefix=".runbook-probe-", dir=existing))
    except OSError as error:
        raise ParameterError(option, f"cannot write in {text}: {error.strerror}; {allowed}") from None


def _run(args: argparse.Namespace) -> int:
    from . import kernel_forks
    from .core.steps import notebook_path

    steps = _steps(args.steps)
    os.environ.pop(guard.CONFIRMED_ENV, None)  # a command asks for itself: no confirmation left in the shell counts
    # The steps' kernels' imports load (in the fork server) while this process loads the parameters' schema
    # (botocore's) and the runner, and reads the parameters; nothing is asked of AWS before they are valid.
    with kernel_forks.forked([notebook_path(step) for step in steps]) as forks:
        from .core import params

        values = params.load(*args.parameters)
        if args.yes:
            values = dataclasses.replace(values, take_back_shared=True)
        _writable_folder("--out", args.out if args.out is not None else "runs")
        _in_scenario(values)
        from . import runner

        try:
            result = runner.run(values, args.parameters, args.out, steps, forks)
        except guard.NotConfirmed:
            if not args.yes and not _at_a_terminal():
                raise
            result = _planned_then_confirmed(values, args, steps, forks)
    for line in result.problems:
        print(f"runbook: {line}", file=sys.stderr)
    folder = result.folder
    waiting = runner.awaiting_confirmation(folder, steps, result.began) if folder and result.began else []
    if folder and result.code == 0 and values.apply and _asked(waiting):
        again = dataclasses.replace(values, take_back_shared=True)
        from .core.steps import CLEANUP

        result = runner.run(again, args.parameters, folder, (CLEANUP,))
        for line in result.problems:
            print(f"runbook: {line}", file=sys.stderr)
    return result.code


def _planned_then_confirmed(
    values: Parameters, args: argparse.Namespace, steps: tuple[str, ...], forks: kernel_forks.KernelForks | None
) -> runner.RunResult:
    """Real accounts: the same steps as a dry run first, so that the person sees every change and how many
    there are; once confirmed, the run goes on in the same folder."""
    from . import runner
    from .aws import world as worlds
    from .core.runstate import RunState

    print("Not the local sandbox: the run plans first, as a dry run; nothing changes until you confirm.")
    planned = runner.run(dataclasses.replace(values, apply=False), args.parameters, args.out, steps, forks)
    if planned.code != 0 or planned.folder is None:
        return planned
    count = len([e for e in RunState(planned.folder).planned() if e["step"] in steps])
    if not count:  # nothing to confirm (a rerun that waits for its jobs, a cleanup with nothing left)
        return runner.run(values, args.parameters, str(planned.folder), steps, forks, guarded=False)
    found = worlds.identify(worlds.sides_of(values, steps))
    _confirm(found, f"the run would make {count} change(s) (planned above)", args.yes)
    return runner.run(values, args.parameters, str(planned.folder), steps, forks)


def _at_a_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _confirm(world: guard.World, what: str, yes: bool) -> None:
    """Changes to real accounts go on only once confirmed: at a terminal by the person, once shown who and where;
    elsewhere (CI, a pipe, systemd) by --yes; otherwise NotConfirmed, in one line, before anything changed."""
    if not yes and not _at_a_terminal():
        raise guard.NotConfirmed(world, what, "confirm it at a terminal, or add --yes")
    print(f"Not the local sandbox: {what} in these real AWS accounts:")
    print(world.who_and_where())
    if yes:
        print("Confirmed by --yes.")
    else:
        try:
            answer = input(f"Make the changes in accounts {', '.join(world.accounts)}? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            raise guard.NotConfirmed(world, what, "the answer was not yes")
    os.environ[guard.CONFIRMED_ENV] = ",".join(world.accounts)  # for this process and the steps' kernels


def _asked(waiting: list[dict[str, str]]) -> bool:
    """At a terminal, whether the person confirms the changes that wait for it (others may use what they take
    back); elsewhere (CI, a pipe, systemd) they wait for --yes, and the run's summary said so."""
    if not waiting or not _at_a_terminal():
        return False
    print(f"{len(waiting)} change(s) take back what others may use (listed above, under 'Not made until confirmed').")
    try:
        answer = input("Make them now? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _in_scenario(values: Parameters) -> Parameters:
    """The parameters, once the sandbox they run against (if any) is in the scenario they name."""
    if not values.sandbox_scenario or "AWS_CONFIG_FILE" not in os.environ:
        return values
    sandbox = process.find(Path(os.environ["AWS_CONFIG_FILE"]).parent)
    if sandbox is None:
        return values
    current = sandbox.status()["scenario"]
    if current != values.sandbox_scenario:
        raise ParameterError(
            "sandbox_scenario",
            f"these parameters are for scenario {values.sandbox_scenario}, "
            f"and the sandbox is in {current}; run: runbook sandbox reset --scenario "
            f"{values.sandbox_scenario} --dir {sandbox.directory}",
        )
    return values


def _print_table(rows: list[dict[str, str]]) -> None:
    """Rows as left-aligned columns, whole values (no pandas: a command answers in well under a second)."""
    if not rows:
        print("(none)")
        return
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(row.get(c, ""))) for row in rows)) for c in columns}
    for values in ([*columns], *([str(row.get(c, "")) for c in columns] for row in rows)):
        print("  ".join(f"{v:<{widths[c]}}" for c, v in zip(columns, values)).rstrip())


@contextlib.contextmanager
def _state_of_its_own(values: Parameters) -> Iterator[Parameters]:
    """The parameters with a run folder: the one they name, else an empty one of this command's own. A check
    answers from AWS as it is now: the state another run left (the notebooks' runs/adhoc) never decides it."""
    if values.run_dir:
        yield values
        return
    with tempfile.TemporaryDirectory(prefix="runbook-check-") as folder:
        yield dataclasses.replace(values, run_dir=folder)


def _check(args: argparse.Namespace) -> int:
    from .core import params

    steps = _steps(args.steps)
    with _state_of_its_own(_in_scenario(params.load(*args.parameters))) as values:
        return _check_with(values, steps)


def _check_with(values: Parameters, steps: tuple[str, ...]) -> int:
    from .aws.context import Run
    from .core.steps import RESTORE_DRILL
    from .troubleshooting import checks, preflight

    run = Run("check", values)
    preflight.check(run, ("resource",))
    if run.is_fleet:  # the run's checks once, each resource's by outcome
        from .steps import fleet

        common, per = fleet.copy_findings(run, as_planned=False)
        findings = common + [finding for found in per.values() for finding in found]
        _print_table(fleet.checks_rows(run, (common, per)))
    else:
        chosen = checks.BEFORE_COPY + (checks.BEFORE_RESTORE if RESTORE_DRILL in steps else ())
        findings = checks.run_checks(run, chosen)
        _print_table([f.row() for f in findings])
    failed = checks.blocking(findings, run.strict_checks)
    if failed:
        print(
            f"runbook: {len(failed)} blocking check(s) failed; first: [{failed[0].check_id}] {failed[0].finding}. "
            f"Fix: {failed[0].fix}",
            file=sys.stderr,
        )
        return 1
    undecided = [f for f in findings if f.status == checks.UNKNOWN]
    if undecided:
        print(
            f"runbook: {len(undecided)} check(s) could not decide (unknown), first: [{undecided[0].check_id}]; "
            "they do not block unless strict_checks: true",
            file=sys.stderr,
        )
    return 0


def _diagnose(args: argparse.Namespace) -> int:
    from .aws.context import Run
    from .core import params
    from .troubleshooting import diagnose

    if args.copy_job_id is not None and not params.BY_NAME["copy_job_id"].check(args.copy_job_id):
        raise ParameterError(
            "--copy-job-id", f"got {quoted(args.copy_job_id)}; allowed: {params.BY_NAME['copy_job_id'].allowed}"
        )
    with _state_of_its_own(_in_scenario(params.load(*args.parameters))) as values:
        found = diagnose.failed_jobs(Run("diagnose", values), args.copy_job_id)
    if not found:
        print("No failed backup or copy job in the source account and Region, nor restore job in the target's.")
        return 0
    for diagnosis in found:
        print(f"{diagnosis.kind} job {diagnosis.job_id} {diagnosis.state}: {diagnosis.message}")
        print(f"  known failure: {diagnosis.check_id}: {diagnosis.cause}")
        for name, value in diagnosis.evidence.items():
            print(f"  evidence {name}: {json.dumps(value, default=str) if not isinstance(value, str) else value}")
        print(f"  fix: {diagnosis.fix}")
    return 0


def _fix(args: argparse.Namespace) -> int:
    from .aws.context import Run
    from .core import params
    from .troubleshooting import checks, fixes, preflight

    os.environ.pop(guard.CONFIRMED_ENV, None)  # a command asks for itself: no confirmation left in the shell counts
    run = Run("fix", _in_scenario(params.load(*args.parameters)))
    preflight.check(
        run, ("resource", "reencrypt_key") if args.check_id == "source-key-customer-managed" else ("resource",)
    )
    changes = fixes.plan(run, args.check_id, run.reencrypt_key)
    needed = [change for change in changes if change.needed]
    if run.apply and needed:  # each change with its diff before it is made (a dry run's plan shows it as well)
        for change in needed:
            print(change.describe())
        from .aws import world as worlds

        found = worlds.identify(worlds.sides_of_changes(run, needed))
        if not found.sandbox:
            _confirm(found, f"the fix {args.check_id} would make {len(needed)} change(s) (shown above)", args.yes)
    if not changes:
        finding = checks.run_checks(run, (args.check_id,))[0]
        if finding.status == checks.UNKNOWN:
            print(f"[{args.check_id}] unknown: {finding.finding}. Nothing certain to fix: {finding.fix}")
        elif finding.status == checks.SKIPPED:
            print(f"[{args.check_id}] skipped: {finding.finding}; nothing to fix.")
        else:
            print(f"[{args.check_id}] passes: nothing to fix.")
    run.carry_out(changes)
    return 0


def _permissions(args: argparse.Namespace) -> int:
    """One least-privilege IAM policy per profile for these parameters, scoped with what AWS says of the accounts
    and of the resources' keys where it can be read; what could not be read is said, and left wider."""
    from botocore.exceptions import BotoCoreError, ClientError

    from .aws import clients
    from .aws import world as worlds
    from .aws.context import Run, resource_key, selection
    from .core import params, policy_files

    _writable_folder("--out", args.out)
    values = params.load(*args.parameters)
    accounts: dict[str, str] = {}
    notes = []

    def why(error: Exception) -> str:
        return str(error).splitlines()[0][:200]

    for role, profile, region in worlds.sides_of(values):
        try:
            accounts[role] = clients.account_id(profile, region)
        except (ClientError, BotoCoreError) as error:
            notes.append(f"the {role} account was not read ({why(error)}): its ARNs name any account")
    keys: list[str] = []
    try:
        with _state_of_its_own(values) as own:
            run = Run("permissions", own)
            keys = [key for arn in selection(run) for key in [resource_key(run, arn)] if key]
    except (ClientError, BotoCoreError, RunbookError) as error:
        notes.append(
            f"the resources' keys were not read ({why(error)}): kms:PutKeyPolicy is on every key of "
            f"{values.source_region}"
        )
    try:
        written = policy_files.write(values, Path(args.out), accounts, keys)
    except OSError as error:
        raise ParameterError("--out", f"cannot write the policy files in {args.out}: {error.strerror}") from None
    for path in written:
        policy = json.loads(path.read_text())
        actions = {a for statement in policy["Statement"] for a in statement["Action"]}
        count = len(policy["Statement"])
        print(f"{path}: {len(actions)} actions in {count} statement{'' if count == 1 else 's'}")
    for note in notes:
        print(f"note: {note}")
    return 0


def _sandbox_join(args: argparse.Namespace) -> int:
    _require(args).join(args.account)
    print(f"Account {args.account} is now in the sandbox's organization.")
    return 0


def _sandbox_stats(args: argparse.Namespace) -> int:
    """The AWS requests the sandbox answered per operation, most first, as a table (or JSON)."""
    from datetime import datetime

    sandbox = _require(args)
    counts = sandbox.clear_stats() if args.clear else sandbox.stats()
    if args.json:
        print(json.dumps(counts, indent=2))
        return 0
    since = datetime.fromisoformat(counts["since"]).strftime("%Y-%m-%d %H:%M:%S UTC")
    cleared = "; the counts now start again" if args.clear else ""
    operations = list(counts["operations"].items())  # most requested first, as stats.py reports them
    if not operations:
        print(f"No AWS requests since {since} (the last reset or clear){cleared}.")
        return 0
    print(f"AWS requests since {since} (the last reset or clear){cleared}:")
    names = max(len("operation"), *(len(name) for name, _ in operations))
    calls = max(len("calls"), len(str(counts["total"])))
    rule = f"{'-' * names}  {'-' * calls}"
    print(f"{'operation':<{names}}  {'calls':>{calls}}", rule, sep="\n")
    for name, count in operations:
        print(f"{name:<{names}}  {count:>{calls}}")
    print(rule, f"{'total':<{names}}  {counts['total']:>{calls}}", sep="\n")
    return 0


def _sandbox_run_plan(args: argparse.Namespace) -> int:
    """Start every rule of a backup plan now; the sandbox's refusal (no such plan) is a usage error."""
    sandbox = _require(args)
    try:
        answer = sandbox.run_plan(args.plan, args.account, args.region)
    except process.SandboxRefused as refusal:
        print(f"runbook: {refusal}", file=sys.stderr)
        return 2
    jobs = answer["backup_job_ids"]
    where = f"plan {args.plan} ({answer['plan_id']}) in account {answer['account']}, {answer['region']}"
    if not jobs:
        print(f"The {where} selects no resource: no backup job started.")
        return 0
    print(f"Started {len(jobs)} backup job{'s' if len(jobs) != 1 else ''} of {where}:")
    for job_id in jobs:
        print(job_id)
    return 0


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


FILES_HELP = (
    "flat YAML parameter files, later ones overriding earlier ones, e.g. parameters/sandbox.yaml "
    "parameters/troubleshooting/3-target-vault-policy.yaml"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runbook", description="Cross-account, cross-Region AWS Backup copy runbook.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the step notebooks headless with a parameter file")
    run.add_argument("parameters", nargs="+", help=FILES_HELP)
    run.add_argument("--out", help="run folder (default runs/<timestamp>)")
    run.add_argument("--steps", help="comma-separated steps (default 00 to 05; add 07_cleanup to clean up)")
    run.add_argument(
        "--yes",
        action="store_true",
        help="confirm without asking: the changes on real accounts (not the sandbox), and those that take back "
        "what others may use (take_back_shared: true)",
    )
    run.set_defaults(handler=_run)
    check = commands.add_parser("check", help="preflight: every known copy failure, checked read-only")
    check.add_argument("parameters", nargs="+", help=FILES_HELP)
    check.add_argument(
        "--steps", help="the steps the checks are for (default 00 to 05); with 08_restore_drill, a restore's too"
    )
    check.set_defaults(handler=_check)
    diagnose = commands.add_parser("diagnose", help="explain failed copy (and backup) jobs of the source account")
    diagnose.add_argument("parameters", nargs="+", help=FILES_HELP)
    diagnose.add_argument("--copy-job-id", help="diagnose this copy job only")
    diagnose.set_defaults(handler=_diagnose)
    fix = commands.add_parser("fix", help="plan (and, with apply: true, make) the fix for a failed check")
    fix.add_argument("parameters", nargs="+", help=FILES_HELP)
    fix.add_argument("check_id", choices=registry.FIXABLE, help="the failed check to fix")
    fix.add_argument("--yes", action="store_true", help="on real accounts, make the fix without asking")
    fix.set_defaults(handler=_fix)
    permissions = commands.add_parser(
        "permissions", help="write each profile's least-privilege IAM policy for a parameter file"
    )
    permissions.add_argument("parameters", nargs="+", help=FILES_HELP)
    permissions.add_argument(
        "--out",
        required=True,
        help="folder for source-policy.json, destination-policy.json and management-policy.json",
    )
    permissions.set_defaults(handler=_permissions)
    sandbox = commands.add_parser("sandbox", help="the local AWS sandbox").add_subparsers(dest="action", required=True)

    def sub(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        command = sandbox.add_parser(name, help=help_text)
        command.add_argument("--dir", default=process.DEFAULT_DIR, help="the sandbox's folder (default .sandbox)")
        command.set_defaults(handler=handler)
        return command

    start = sub("start", _sandbox_start, "start a sandbox in the background")
    start.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    start.add_argument(
        "--scenario",
        default="walkthrough",
        type=_scenario,
        help="the world to start from (default walkthrough; list: runbook sandbox scenarios)",
    )
    start.add_argument("--job-seconds", type=_non_negative, default=0.0, help="how long each job runs")
    start.add_argument(
        "--unmarked",
        action="store_true",
        help="answer without the mark that names the sandbox, as real AWS does: the runbook then asks before "
        "every change, as on real accounts (to rehearse or teach the guard)",
    )
    sub("stop", _sandbox_stop, "stop the sandbox")
    sub("status", _sandbox_status, "say whether the sandbox runs, where, and in which scenario")
    reset = sub("reset", _sandbox_reset, "put the sandbox back to a scenario's initial world")
    reset.add_argument(
        "--scenario", type=_scenario, help="default: the current scenario (list: runbook sandbox scenarios)"
    )
    sub("scenarios", _sandbox_scenarios, "list the scenarios")
    join = sub("join", _sandbox_join, "put an account into the organization (as accepting an invitation would)")
    join.add_argument("--account", required=True, help="account ID, e.g. 333333333333")
    configure = sub("configure", _sandbox_configure, "change job duration or inject faults")
    configure.add_argument("--job-seconds", metavar="SECONDS", help="how long each job runs (0 or more)")
    configure.add_argument("--throttle-rate", metavar="FRACTION", help="fraction of AWS calls answered with throttling")
    configure.add_argument("--throttle-seed", metavar="N", help="seed the throttling draws, to repeat a pattern")
    configure.add_argument("--fail-next-backup", metavar="MESSAGE", help="fail the next backup job with MESSAGE")
    configure.add_argument("--fail-next-copy", metavar="MESSAGE", help="fail the next copy job with MESSAGE")
    configure.add_argument("--stall-service", metavar="SERVICE", help="hold requests for this service, e.g. backup")
    configure.add_argument("--stall-operation", metavar="OPERATION", help="hold only this operation, e.g. ListCopyJobs")
    configure.add_argument("--stall-seconds", metavar="SECONDS", help="how long each is held (default 600)")
    configure.add_argument("--stall-calls", metavar="N", help="how many requests to hold (default 1; 0 removes)")
    configure.add_argument(
        "--one-action-types",
        metavar="TYPES",
        help="copy these types in one job even where --refuse-one-action-types names them (comma-separated)",
    )
    configure.add_argument(
        "--refuse-one-action-types",
        metavar="TYPES",
        help="refuse one copy job across account and Region for these types (RDS, Aurora, Neptune, DocumentDB; "
        "comma-separated, empty for none), as AWS did before October 2025",
    )
    configure.add_argument(
        "--retry-next-copy",
        metavar="SECONDS",
        help="keep the next copy job CREATED this long, as AWS's retry phase after a system error (up to 7200)",
    )
    identity = sub(
        "identity-policy", _sandbox_identity_policy, "attach an IAM policy file to an account (the sandbox enforces it)"
    )
    identity.add_argument("--account", required=True, help="account ID, or source, target or management")
    identity.add_argument("--policy", help="the policy file, e.g. policies/source-policy.json; omit to take it off")
    from .sandbox.accounts import SOURCE, SOURCE_REGION

    run_plan = sub("run-plan", _sandbox_run_plan, "start every rule of a backup plan now, as its schedule would")
    run_plan.add_argument("plan", metavar="PLAN_NAME", help="the backup plan's name (or its ID)")
    run_plan.add_argument(
        "--account", default=SOURCE.account_id, help=f"the plan's account (default {SOURCE.account_id}, the source)"
    )
    run_plan.add_argument("--region", default=SOURCE_REGION, help=f"the plan's Region (default {SOURCE_REGION})")
    stats = sub("stats", _sandbox_stats, "count the AWS requests answered, per operation, since the last reset")
    stats.add_argument("--clear", action="store_true", help="start the counts again once printed")
    stats.add_argument("--json", action="store_true", help="print the counts as JSON")
    return parser


def _terminate(_signal: int, _frame: object) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if on_main_thread else None  # ends like Ctrl-C
    try:
        args = build_parser().parse_args(argv)
        with messages_on_stdout():
            return args.handler(args)
    except Terminated:
        print("runbook: stopped (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("runbook: interrupted (Ctrl-C)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except TimedOut as error:
        print(f"runbook: {error}", file=sys.stderr)
        return EXIT_STILL_RUNNING
    except (process.SandboxError, RunbookError) as error:
        print(f"runbook: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        if not isinstance(error, _aws_errors()):
            raise
        print(f"runbook: AWS: {error}", file=sys.stderr)
        return 1
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)


def console() -> NoReturn:
    """The `runbook` command: main(), then the process ends as soon as what it wrote is out. Tearing down
    the modules a command loads (botocore, pandas, papermill, zmq) would add half a second to every
    command; every file it wrote is closed by then, and logging is flushed here."""
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _aws_errors() -> tuple[type[Exception], ...]:
    """botocore's errors, imported only when one may have happened (`--help` needs no botocore)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return BotoCoreError, ClientError


if __name__ == "__main__":
    sys.exit(main())
