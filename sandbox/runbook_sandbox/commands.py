"""`runbook sandbox ...`: the sandbox's command line. The runbook's `runbook` command adds it when the
sandbox is installed (runbook_lib/app/cli.py); it starts, drives and stops sandboxes (process.py)."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runbook_lib.core.errors import quoted

from . import process
from .accounts import SOURCE, SOURCE_REGION
from .catalog import STORIES

HELP = "the local AWS sandbox"


def _reported(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """The handler, with a sandbox that cannot be started, reached or stopped said in one line (exit 1)."""

    @functools.wraps(handler)
    def reporting(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except process.SandboxError as error:
            print(f"runbook: {error}", file=sys.stderr)
            return 1

    return reporting


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
    if text not in STORIES:
        raise argparse.ArgumentTypeError(f"unknown scenario {quoted(text)}; choose one of {', '.join(sorted(STORIES))}")
    return text


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


def add_commands(commands: Any) -> None:
    """`sandbox` and its actions, added to the runbook's subcommands (argparse's subparsers)."""
    sandbox = commands.add_parser("sandbox", help=HELP).add_subparsers(dest="action", required=True)

    def sub(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        command = sandbox.add_parser(name, help=help_text)
        command.add_argument("--dir", default=process.DEFAULT_DIR, help="the sandbox's folder (default .sandbox)")
        command.set_defaults(handler=_reported(handler))
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
    run_plan = sub("run-plan", _sandbox_run_plan, "start every rule of a backup plan now, as its schedule would")
    run_plan.add_argument("plan", metavar="PLAN_NAME", help="the backup plan's name (or its ID)")
    run_plan.add_argument(
        "--account", default=SOURCE.account_id, help=f"the plan's account (default {SOURCE.account_id}, the source)"
    )
    run_plan.add_argument("--region", default=SOURCE_REGION, help=f"the plan's Region (default {SOURCE_REGION})")
    stats = sub("stats", _sandbox_stats, "count the AWS requests answered, per operation, since the last reset")
    stats.add_argument("--clear", action="store_true", help="start the counts again once printed")
    stats.add_argument("--json", action="store_true", help="print the counts as JSON")
