"""Tables and evidence as a person reads them: whole values, status in colour, the deciding statement marked."""

from __future__ import annotations

import re
from types import SimpleNamespace

from runbook_lib.display import widgets
from runbook_lib.display.tables import Evidence, Table, short_arn
from runbook_lib.troubleshooting.checks import Finding

LONG_FIX = (
    "run step 00 to create it under a customer managed key, or set target_vault_name to a vault of the "
    "target account whose key is customer managed"
)
KEY = "arn:aws:kms:us-east-1:222222222222:key/807e171e-5af1-48d5-93fb-aa48a196ad3e"


def findings() -> list[Finding]:
    return [
        Finding("pass", "both accounts are in organization o-8ibz6th189"),
        Finding("fail", "vault CABTargetVault does not exist in the target account", LONG_FIX),
        Finding("unknown", "cannot decide whether statement Sid1 applies to account 333333333333", "read it"),
    ]


def test_check_tables_show_every_value_whole_left_aligned_and_status_in_colour():
    table = widgets.checks_frame(findings())
    page = table._repr_html_()
    assert LONG_FIX in page.replace("\n", " ") and "…" not in page, "no cell is cut"
    assert re.search(r"td \{\s*text-align: left;", page) and "white-space: pre-wrap" in page
    colours = dict(re.findall(r"#(T_\w+_row\d+_col1)\s*\{\s*background:\s*(#\w+)", page))
    assert sorted(colours.values()) == sorted(["#dafbe1", "#ffebe9", "#fff8c5"]), page
    assert LONG_FIX in repr(table), "the text form holds whole values too"


def test_an_arn_is_shortened_with_the_whole_arn_one_hover_away_and_whole_in_text():
    table = Table([{"key": KEY, "alias": "alias/cmkSource"}])
    page = table._repr_html_()
    assert f"title='{KEY}'" in page and ">…key/807e171e-5af1-48d5-93fb-aa48a196ad3e<" in page
    assert KEY in repr(table)
    assert short_arn("not-an-arn") == "not-an-arn"


def test_an_empty_table_says_what_it_means():
    assert repr(widgets.diagnoses_frame([])) == "No failed copy or backup job: nothing to diagnose, nothing to fix."
    assert "nothing to diagnose" in widgets.diagnoses_frame([])._repr_html_()
    assert repr(widgets.plans.Plan(None, [])) == "Nothing to change."  # type: ignore[arg-type]


def test_evidence_marks_the_statement_that_denies():
    deny = {"Sid": "DenySource", "Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::222222222222:root"}}
    allow = {"Sid": "Owner", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::333333333333:root"}}
    diagnosis = SimpleNamespace(
        job_id="39B6C7DE",
        check_id="target-vault-policy",
        evidence={
            "finding now": "fail: statement DenySource denies account 222222222222",
            "denying statements": [deny],
            "vault access policy": {"Version": "2012-10-17", "Statement": [allow, deny]},
        },
    )
    shown = Evidence([diagnosis])
    text = repr(shown).splitlines()
    marked = [line for line in text if line.startswith(">> ")]
    assert len(marked) == 1 and '"Sid": "DenySource"' in marked[0] and marked[0].startswith(">> denies: ")
    assert any('"Sid": "Owner"' in line and line.startswith("   ") for line in text)
    page = shown._repr_html_()
    assert page.count("◀ this statement denies") == 1
    policy = page.split("<b>vault access policy</b>")[1]
    assert policy.index("◀ this statement denies") < policy.index("DenySource") and "Owner" in policy
    assert repr(Evidence([])) == "No failed job: no evidence to show."


def test_a_policy_with_one_statement_object_still_has_its_deny_marked():
    deny = {"Sid": "DenyAll", "Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*"}
    diagnosis = SimpleNamespace(
        job_id="1",
        check_id="source-key-shared",
        evidence={"denying statements": [deny], "key policy": {"Statement": deny}},
    )
    marked = [line for line in repr(Evidence([diagnosis])).splitlines() if line.startswith(">> denies: ")]
    assert len(marked) == 1 and '"Sid": "DenyAll"' in marked[0]


def test_an_error_that_says_nothing_is_named_by_its_type():
    assert widgets.plans.first_line(ValueError("")) == "ValueError"
    assert widgets.plans.first_line(RuntimeError("one\ntwo")) == "one"


def test_a_table_of_thousands_shows_its_first_rows_and_says_how_many_it_holds():
    rows = [
        {"recovery point": f"arn:aws:ec2:us-east-1::snapshot/snap-{n:05d}", "status": "COMPLETED"} for n in range(2500)
    ]
    table = Table(rows)
    page, text = table._repr_html_(), repr(table)
    assert page.count("<tr>") == 201, "a header and the first 200 rows"
    assert "snap-00199" in page and "snap-00200" not in page
    assert "Showing the first 200 of 2,500 rows; all of them are in this table&#x27;s .frame." in page
    assert text.splitlines()[-1] == "Showing the first 200 of 2,500 rows; all of them are in this table's .frame."
    assert len(table.frame) == 2500 and len(text.splitlines()) == 202
    assert "Showing" not in repr(Table(rows[:200]))
