"""The README starts a newcomer in at most 200 lines and the site (mkdocs.yml) holds the rest: every link of the
README and of the site's pages leads somewhere, every page is in the site's navigation, and the site builds
strictly with the demo's executed notebooks among its pages, their outputs shown as they ran."""

from __future__ import annotations

import html
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from runbook_lib.core import steps
from tools import docs, mkdocs_hooks

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SANDBOX_DOCS = ROOT / "sandbox" / "docs"
PAGES = [*sorted(docs.DOCS.rglob("*.md")), *sorted(SANDBOX_DOCS.glob("*.md"))]
BIN = Path(sys.executable).parent
# ](target) or ](target "title"), of a link or an image.
LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def links(path: Path) -> list[str]:
    """The targets of a page's links and images, outside code blocks and code spans."""
    text = re.sub(r"`[^`\n]*`", "", FENCE.sub("", path.read_text()))
    return LINK.findall(text)


def slug(heading: str) -> str:
    """A heading's anchor, as MkDocs and GitHub both make it for the headings these pages have."""
    return re.sub(r"[\s-]+", "-", re.sub(r"[^\w\s-]", "", heading.lower())).strip("-")


def anchors(path: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in FENCE.sub("", path.read_text()).splitlines() if line.startswith("#")}


def broken(path: Path, target: str) -> str | None:
    """Why a relative link of a page leads nowhere, or None when it leads to a file (and heading) there is."""
    file, _, anchor = target.partition("#")
    resolved = (path.parent / file).resolve() if file else path
    demo = docs.DOCS / mkdocs_hooks.DEMO
    if path.is_relative_to(docs.DOCS) and resolved.is_relative_to(demo):
        # The demo's pages exist only in the site: the notebooks of the steps a run takes by default, its report.
        shown = {f"{step}.ipynb" for step in steps.DEFAULT} | {"report.html"}
        return None if str(resolved.relative_to(demo)) in shown else "no such page of the demo"
    if not resolved.exists():
        return "no such file"
    if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
        return f"no heading #{anchor}"
    return None


def nav_pages(entries: list) -> list[str]:
    found: list[str] = []
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        found.extend(nav_pages(value) if isinstance(value, list) else [value])
    return found


def text_of(page: Path) -> str:
    """What a reader reads of a built page: its text, without tags, scripts or styles."""
    markup = re.sub(r"<(script|style)\b.*?</\1>", " ", page.read_text(), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", markup)))


def test_the_readme_starts_a_newcomer_in_at_most_200_lines():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    for what in (
        "sudo apt-get install chromium",  # prerequisites
        "make demo",
        "make test",
        "runs/demo/",  # what to open next
        "report.html",
        "make lab",
        "parameters/example-aws.yaml",  # the real-accounts quickstart
        "runbook permissions",
        "apply: false",
        "runbook sandbox scenarios",  # the teaching quickstart
        "parameters/troubleshooting/",
    ):
        assert what in text, what
    assert "<!-- generated" not in text, "the generated tables are the site's pages"
    assert "](docs/images/run.svg)" in text, "the picture of a run"


def test_every_relative_link_of_the_readme_and_the_pages_leads_somewhere():
    dead = [
        f"{path.relative_to(ROOT)}: {target}: {why}"
        for path in [README, *PAGES]
        for target in links(path)
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target)
        for why in [broken(path, target)]
        if why
    ]
    assert dead == []
    assert {"docs/accounts/index.md", "sandbox/docs/index.md", "docs/troubleshooting.md"} <= {
        target for target in links(README)
    }, "the README leads to the site's pages"


def test_a_dead_link_is_found():
    page = docs.DOCS / "walkthrough.md"
    assert broken(page, "accounts/index.md#the-guard") is None
    assert broken(page, "accounts/index.md#no-such-heading") == "no heading #no-such-heading"
    assert broken(page, "no-such-page.md") == "no such file"
    assert broken(page, "demo/05_verify_target_key.ipynb") is None
    assert broken(page, "demo/06_troubleshoot.ipynb") == "no such page of the demo"


