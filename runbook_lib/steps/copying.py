"""Step 04, the copy: one copy job to the destination vault, or, for a type the run copies in two hops
(two_hop_types: where AWS refuses one job across account and Region for it), two hops: across Regions
into the hop vault of the source account, then across accounts from there. Each hop is its own planned
change and its own job. AWS's refusal of one job is recognised (known failure rds-single-hop), kept in
the run's state and explained with the parameter that copies in two hops.
"""

from __future__ import annotations

from typing import Any

from ..aws import clients, clusters, jobs
from ..aws.context import Run, resource_arn, selection
from ..core.changes import Change
from ..core.errors import StepFailed, quoted
from ..core.steps import COPY_TO_TARGET, CREATE_BACKUP
from ..troubleshooting import checks, diagnose, registry
from .encryption import no_recovery_point, source_recovery_point
from .following import Outcome, wait_for


def start_copy(run: Run, hop: str = "copy") -> Change:
    """Plan the copy to the destination vault; a copy this run started is not started again until it failed.

    A copy in two hops (run.copies_in_two_hops) is two of these: `hop` "first" copies the backup across
    Regions into the hop vault of the source account, "second" copies that across accounts into the
    destination vault. The preflight checks run first (before the first hop: they cover both); a
    blocking failure stops the step unless force_copy (for trainers). In a dry run, what an earlier
    step will provide blocks the plan's Apply, not the step.
    """
    kind = "hop" if hop == "first" else "copy"
    earlier = run.state.get(COPY_TO_TARGET, f"{kind}_job_id")
    checked = earlier or hop == "second"
    findings = [] if checked else checks.run_checks(run, as_planned=True)
    pending = checks.require(run, findings)
    # The checks that could not decide, as the copy starts: a copy that then fails keeps them in its failure's
    # record (following.py), and the next one starts only once they rest on something else.
    undecided = [{"check": f.check_id, "fingerprint": f.fingerprint()} for f in findings if f.status == checks.UNKNOWN]
    if hop == "second":  # the first hop's checks covered both hops; the second is the one that crosses accounts
        undecided = run.state.get(COPY_TO_TARGET, "hop_started_undecided", [])
    failed_alike = None if earlier or run.force_copy else _failed_as_undecided(run, kind, findings or None)
    if failed_alike and not run.dry_run:
        raise failed_alike
    if hop == "second":
        point = run.state.get(COPY_TO_TARGET, "hop_recovery_point_arn")
        if point is None and not run.dry_run and earlier is None:
            raise StepFailed(run.step, "the first hop has not completed", "start the first hop and wait for it")
    else:
        point = source_recovery_point(run)
        if point is None and not run.dry_run and earlier is None:
            raise no_recovery_point(run, "source")
    attempt = len(run.state.get(COPY_TO_TARGET, f"failed_{kind}_jobs", []))
    profile, region = run.side("hop" if hop == "second" else "source")
    backup = clients.client(profile, "backup", region)
    role_arn = run.role_arn
    destination = run.hop_vault_arn if hop == "first" else run.target_vault_arn

    def start() -> str:
        chosen = point or (
            run.state.get(COPY_TO_TARGET, "hop_recovery_point_arn") if hop == "second" else source_recovery_point(run)
        )
        try:
            job_id = backup.start_copy_job(**run.copy_request(chosen, attempt, role_arn, hop))["CopyJobId"]
        except backup.exceptions.InvalidParameterValueException as error:
            message = error.response["Error"]["Message"]
            known = registry.match(message, "copy")
            check_id = known.id if known else diagnose.UNKNOWN
            if check_id == "rds-single-hop":
                checks.record_refusal(
                    run, clusters.type_of(run.source_profile, run.source_region, resource_arn(run)), message
                )
            raise StepFailed(
                run.step,
                f"[{check_id}] StartCopyJob refused: {message}",
                checks.run_checks(run, (check_id,))[0].fix if known else "read the message",
            ) from None
        recorded = "hop_source_recovery_point_arn" if hop == "first" else "source_recovery_point_arn"
        run.state.record(
            COPY_TO_TARGET, **{f"{kind}_job_id": job_id, recorded: chosen, f"{kind}_started_undecided": undecided}
        )
        return job_id

    if hop == "second":
        source = point or f"(the first hop's copy in {run.hop_vault}, not made yet)"
    else:
        planned = run.state.planned_effect("backup", resource_arn=resource_arn(run))
        source = point or (
            f"(the recovery point of the backup planned in {CREATE_BACKUP})"
            if planned
            else f"(no recovery point yet: step {CREATE_BACKUP} makes it)"
        )
    what = {
        "first": "first hop: copy across Regions, in the source account: ",
        "second": "second hop: copy across accounts, in the target Region: ",
    }.get(hop, "")
    summary = (
        f"{what}copy {source} to {destination}"
        if earlier is None
        else f"copy job {earlier} was started earlier: waiting for it, not starting another"
    )
    blocked_by = "; ".join(f"step {f.needs_step} makes good [{f.check_id}] {f.finding}" for f in pending)
    if failed_alike:
        blocked_by = "; ".join(part for part in (blocked_by, failed_alike.what) if part)
    if point is None and not blocked_by:
        blocked_by = (
            "the first hop makes the recovery point (planned, not made yet)"
            if hop == "second"
            else f"step {CREATE_BACKUP} makes the recovery point (planned, not made yet)"
        )
    return Change(
        run.step,
        profile,
        region,
        "backup:StartCopyJob",
        destination,
        summary,
        start,
        needed=earlier is None,
        blocked_by=blocked_by,
        precheck=lambda: copy_blocker(run, hop),
        effect={"kind": kind, "recovery_point_arn": point, "destination_vault_arn": destination},
    )


