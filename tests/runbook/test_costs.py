"""What a run creates and what it costs: the estimate follows the price data, says unknown where the table has
no price, doubles the copies of two hops, and shows in report.html."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path

import pytest

from runbook_lib.app import report, runner
from runbook_lib.core import cost_facts, cost_rows, costs, params, prices
from runbook_lib.core.steps import ALL, AUTOMATE, COPY_TO_TARGET, CREATE_BACKUP, DEFAULT, PREREQUISITES, RESTORE_DRILL
from runbook_lib.display import plans
from runbook_lib.steps.walkthrough import Run, start_backup
from runbook_sandbox.backup.records import BACKUP_SIZE_BYTES
from tests.runbook.test_report import walkthrough_report
from tests.runbook_steps import SANDBOX_PARAMETERS, values

PRICES = json.loads((Path(costs.__file__).parents[1] / "data" / "prices.json").read_text())
SANDBOX = params.load(SANDBOX_PARAMETERS, check_profiles=False)
VOLUME = "arn:aws:ec2:us-east-1:222222222222:volume/vol-0123456789abcdef0"
DATABASE = "arn:aws:rds:us-east-1:222222222222:db:walkthrough-db"
SIZE = BACKUP_SIZE_BYTES / 1024**3  # every sandbox volume is 8 GiB (sandbox/scenarios.py makes them so)
ACCOUNTS = {PREREQUISITES: {"source_account": "222222222222", "target_account": "333333333333"}}


def price(key: str, region: str) -> float:
    """A price as prices.json states it, read here without the module under test."""
    entry = next(e for e in PRICES["prices"] if e["key"] == key)
    return float((entry["regions"].get(region) or entry["regions"]["*"])["value"])


def walkthrough_rows(steps: tuple[str, ...] = ALL) -> list[cost_rows.Cost]:
    state = {**ACCOUNTS, cost_facts.STATE_KEY: {cost_facts.SIZES: {VOLUME: SIZE}}}
    return costs.estimate(cost_facts.facts_from_state(state, SANDBOX, steps))


def by_what(rows: list[cost_rows.Cost]) -> dict[str, cost_rows.Cost]:
    return {row.what: row for row in rows}


def test_the_sandbox_walkthrough_is_priced_from_the_price_data():
    """Each row recomputed from prices.json alone: a wrong multiplier, Region or unit fails here."""
    assert SANDBOX.source_region == "us-east-1" and SANDBOX.target_region == "eu-west-1" and SIZE == 8
    source, target = SANDBOX.source_region, SANDBOX.target_region
    per_job = PRICES["assumptions"]["kms_requests_per_job_and_key"]["value"]
    kms = {region: per_job * price("kms-requests", region) / 10_000 for region in (source, target)}
    runs_a_month = PRICES["hours_per_month"] / 24  # cron(0 5 ? * * *): one backup a day
    expected = {
        "KMS keys the run creates: none (it uses the existing keys of its parameters)": (0.0, cost_rows.MONTH),
        "backup of the EBS volume in the source vault": (8 * price("ebs-snapshot-storage", source), cost_rows.MONTH),
        "KMS requests of the backup jobs": (kms[source], cost_rows.ONCE),
        "cross-Region transfer of the copy of the EBS volume, us-east-1 to eu-west-1": (
            8 * price("cross-region-transfer", source),
            cost_rows.ONCE,
        ),
        "copy of the EBS volume in the destination vault": (8 * price("ebs-snapshot-storage", target), cost_rows.MONTH),
        "KMS requests of the copy jobs (source key)": (kms[source], cost_rows.ONCE),
        "KMS requests of the copy jobs (destination key)": (kms[target], cost_rows.ONCE),
        "restore drill: volume restored from the copy of the EBS volume": (
            8 * price("gp3-volume", target) * PRICES["assumptions"]["drill_hours"]["value"] / PRICES["hours_per_month"],
            cost_rows.ONCE,
        ),
        "backup plan: backups of the EBS volume on cron(0 5 ? * * *), source vault": (
            8 * price("ebs-snapshot-storage", source),
            cost_rows.MONTH,
        ),
        "backup plan: their copies in the destination vault": (
            8 * price("ebs-snapshot-storage", target),
            cost_rows.MONTH,
        ),
        "backup plan: cross-Region transfer of its first copy of the EBS volume": (
            8 * price("cross-region-transfer", source),
            cost_rows.ONCE,
        ),
        "backup plan: KMS requests of its backups and copies (source key)": (
            math.ceil(runs_a_month * per_job * 2) * price("kms-requests", source) / 10_000,
            cost_rows.MONTH,
        ),
        "backup plan: KMS requests of its copies (destination key)": (
            math.ceil(runs_a_month * per_job) * price("kms-requests", target) / 10_000,
            cost_rows.MONTH,
        ),
    }
    rows = by_what(walkthrough_rows())
    assert set(rows) == set(expected)
    for what, (usd, per) in expected.items():
        assert rows[what].usd == pytest.approx(usd, rel=1e-9), what
        assert rows[what].per == per, what
    assert rows["backup of the EBS volume in the source vault"].usd == pytest.approx(0.40)  # 8 GiB x $0.05
    found = cost_rows.totals(list(rows.values()))
    assert found.monthly == pytest.approx(math.fsum(u for u, p in expected.values() if p == cost_rows.MONTH))
    assert found.once == pytest.approx(math.fsum(u for u, p in expected.values() if p == cost_rows.ONCE))
    assert found.unknown == 0

    default = by_what(walkthrough_rows(DEFAULT))  # `runbook run` without --steps: no drill, no plan
    assert not [what for what in default if what.startswith(("restore drill", "backup plan"))]
    assert cost_rows.quantity(default["backup of the EBS volume in the source vault"]) == "up to 8 GiB"


def test_what_cleanup_removes_and_what_it_leaves():
    rows = by_what(walkthrough_rows())
    assert rows["backup of the EBS volume in the source vault"].removed_by_cleanup is True
    assert rows["copy of the EBS volume in the destination vault"].removed_by_cleanup is True
    assert rows["restore drill: volume restored from the copy of the EBS volume"].removed_by_cleanup is True
    assert rows["backup plan: their copies in the destination vault"].removed_by_cleanup is False
    assert rows["KMS requests of the backup jobs"].removed_by_cleanup is None  # a charge made: nothing to remove
    line = cost_rows.cleanup_line(list(rows.values()))
    assert line.startswith("07_cleanup removes: backup of the EBS volume in the source vault; copy of")
    assert "It leaves (until their retention ends): backup plan: backups" in line
    kept = replace(SANDBOX, keep_restored=True)
    drill = by_what(
        costs.estimate(cost_facts.facts_from_state({cost_facts.STATE_KEY: {cost_facts.SIZES: {VOLUME: 8}}}, kept, ALL))
    )
    volume = drill["restore drill: volume restored from the copy of the EBS volume"]
    assert volume.per == cost_rows.MONTH and volume.usd == pytest.approx(8 * price("gp3-volume", "eu-west-1"))
    assert volume.lives == "until cleanup (keep_restored)"


def test_a_region_without_a_price_is_unknown_never_zero():
    facts = cost_facts.RunFacts((cost_facts.resource(VOLUME, 8.0),), "us-east-1", "ap-southeast-2", 35)
    rows = by_what(costs.estimate(facts))
    copy = rows["copy of the EBS volume in the destination vault"]
    assert copy.usd is None and copy.why_unknown == "no price for ap-southeast-2 in the table"
    assert cost_rows.estimate_text(copy) == "unknown: no price for ap-southeast-2 in the table"
    assert rows["KMS requests of the copy jobs (destination key)"].usd is None
    assert rows["backup of the EBS volume in the source vault"].usd == pytest.approx(0.40), "us-east-1 has a price"
    found = cost_rows.totals(list(rows.values()))
    assert found.unknown == 2
    assert "2 row(s) unknown, not in the total" in cost_rows.total_line(list(rows.values()))

    unsized = by_what(
        costs.estimate(replace(facts, target_region="eu-west-1", resources=(cost_facts.resource(VOLUME, None),)))
    )
    backup = unsized["backup of the EBS volume in the source vault"]
    assert backup.usd is None and backup.why_unknown == "the size is not known yet"
    assert cost_rows.quantity(backup) == "unknown GiB"
    cluster = cost_facts.Resource("arn:aws:rds:us-east-1:222222222222:cluster:db", "Aurora", 20.0)
    aurora = by_what(costs.estimate(replace(facts, target_region="eu-west-1", resources=(cluster,))))
    assert aurora["backup of the Aurora DB cluster in the source vault"].usd is None
    assert "no price for Aurora's backups in the table" in cost_rows.text_table(list(aurora.values()))


def test_two_hops_double_the_copy_rows_not_the_transfer():
    one = cost_facts.RunFacts((cost_facts.resource(DATABASE, 20.0),), "us-east-1", "eu-west-1", 35)
    two = replace(one, two_hops=True)

    def copies(facts: cost_facts.RunFacts) -> list[cost_rows.Cost]:
        return [row for row in costs.estimate(facts) if row.step == COPY_TO_TARGET and row.unit == "GiB"]

    stored = {n: [row for row in copies(f) if "vault" in row.what] for n, f in ((1, one), (2, two))}
    assert len(stored[1]) == 1 and len(stored[2]) == 2
    assert [row.what for row in stored[2]] == [
        "first hop: copy of the RDS DB instance in the hop vault (source account)",
        "second hop: copy of the RDS DB instance in the destination vault",
    ]
    assert math.fsum(r.usd or 0 for r in stored[2]) == pytest.approx(2 * math.fsum(r.usd or 0 for r in stored[1]))
    assert stored[2][0].usd == pytest.approx(20 * price("rds-snapshot-storage", "eu-west-1"))
    transfers = {n: [row for row in copies(f) if "transfer" in row.what] for n, f in ((1, one), (2, two))}
    assert len(transfers[1]) == len(transfers[2]) == 1, "the second hop stays in the destination Region"

    run = replace(SANDBOX, resource_name="", resource_arn=DATABASE, two_hop_types=["RDS"])
    assert cost_facts.facts_from_state(ACCOUNTS, run, ALL).two_hops, "the parameters' word, as context.Run decides"
    one_job = replace(run, two_hop_types=[], one_action_types=["RDS"])
    assert not cost_facts.facts_from_state(ACCOUNTS, one_job, ALL).two_hops
    planned = {cost_facts.PLANNED: [{"step": COPY_TO_TARGET, "effect": {"kind": "hop"}}]}
    assert cost_facts.facts_from_state(planned, one_job, ALL).two_hops, "what the dry run planned"
    copied = {COPY_TO_TARGET: {"copy_job_id": "job"}}
    assert not cost_facts.facts_from_state({**ACCOUNTS, **copied}, run, ALL).two_hops, "what the copy step did"


def test_the_plans_schedule_counts_its_runs():
    assert cost_facts.runs_per_day("cron(0 5 ? * * *)") == 1
    assert cost_facts.runs_per_day("cron(0 */6 ? * * *)") == 4
    assert cost_facts.runs_per_day("cron(0 5 ? * MON-FRI *)") == pytest.approx(5 / 7)
    assert cost_facts.runs_per_day("rate(12 hours)") == 2
    assert cost_facts.runs_per_day("cron(0 5 L * ? *)") is None
    weird = replace(SANDBOX, plan_schedule="cron(0 5 L * ? *)")
    rows = costs.estimate(
        cost_facts.facts_from_state({cost_facts.STATE_KEY: {cost_facts.SIZES: {VOLUME: 8}}}, weird, (AUTOMATE,))
    )
    requests = [row for row in rows if row.step == AUTOMATE and row.unit == "requests"]
    assert requests and all(row.usd is None for row in requests)
    assert "plan's schedule is not one the estimate counts" in requests[0].why_unknown


def test_every_price_says_where_it_was_read():
    sources = PRICES["sources"]
    for entry in PRICES["prices"]:
        assert sources[entry["source"]]["url"].startswith("https://aws.amazon.com/"), entry["key"]
        regions = entry["regions"]
        assert {"us-east-1", "eu-west-1"} <= set(regions) or "*" in regions, entry["key"]
        for region, found in regions.items():
            assert found["value"] > 0 and PRICES["currency"] == "USD"
            assert found["status"] in (prices.READ, prices.SECONDARY, prices.ASSUMED), (entry["key"], region)
            if found["status"] == prices.ASSUMED:
                assert found["read"] == "", (entry["key"], region)
            else:
                assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", found["read"]), (entry["key"], region)
            if found["status"] == prices.SECONDARY:
                assert found["seen_in"] in sources, (entry["key"], region)
    lines = cost_rows.sources(walkthrough_rows())
    assert any("assumed: the best-known figure, not read from a source" in line for line in lines)
    assert any("read 2026-12-07" in line for line in lines)


def test_the_dry_run_summary_lines():
    lines = costs.summary_lines({**ACCOUNTS, cost_facts.STATE_KEY: {cost_facts.SIZES: {VOLUME: 8}}}, SANDBOX, DEFAULT)
    assert lines[0].startswith("What this run creates and what it costs (estimate")
    backup = "  - backup of the EBS volume in the source vault, us-east-1: up to 8 GiB, up to $0.40 a month; lives 35"
    assert any(line.startswith(backup) for line in lines)
    assert "  Total (estimate): up to $0.80 a month while it lives, plus up to $0.16 once" in lines
    assert not [line for line in lines if line.lstrip().startswith("[")], "runner's planned lines start with ["


def test_the_report_of_a_sandbox_run_shows_the_estimate(world, tmp_path):
    """Without the sizes the steps note, the rows say unknown; once step 01's plan noted them, they are priced."""
    folder = tmp_path / "run"
    page = walkthrough_report(folder)
    section = page.split("<h2 id='costs'>")[1].split("<h2")[0]
    assert section.startswith("What this run creates and what it costs (estimate)</h2>")
    assert "unknown: the size is not known yet" in section and "up to $0.40" not in section

    run_values = values(folder)
    run = Run(CREATE_BACKUP, run_values)
    shown = plans.step_estimate(run, [start_backup(run)])
    assert shown is not None and "backup of the EBS volume in the source vault  us-east-1  up to 8 GiB" in repr(shown)
    assert "copy" not in repr(shown).split("Total")[0], "step 01's plan shows what step 01 creates"
    assert plans.step_estimate(Run(RESTORE_DRILL, run_values), []) is None, "a plan that makes nothing billed"

    steps = [report.StepRow(step, "ok", 1.5, "") for step in runner.DEFAULT_STEPS]
    page = report.write(folder, steps, params.validate(run_values), runner.summary(folder), {}).read_text()
    section = page.split("<h2 id='costs'>")[1].split("<h2")[0]
    for seen in (
        "backup of the EBS volume in the source vault",
        "up to 8 GiB",
        "up to $0.40 a month",
        "cross-Region transfer of the copy of the EBS volume, us-east-1 to eu-west-1",
        "up to $0.16 once",
        "Total (estimate): up to $0.80 a month while it lives, plus up to $0.16 once",
        "Estimate from AWS list prices",
        "07_cleanup removes: backup of the EBS volume in the source vault; copy of the EBS volume",
        "Source: AWS Backup pricing, aws.amazon.com/backup/pricing/",
        "read 2026-12-07",
    ):
        assert seen in section, seen
    assert "restore drill" not in section, "the drill did not run"
    assert not re.search(r"https?:", page), "addresses without links: the page loads nothing"


def test_a_schedule_step_of_zero_is_not_counted_rather_than_failing():
    assert cost_facts.runs_per_day("cron(0/0 5 ? * * *)") is None
    assert cost_facts.runs_per_day("cron(0 5 ? * * *)") == 1
