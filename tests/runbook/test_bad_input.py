"""A careless user's parameter files and options: each is refused with one line naming the field,
before any AWS change (the sandbox is compared before and after) and before any notebook starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from runbook_lib.app import cli
from runbook_lib.app.runner import ALL_STEPS, DEFAULT_STEPS
from runbook_lib.core import param_values, params
from runbook_lib.core.errors import ParameterError
from runbook_lib.steps.walkthrough import Run, prerequisites
from runbook_lib.troubleshooting import preflight

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = Path(sys.executable).parent / "runbook"
SANDBOX_TEXT = (ROOT / "parameters" / "sandbox.yaml").read_text()
SANDBOX = yaml.safe_load(SANDBOX_TEXT)
OTHER_ACCOUNTS_VOLUME = "arn:aws:ec2:us-east-1:333333333333:volume/vol-0123456789abcdef0"
ARABIC_INDIC_ACCOUNT = "arn:aws:ec2:us-east-1:٢٢٢٢٢٢٢٢٢٢٢٢:volume/vol-0123456789abcdef0"


def changed(**overrides: Any) -> str:
    """parameters/sandbox.yaml with these values, as YAML text."""
    return yaml.safe_dump({**SANDBOX, **overrides}, allow_unicode=True)


def tags(**extra: Any) -> str:
    return changed(recovery_point_tags={"Project": "cross-account-backup", **extra})


# (case id, parameter file text (or bytes), field named, words in the line)
BAD_FILES: list[tuple[str, str | bytes, str, str]] = [
    (
        "vault-name-trailing-newline",
        changed(target_vault_name="CABTargetVault\n"),
        "target_vault_name",
        "got 'CABTargetVault\\n'; allowed: 2-50 letters",
    ),
    (
        "source-vault-name-trailing-newline",
        changed(source_vault_name="SourceVault\n"),
        "source_vault_name",
        "allowed: 2-50 letters",
    ),
    (
        "arabic-indic-digits-in-arn",
        changed(resource_arn=ARABIC_INDIC_ACCOUNT),
        "resource_arn",
        "allowed: empty, or an EBS volume",
    ),
    (
        "key-alias-trailing-newline",
        changed(target_vault_key="alias/cmkTarget\n"),
        "target_vault_key",
        "allowed: alias/NAME",
    ),
    (
        "role-trailing-newline",
        changed(iam_role_name="AWSBackupDefaultServiceRole\n"),
        "iam_role_name",
        "an IAM role name",
    ),
    ("region-trailing-newline", changed(source_region="us-east-1\n"), "source_region", "an AWS Region name"),
    (
        "resource-name-with-newline",
        changed(resource_name="walkthrough-volume\n"),
        "resource_name",
        "no control characters",
    ),
    (
        "unknown-resource-name",
        changed(resource_name="no-such-volume"),
        "resource_name",
        "no EBS volume, RDS DB instance, DB cluster or EFS file system is named 'no-such-volume' in the source account "
        "222222222222",
    ),
    (
        "resource-name-with-invisible-space",
        changed(resource_name="walkthrough-volume\u200b"),
        "resource_name",
        "no EBS volume, RDS DB instance, DB cluster or EFS file system is named 'walkthrough-volume\\u200b'",
    ),
    (
        "unknown-resource-name-dry-run",
        changed(resource_name="no-such-volume", apply=False),
        "resource_name",
        "no EBS volume, RDS DB instance, DB cluster or EFS file system is named",
    ),
    (
        "another-accounts-volume",
        changed(resource_arn=OTHER_ACCOUNTS_VOLUME),
        "resource_arn",
        "is in account 333333333333; allowed: a resource of the source account 222222222222",
    ),
    (
        "missing-volume",
        changed(resource_arn="arn:aws:ec2:us-east-1:222222222222:volume/vol-0123456789abcdef0"),
        "resource_arn",
        "no EBS volume vol-0123456789abcdef0 in the source account",
    ),
    (
        "missing-database",
        changed(resource_arn="arn:aws:rds:us-east-1:222222222222:db:no-such-db"),
        "resource_arn",
        "no RDS DB instance no-such-db",
    ),
    (
        "rds-two-hops-at-once",
        changed(
            resource_arn="arn:aws:rds:us-east-1:222222222222:db:walkthrough-db",
            resource_name="",
            two_hop_types=["RDS"],
            two_hops=False,
        ),
        "two_hops",
        "is false while two_hop_types names RDS and the resource goes to another account (333333333333) and "
        "another Region (eu-west-1)",
    ),
    (
        "missing-source-vault-key",
        changed(source_vault_key="alias/nope"),
        "source_vault_key",
        "no KMS key alias/nope in the source account 222222222222",
    ),
    (
        "missing-target-vault-key",
        changed(target_vault_key="alias/nope", apply=False),
        "target_vault_key",
        "no KMS key alias/nope in the target account 333333333333",
    ),
    ("missing-role", changed(iam_role_name="NoSuchRole"), "iam_role_name", "no IAM role NoSuchRole"),
    ("duplicate-key", SANDBOX_TEXT + "target_vault_name: OtherVault\n", "target_vault_name", "given twice in"),
    (
        "duplicate-tag-key",
        SANDBOX_TEXT.replace("  Runbook: sandbox-walkthrough\n", "  Runbook: sandbox-walkthrough\n  Runbook: again\n"),
        "recovery_point_tags",
        "has key 'Runbook' twice",
    ),
    ("tag-with-nul", tags(Owner="a\0b"), "recovery_point_tags", "has '\\x00' (U+0000)"),
    ("tag-with-bel", tags(Owner="ring\a"), "recovery_point_tags", "has '\\x07' (U+0007)"),
    ("tag-with-script", tags(Owner="<script>alert(1)</script>"), "recovery_point_tags", "has '<' (U+003C)"),
    ("tag-key-aws-prefix", tags(**{"AWS:owner": "me"}), "recovery_point_tags", "starts with aws:"),
    ("tag-key-too-long", tags(**{"k" * 129: "v"}), "recovery_point_tags", "has 129 characters"),
    ("tag-value-too-long", tags(Owner="v" * 257), "recovery_point_tags", "has 257 characters"),
    (
        "too-many-tags",
        changed(recovery_point_tags={f"k{i}": "v" for i in range(51)}),
        "recovery_point_tags",
        "got 51 tags",
    ),
    (
        "tag-value-a-number",
        SANDBOX_TEXT.replace("  Runbook: sandbox-walkthrough\n", "  Version: 2\n"),
        "recovery_point_tags",
        "is not text",
    ),
    ("yaml-syntax-error", SANDBOX_TEXT.replace("apply: true", "apply: [true"), "file", "line "),
    ("yaml-bad-indent", "apply: true\n  poll_seconds: 1\n", "file", "line 2, column 15"),
    ("raw-bell-byte", "apply: true\a\n", "file", "line 1, column 12"),
    ("not-utf8", b"apply: \xff\n", "file", "cannot read"),
    ("empty-file", "", "file", "holds no parameters"),
    ("only-comments", "# my parameters\n", "file", "holds no parameters"),
    ("empty-mapping", "{}\n", "file", "holds no parameters"),
    ("a-list", "- apply: true\n", "file", "must be a flat mapping"),
    ("unknown-parameter", changed(colour="blue"), "colour", "unknown parameter"),
    ("number-as-parameter-name", SANDBOX_TEXT + "1: one\n", "1", "unknown parameter"),
    ("days-as-text", changed(delete_after_days="35"), "delete_after_days", "a whole number"),
    ("apply-as-text", changed(apply="yes"), "apply", "true or false"),
    (
        "days-yaml11-octal",
        SANDBOX_TEXT.replace("delete_after_days: 35", "delete_after_days: 010"),
        "delete_after_days",
        "got '010'; allowed: a whole number",
    ),
    (
        "days-yaml11-hex",
        SANDBOX_TEXT.replace("delete_after_days: 35", "delete_after_days: 0x23"),
        "delete_after_days",
        "got '0x23'",
    ),
    (
        "days-yaml11-sexagesimal",
        SANDBOX_TEXT.replace("delete_after_days: 35", "delete_after_days: 1:05"),
        "delete_after_days",
        "got '1:05'",
    ),
    (
        "days-yaml11-underscore",
        SANDBOX_TEXT.replace("delete_after_days: 35", "delete_after_days: 3_5"),
        "delete_after_days",
        "got '3_5'",
    ),
    (
        "apply-yaml11-yes",
        SANDBOX_TEXT.replace("apply: true", "apply: yes"),
        "apply",
        "got 'yes'; allowed: true or false",
    ),
    ("unknown-profile", changed(management_profile="prod-management"), "management_profile", "no profile"),
    ("copy-job-id-with-space", changed(copy_job_id="job 1"), "copy_job_id", "a copy job ID"),
]


@pytest.fixture(scope="module")
def walkthrough(sandbox):
    """One fresh walkthrough world for the module: no case may change it."""
    sandbox.configure(job_seconds=0, throttle_rate=0)
    sandbox.reset("walkthrough")
    return sandbox


def refused(capsys: pytest.CaptureFixture[str], argv: list[str], field: str) -> str:
    """Run the CLI in-process: exit 1, nothing on stdout, one line on stderr naming the field."""
    assert cli.main(argv) == 1
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"runbook: parameter {field}: "), lines[0]
    return lines[0]


@pytest.mark.parametrize("text, field, words", [case[1:] for case in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_a_bad_parameter_file_is_one_line_and_changes_nothing(walkthrough, tmp_path, capsys, text, field, words):
    path = tmp_path / "params.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    out = tmp_path / "run"
    before = walkthrough.state()
    line = refused(capsys, ["run", str(path), "--out", str(out)], field)
    assert words in line
    assert not out.exists(), "no run folder, so no notebook started"
    assert walkthrough.state() == before


@pytest.mark.parametrize(
    "extra, field, words",
    [
        (["--steps", ""], "--steps", "got '', with an empty step"),
        (["--steps", "00_prerequisites,,01_create_backup"], "--steps", "with an empty step"),
        (["--steps", "01_backup"], "--steps", "unknown step '01_backup'; allowed: comma-separated steps from 00_"),
        (["--steps", "00_prerequisites,00_prerequisites"], "--steps", "named twice"),
        (["--out", ""], "--out", "got ''"),
        (["--out", "/sys/runbook-out"], "--out", "cannot write in /sys/runbook-out"),
    ],
    ids=["steps-empty", "steps-empty-item", "steps-unknown", "steps-twice", "out-empty", "out-unwritable"],
)
def test_bad_options_are_one_line_each(walkthrough, tmp_path, capsys, extra, field, words):
    before = walkthrough.state()
    line = refused(capsys, ["run", str(ROOT / "parameters" / "sandbox.yaml"), *extra], field)
    assert words in line
    assert walkthrough.state() == before


def test_out_naming_a_file_or_inside_one_is_refused(walkthrough, tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    sandbox_file = str(ROOT / "parameters" / "sandbox.yaml")
    assert "is a file, not a folder" in refused(capsys, ["run", sandbox_file, "--out", str(a_file)], "--out")
    inside = refused(capsys, ["run", sandbox_file, "--out", str(a_file / "run")], "--out")
    assert f"is inside {a_file}, which is a file" in inside
    assert a_file.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_missing_parameter_file_and_bad_copy_job_id(walkthrough, tmp_path, capsys):
    missing = refused(capsys, ["check", str(tmp_path / "nope.yaml")], "file")
    assert missing.endswith("nope.yaml: No such file or directory")
    sandbox_file = str(ROOT / "parameters" / "sandbox.yaml")
    assert "printable ASCII" in refused(capsys, ["diagnose", sandbox_file, "--copy-job-id", "a\nb"], "--copy-job-id")


def test_check_and_fix_name_a_missing_resource_or_key(walkthrough, tmp_path, capsys):
    before = walkthrough.state()
    bad_resource = tmp_path / "resource.yaml"
    bad_resource.write_text(changed(resource_name="no-such-volume", run_dir=str(tmp_path / "run")))
    assert "no EBS volume, RDS DB instance, DB cluster or EFS file system is named" in refused(
        capsys, ["check", str(bad_resource)], "resource_name"
    )
    bad_key = tmp_path / "key.yaml"
    bad_key.write_text(changed(reencrypt_key="alias/nope", run_dir=str(tmp_path / "run")))
    assert "no KMS key alias/nope" in refused(
        capsys, ["fix", str(bad_key), "source-key-customer-managed"], "reencrypt_key"
    )
    assert walkthrough.state() == before


def test_troubleshooting_does_not_need_the_reencrypt_key_until_its_fix_is_asked_for(walkthrough, tmp_path):
    values = params.validate({**SANDBOX, "reencrypt_key": "alias/nope", "run_dir": str(tmp_path)})
    preflight.before_run(values, ("06_troubleshoot",))


def test_at_least_thirty_bad_files_are_covered():
    assert len(BAD_FILES) >= 30


@pytest.mark.parametrize(
    "args, field",
    [
        (["--out", "{file}"], "--out"),
        (["--steps", ""], "--steps"),
    ],
    ids=["out-is-a-file", "steps-empty"],
)
def test_through_a_real_process_there_is_no_traceback(walkthrough, tmp_path, args, field):
    bad = tmp_path / "params.yaml"
    bad.write_text(changed(resource_name="no-such-volume"))
    a_file = tmp_path / "notes.txt"
    a_file.write_text("")
    argv = [arg.format(file=a_file) for arg in args]
    for parameter_file, expected in ((ROOT / "parameters" / "sandbox.yaml", field), (bad, "resource_name")):
        done = subprocess.run(
            [str(RUNBOOK), "run", str(parameter_file), *(argv if expected == field else [])],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith(f"runbook: parameter {expected}: ")
        assert done.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "params.yaml"]


def test_step_00_alone_names_a_missing_resource_before_planning(walkthrough, tmp_path):
    before = walkthrough.state()
    values = params.validate({"run_dir": str(tmp_path), "apply": True, "resource_name": "no-such-volume"})
    with pytest.raises(ParameterError) as missing:
        prerequisites(Run("00_prerequisites", values))
    assert missing.value.field == "resource_name"
    assert not (tmp_path / "state.json").exists()
    assert walkthrough.state() == before


@pytest.mark.parametrize("apply", [True, False])
def test_good_parameters_pass_the_preflight_of_every_step(walkthrough, tmp_path, apply):
    """A fresh world has no vaults: the preflight looks for none, so a dry run is not refused either."""
    before = walkthrough.state()
    values = params.validate({**SANDBOX, "run_dir": str(tmp_path), "apply": apply})
    preflight.before_run(values, ALL_STEPS)
    database = params.validate(
        {
            **SANDBOX,
            "resource_arn": "arn:aws:rds:us-east-1:222222222222:db:walkthrough-db",
            "resource_name": "",
            "run_dir": str(tmp_path),
            "force_copy": True,
        }
    )
    preflight.before_run(database, DEFAULT_STEPS)
    assert walkthrough.state() == before


@pytest.mark.parametrize(
    "tag_set",
    [
        {"Projet été": "sauvegarde à froid", "日本語": "値", "Owner": "team@example.com", "Path": "a/b:c=d+e-f_g.h"},
        {"k" * 128: "v" * 256},
        {"Empty": ""},
        {f"k{i}": "v" for i in range(50)},
    ],
    ids=["letters-of-any-script", "longest", "empty-value", "fifty"],
)
def test_tags_aws_backup_takes_are_taken(tag_set):
    assert param_values.tags_problem(tag_set) == ""


@pytest.mark.parametrize(
    "steps, expected",
    [
        ("00_prerequisites, 01_create_backup", ("00_prerequisites", "01_create_backup")),
        (None, DEFAULT_STEPS),
    ],
)
def test_steps_that_are_good_are_taken(steps, expected):
    assert cli._steps(steps) == expected


def test_a_run_the_preflight_refuses_leaves_no_folder_it_made_and_keeps_one_it_found(walkthrough, tmp_path, capsys):
    """The run folder is made before the preflight (the first kernel starts meanwhile); refused, the run
    takes back what it made, up to the outermost missing parent, and leaves a folder that was there."""
    bad = tmp_path / "params.yaml"
    bad.write_text(changed(resource_name="no-such-volume"))
    nested = tmp_path / "new" / "deeper" / "run"
    refused(capsys, ["run", str(bad), "--out", str(nested)], "resource_name")
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    refused(capsys, ["run", str(bad), "--out", str(kept)], "resource_name")
    assert kept.is_dir() and (kept / "notes.txt").read_text() == "mine"