def test_every_page_is_in_the_sites_navigation():
    site = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    pages = {str(page.relative_to(docs.DOCS)) for page in docs.DOCS.rglob("*.md")}
    pages |= {f"sandbox/{page.name}" for page in SANDBOX_DOCS.glob("*.md")}
    pages |= {f"{mkdocs_hooks.DEMO}/{step}.ipynb" for step in steps.DEFAULT}
    listed = nav_pages(site["nav"])
    assert sorted(listed) == sorted(pages)
    assert site["strict"] is True


def test_the_picture_of_a_run_shows_the_walkthroughs_copy():
    picture = ET.parse(docs.RUN_PICTURE).getroot()
    texts = [element.text for element in picture.iter("{http://www.w3.org/2000/svg}text")]
    for what in (
        "account 222222222222",
        "Region us-east-1",
        "key alias/cmkSource",
        "account 333333333333",
        "Region eu-west-1",
        "key alias/cmkTarget",
        "copy: ok",
    ):
        assert what in texts, what
    for page in (README, docs.DOCS / "index.md"):
        assert any(target.endswith("images/run.svg") for target in links(page)), page


def test_make_docs_builds_the_site_strictly_with_the_demos_notebooks(tmp_path):
    """`make docs` (`make test` runs it here): the walkthrough into a run folder on a sandbox of its own, then the
    site built strictly, executing nothing; into this test's folders, made as a clean clone makes them."""
    run, site = tmp_path / "run", tmp_path / "site"
    folders = [f"DOCS_RUN={run}", f"DOCS_SANDBOX={tmp_path / 'sandbox'}", f"SITE={site}"]
    built = subprocess.run(
        ["make", "--no-print-directory", "-o", "bytecode", "-o", ".venv/.installed", "docs", *folders],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-3000:]
    assert "Converting notebook (execute=False)" in built.stderr
    status = subprocess.run(
        [str(BIN / "runbook"), "sandbox", "status", "--dir", str(tmp_path / "sandbox")], capture_output=True, text=True
    )
    assert status.returncode == 1 and "No sandbox is running" in status.stdout, "the demo's sandbox is stopped"

    verified = text_of(site / "demo" / "05_verify_target_key" / "index.html")
    assert "Step 05: prove the copy is encrypted with the destination key" in verified
    assert "The copy is encrypted with alias/cmkTarget, the key of vault CABTargetVault." in verified
    prerequisites = (site / "demo" / "00_prerequisites" / "index.html").read_text()
    assert "The local sandbox: no real AWS account is read or changed." in text_of(
        site / "demo" / "00_prerequisites" / "index.html"
    )
    assert "<table" in prerequisites, "a step's tables, as the notebook showed them"
    copy = (run / "state.json").read_text()
    recovery_point = re.search(r"arn:aws:ec2:eu-west-1::snapshot/snap-[0-9a-f]+", copy)
    assert recovery_point is not None
    assert recovery_point.group(0) in text_of(site / "demo" / "report.html"), "the run's report, beside its notebooks"
    assert (site / "demo" / "05_verify_target_key.ipynb").exists(), "the executed notebook, to download"

    # The sandbox's pages (sandbox/docs/) are in the site, their links to the site's pages rewritten to hold there.
    sandbox = (site / "sandbox" / "scenarios" / "index.html").read_text()
    assert 'href="../../troubleshooting/#teaching-the-copy-failures"' in sandbox
    assert "Scenarios" in text_of(site / "sandbox" / "scenarios" / "index.html")
    walkthrough = (site / "walkthrough" / "index.html").read_text()
    assert 'href="../demo/00_prerequisites/"' in walkthrough
    assert 'src="../images/run.svg"' in walkthrough
