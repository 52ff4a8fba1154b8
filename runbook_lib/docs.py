"""Regenerate the README's sections that are derived from code: IAM policies and parameters.

Run `python -m runbook_lib.docs` after changing permissions.py or params.py; a test fails while
the README and the declarations disagree.
"""

from __future__ import annotations

import re
from pathlib import Path

from .core import params, permissions

README = Path(__file__).resolve().parent.parent / "README.md"
SECTIONS = {"permissions": permissions.readme_section, "parameters": params.reference_table}


def marked(name: str) -> str:
    return f"<!-- generated: {name} -->\n{SECTIONS[name]()}\n<!-- end generated: {name} -->"


def regenerate(path: Path = README) -> None:
    text = path.read_text()
    for name in SECTIONS:
        pattern = re.compile(rf"<!-- generated: {name} -->.*?<!-- end generated: {name} -->", re.S)
        text = pattern.sub(lambda _: marked(name), text)
    path.write_text(text)


if __name__ == "__main__":
    regenerate()
