"""Step 04, the copy: one copy job to the destination vault, or, for a type the run copies in two hops
(two_hop_types: where AWS refuses one job across account and Region for it), two hops: across Regions
into the hop vault of the source account, then across accounts from there. Each hop is its own planned
change and its own job. AWS's refusal of one job is recognised (known failure rds-single-hop), kept in
the run's state and explained with the parameter that copies in two hops.
"""

from __future__ import annotations

from typing import Any

from ..aws import clusters, jobs
from ..aws.context import Run, selection
from ..core.changes import Change
from . import fleet
from .following import Outcome


def start_copy(run: Run, hop: str = "copy") -> Change:
    """Step 04 of a run of one resource: the one change of fleet.start_copies for its selection of one (its copy,
    or its first hop), or, `hop` "second", of fleet.second_hops (its second hop)."""
    return (fleet.second_hops(run) if hop == "second" else fleet.start_copies(run))[0]


def wait_for_copy(run: Run, progress: jobs.Progress | None = None, delay: int = 5) -> Outcome:
    """Follow the copy of a run of one resource (its first hop, for one copied in two hops)."""
    return fleet.wait(run, "copy", progress, delay)


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
