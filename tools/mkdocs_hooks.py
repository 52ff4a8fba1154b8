"""MkDocs hooks (mkdocs.yml, `hooks:`): what the site shows besides docs/.

- The sandbox's pages live beside the sandbox, in sandbox/docs/ (the sandbox is its own distribution): they
  appear in the site under sandbox/.
- The demo's executed notebooks: `make docs` runs the walkthrough into a run folder of its own (RUNBOOK_DOCS_RUN,
  default runs/docs), and its notebooks appear under demo/, rendered by mkdocs-jupyter as they ran (the build
  executes nothing), with the run's report.html beside them.

Pages are written with links that hold in the repository (in a clone, or on a forge): a page of docs/ links to
`../sandbox/docs/index.md`, a page of sandbox/docs/ to `../../docs/troubleshooting.md`. The hook rewrites each
link into a mounted folder to where the page is in the site, so that MkDocs checks it as any other (a link
to a file outside the site stays as it is, and a strict build fails on it). Links to the demo's pages are
written as the site has them (`demo/00_prerequisites.ipynb`): there is no such folder in the repository.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.nav import Navigation
from mkdocs.structure.pages import Page

from runbook_lib.core import steps

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
RUN_VARIABLE = "RUNBOOK_DOCS_RUN"
DEFAULT_RUN = ROOT / "runs" / "docs"
DEMO = "demo"  # the demo's folder in the site
log = logging.getLogger("mkdocs.hooks.runbook")
# A markdown link or image: ](target) or ](target "title").
LINK = re.compile(r"(\]\()([^)\s]+)((?:\s+\"[^\"]*\")?\))")


@dataclass(frozen=True)
class Mount:
    """A folder of the repository (or a run folder) that appears in the site under `site_folder`."""

    site_folder: str
    folder: Path
    patterns: tuple[str, ...]

    def files(self) -> list[Path]:
        return sorted({path for pattern in self.patterns for path in self.folder.glob(pattern) if path.is_file()})


def run_folder() -> Path:
    """The run folder whose executed notebooks the site shows."""
    return Path(os.environ.get(RUN_VARIABLE) or DEFAULT_RUN).resolve()


def mounts() -> tuple[Mount, ...]:
    return (
        Mount("sandbox", ROOT / "sandbox" / "docs", ("*.md",)),
        Mount(DEMO, run_folder(), tuple(f"{step}.ipynb" for step in steps.DEFAULT) + ("report.html",)),
    )


@event_priority(100)  # first: mkdocs-jupyter's on_files then takes the notebooks for pages
def on_files(files: Files, config: MkDocsConfig) -> Files:
    for mount in mounts():
        for path in mount.files():
            files.append(File.generated(config, f"{mount.site_folder}/{path.name}", abs_src_path=str(path)))
    missing = [step for step in steps.DEFAULT if not (run_folder() / f"{step}.ipynb").is_file()]
    if missing:  # a warning: a strict build stops on it
        log.warning(
            f"{run_folder()} has no executed notebook of {', '.join(missing)}: `make docs` runs the demo into "
            f"{DEFAULT_RUN.relative_to(ROOT)}, or set {RUN_VARIABLE} to a run folder of steps 00 to 05"
        )
    return files


def on_nav(nav: Navigation, config: MkDocsConfig, files: Files) -> Navigation:
    """mkdocs-jupyter wraps each notebook in a File of its own, which works its source out from the docs folder:
    a mounted notebook's source is the one of the File it wraps."""
    for file in files:
        wrapped = getattr(file, "file", None)
        if isinstance(wrapped, File) and file.abs_src_path is None:
            file.abs_src_path = wrapped.abs_src_path
    return nav


def site_uri(target: Path) -> str | None:
    """Where a file of the repository is in the site (its src_uri), or None when the site has no such file."""
    for folder, site_folder in [(mount.folder, mount.site_folder) for mount in mounts()] + [(DOCS, "")]:
        if target.is_relative_to(folder.resolve()):
            return str(Path(site_folder) / target.relative_to(folder.resolve()))
    return None


def rewrite_links(markdown: str, source: Path, src_uri: str) -> str:
    """A page's links, from where the page is in the repository (`source`) to where it is in the site."""
    here = Path(src_uri).parent

    def rewrite(match: re.Match[str]) -> str:
        target = match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", target):
            return match.group(0)
        path, _, anchor = target.partition("#")
        uri = site_uri((source.parent / path).resolve())
        if uri is None:
            return match.group(0)
        relative = os.path.relpath(uri, here).replace(os.sep, "/")
        return f"{match.group(1)}{relative}{'#' + anchor if anchor else ''}{match.group(3)}"

    return LINK.sub(rewrite, markdown)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    source = page.file.abs_src_path
    if source is None or not source.endswith(".md"):  # a notebook: mkdocs-jupyter renders it, links and all
        return markdown
    return rewrite_links(markdown, Path(source), page.file.src_uri)


def on_post_build(config: MkDocsConfig) -> None:
    """Each executed notebook also as itself beside the report (whose links name them), to download; and the
    built site, not a source, ignores itself as caches do (a clone's .gitignore need not list it)."""
    site = Path(config.site_dir)
    for path in run_folder().glob("*.ipynb"):
        if path.stem in steps.DEFAULT:
            shutil.copyfile(path, site / DEMO / path.name)
    (site / ".gitignore").write_text("*\n")
