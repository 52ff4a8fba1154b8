"""`python -m tools.site build --strict` (or `serve`): MkDocs's own command line, for the documentation site.

The same as the `mkdocs` command, without the theme's notice of its end of life on every build (Material for
MkDocs is maintained until 2027), and less 2 s of CPU: mkdocs-jupyter imports nbformat, which validates notebooks
with jsonschema, whose optional IRI format check imports rfc3987_syntax, which compiles a grammar when imported
(as `runbook run` does, runbook_lib/app/runner.py, the site leaves it out: no notebook field uses the format).
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    from mkdocs.__main__ import cli

    cli(prog_name="python -m tools.site")


if __name__ == "__main__":
    main()
