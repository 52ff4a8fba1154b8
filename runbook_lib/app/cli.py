"""The `runbook` command line.

`runbook run PARAMS.yaml` runs the step notebooks headless; `runbook sandbox ...` manages the local
AWS sandbox. Every failure ends in one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import logging
import os
import signal
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

from ..core import guard
from ..core.errors import (
    EXIT_INTERRUPTED,
    EXIT_STILL_RUNNING,
    EXIT_TERMINATED,
    ParameterError,
    RunbookError,
    Terminated,
    TimedOut,
    quoted,
)
from ..display.console import messages_on_stdout
from ..troubleshooting import registry

if TYPE_CHECKING:
    from ..core.params import Parameters
    from . import kernel_forks, runner


def _steps(text: str | None) -> tuple[str, ...]:
    """The steps `--steps` names, each known and named once; the default steps when it is not given."""
    from ..core.steps import ALL, DEFAULT

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
    from ..core.steps import notebook_path
    from . import kernel_forks

    steps = _steps(args.steps)
    os.environ.pop(guard.CONFIRMED_ENV, None)  # a command asks for itself: no confirmation left in the shell counts
    # The steps' kernels' imports load (in the fork server) while this process loads the parameters' schema
    # (botocore's) and the runner, and reads the parameters; nothing is asked of AWS before they are valid.
    with kernel_forks.forked([notebook_path(step) for step in steps]) as forks:
        from ..core import params

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
        from ..core.steps import CLEANUP

        result = runner.run(again, args.parameters, folder, (CLEANUP,))
        for line in result.problems:
            print(f"runbook: {line}", file=sys.stderr)
    return result.code


def _planned_then_confirmed(
    values: Parameters, args: argparse.Namespace, steps: tuple[str, ...], forks: kernel_forks.KernelForks | None
) -> runner.RunResult:
    """Real accounts: the same steps as a dry run first, so that the person sees every change and how many
    there are; once confirmed, the run goes on in the same folder."""
    from ..aws import world as worlds
    from ..core.runstate import RunState
    from . import runner

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
    sandbox_commands = _sandbox_commands_module()
    sandbox = sandbox_commands.process.find(Path(os.environ["AWS_CONFIG_FILE"]).parent) if sandbox_commands else None
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
    from ..core import params

    steps = _steps(args.steps)
    with _state_of_its_own(_in_scenario(params.load(*args.parameters))) as values:
        return _check_with(values, steps)


def _check_with(values: Parameters, steps: tuple[str, ...]) -> int:
    from ..aws.context import Run, selection
    from ..core.steps import BEFORE_RESTORE, record
    from ..troubleshooting import checks, preflight

    run = Run("check", values)
    preflight.check(run, ("resource",))
    if len(selection(run)) > 1:  # the run's checks once, each resource's by outcome
        from ..steps import fleet

        common, per = fleet.copy_findings(run, as_planned=False)
        findings = common + [finding for found in per.values() for finding in found]
        _print_table(fleet.checks_rows(run, (common, per)))
    else:
        restores = any(BEFORE_RESTORE in record(step).check_phases for step in steps)
        chosen = checks.BEFORE_COPY + (checks.BEFORE_RESTORE if restores else ())
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
    from ..aws.context import Run
    from ..core import params
    from ..troubleshooting import diagnose

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
    from ..aws.context import Run
    from ..core import params
    from ..troubleshooting import checks, fixes, preflight

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
        from ..aws import world as worlds

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

    from ..aws import clients
    from ..aws import world as worlds
    from ..aws.context import Run, resource_key, selection
    from ..core import params, policy_files

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


FILES_HELP = (
    "flat YAML parameter files, later ones overriding earlier ones, e.g. parameters/sandbox.yaml "
    "parameters/troubleshooting/3-target-vault-policy.yaml"
)


def steps_list() -> str:
    """The steps, each with what it does (from its record), as `runbook run --help` ends."""
    from ..core.steps import DEFAULT, STEPS

    lines = ["steps, in the order a run takes them (* run without --steps):"]
    for step in STEPS:
        mark = "*" if step.name in DEFAULT else " "
        lines += textwrap.wrap(step.does, 100, initial_indent=f"  {mark} {step.name}: ", subsequent_indent=" " * 6)
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runbook", description="Cross-account, cross-Region AWS Backup copy runbook.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="run the step notebooks headless with a parameter file",
        epilog=steps_list(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    _sandbox_commands(commands)
    return parser


SANDBOX_MISSING = (
    "the sandbox is not installed; from the repository's root: pip install ./sandbox "
    "(make demo, make lab and make test install it)"
)


def _sandbox_commands_module() -> ModuleType | None:
    """The sandbox's command line (runbook_sandbox.commands), or None where the sandbox is not installed:
    the runbook alone does not pull moto."""
    try:
        return importlib.import_module("runbook_sandbox.commands")
    except ModuleNotFoundError as missing:
        if missing.name != "runbook_sandbox":
            raise
        return None


def _sandbox_commands(commands: Any) -> None:
    """`runbook sandbox ...`: the sandbox's own commands, or one that says how to install it."""
    sandbox_commands = _sandbox_commands_module()
    if sandbox_commands is not None:
        sandbox_commands.add_commands(commands)
        return
    missing = commands.add_parser(
        "sandbox",
        help="the local AWS sandbox (not installed)",
        description=SANDBOX_MISSING[0].upper() + SANDBOX_MISSING[1:],
    )
    missing.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    missing.set_defaults(handler=_sandbox_missing)


def _sandbox_missing(_args: argparse.Namespace) -> int:
    print(f"runbook: {SANDBOX_MISSING}", file=sys.stderr)
    return 1


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
    except RunbookError as error:
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