def _failed_as_undecided(run: Run, kind: str, findings: list[checks.Finding] | None) -> StepFailed | None:
    """Why not to start another copy: the last one started while checks could not decide (unknown), it failed as
    one of them feared (its diagnosis names that check), and they still cannot decide on exactly what they read
    then (the same policies, the same statements). Another copy would fail the same way; a rerun copies again
    once something changed. A failure of another cause (an internal error) is tried again as any is.
    `findings` are the checks as the step just read them; None (the second hop runs none) reads them here."""
    failures = run.state.get(COPY_TO_TARGET, f"failed_{kind}_jobs", [])
    last = failures[-1] if failures else {}
    then = last.get("undecided", [])
    if not then or last.get("check") not in {u["check"] for u in then}:
        return None
    read = findings if findings is not None else checks.run_checks(run)
    undecided = [f for f in read if f.status == checks.UNKNOWN]
    if sorted(f.fingerprint() for f in undecided) != sorted(u["fingerprint"] for u in then):
        return None
    first = next(f for f in undecided if f.check_id == last["check"])
    return StepFailed(
        run.step,
        f"[{first.check_id}] {kind} job {last['job_id']} ended {last['state']} "
        f"({quoted(last.get('status_message') or 'no status message')}) after this check could not decide "
        f"(unknown: {first.finding}), and nothing it rests on has changed since: another copy would fail the same way",
        f"change what the statement needs ({first.fix}); a rerun copies once it changed. force_copy: true tries again "
        "anyway; strict_checks: true refuses such a copy before it starts",
    )


def copy_blocker(run: Run, hop: str = "copy") -> str:
    """What stops the copy now, read from AWS as it is (not as planned): '' when nothing does."""
    if hop == "second" and run.state.get(COPY_TO_TARGET, "hop_recovery_point_arn") is None:
        return "the first hop has not completed"
    if hop != "second" and source_recovery_point(run) is None:
        return f"no recovery point yet: step {CREATE_BACKUP} makes it"
    if run.force_copy:
        return ""
    failed = checks.blocking(checks.run_checks(run), run.strict_checks)
    return "; ".join(f"[{f.check_id}] {f.finding}" for f in failed)


def wait_for_copy(run: Run, progress: jobs.Progress | None = None, delay: int = 5) -> Outcome:
    return wait_for(run, "copy", progress, delay)


def hops_line(run: Run) -> str:
    """How the run copies, in one line: one copy job each, or two hops (for how many of the selection) and why."""
    chosen = selection(run)
    hopping = [arn for arn in chosen if run.copies_in_two_hops(arn)]
    if not hopping:
        return "One copy job: nothing more to plan here."
    row = clusters.type_of(run.source_profile, run.source_region, hopping[0])
    assert row is not None  # copies_in_two_hops holds only for a type of the table
    why = (
        f"two_hop_types names {row.name}, for where AWS refuses one copy job across account and Region"
        if row.name in run.two_hop_types
        else f"an {row.name} backup cannot change account and Region in one copy job (capability table, checked "
        f"{row.one_action.checked})"
    )
    if len(chosen) == 1:
        return (
            f"Two hops: {why}. The first hop (above) copies it into {run.hop_vault} of the source account in "
            f"{run.target_region}; the second copies that into {run.target_vault_name}."
        )
    return (
        f"Two hops for {len(hopping)} of the {len(chosen)} resources: {why}. Their first hops (above) copy them "
        f"into {run.hop_vault} of the source account in {run.target_region}; the second hops copy those into "
        f"{run.target_vault_name}."
    )


def copy_jobs_table(run: Run) -> list[dict[str, Any]]:
    """The source account's copy jobs, newest first: in the source Region, and for a copy in two hops in
    the target Region too, where the second hop runs."""
    rows = jobs.jobs_table(run.source_profile, run.source_region, "copy")
    if run.copies_in_two_hops():
        rows += jobs.jobs_table(*run.side("hop"), "copy")
    return sorted(rows, key=lambda row: row["created"], reverse=True)
