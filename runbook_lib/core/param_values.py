"""What a parameter's value may be: the patterns AWS allows and the checks of lists, tags and numbers.

Every pattern is anchored on the whole value (`\\A...\\Z`: `$` would let a trailing newline through) and
ASCII-only where AWS is, so that `\\d` takes no Arabic-Indic digit. params.py's schema names one check per
parameter from here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

from . import resource_kinds, resource_types
from .errors import quoted

VAULT_NAME = re.compile(r"\A[A-Za-z0-9_-]{2,50}\Z")
ROLE_NAME = re.compile(r"\A/?([\w+=,.@-]+/)*[\w+=,.@-]{1,64}\Z", re.ASCII)
ALIAS = re.compile(r"\Aalias/[A-Za-z0-9/_-]{1,250}\Z")
KEY_ID = re.compile(r"\A(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\Z")
KEY_ARN = re.compile(
    r"\Aarn:(?P<partition>aws[a-z-]*):kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"(key/[A-Za-z0-9-]+|alias/[A-Za-z0-9/_-]+)\Z",
    re.ASCII,
)
# The ARN of a resource the runbook looks up and backs up: each kind's form (resource_kinds.py).
_LOOKED_UP = [kind for kind in resource_kinds.KINDS.values() if kind.lookup is not None]
RESOURCE_ARN = re.compile(
    rf"\Aarn:(?P<partition>aws[a-z-]*):(?P<service>{'|'.join(dict.fromkeys(k.row.arn_service for k in _LOOKED_UP))}):"
    rf"(?P<region>[a-z0-9-]+):(?P<account>\d{{12}}):"
    rf"(?P<resource>{'|'.join(dict.fromkeys(kind.arn_pattern for kind in _LOOKED_UP))})\Z",
    re.ASCII,
)
AVAILABILITY_ZONE = re.compile(r"\A([a-z]{2}(-[a-z]+)+-\d+[a-z])?\Z")
PLAN_NAME = re.compile(r"\A[A-Za-z0-9_-]{1,50}\Z")
SCHEDULE = re.compile(r"\A(cron|rate)\([^()\n]{1,200}\)\Z")
TOPIC_NAME = re.compile(r"\A[A-Za-z0-9_-]{1,256}\Z")
SCENARIO_NAME = re.compile(r"\A([a-z0-9-]{1,64})?\Z")
COPY_JOB_ID = re.compile(r"\A[!-~]{0,100}\Z")
KEY_FORMS = "alias/NAME, a key ID, or a key or alias ARN"
# AWS Backup's tag rules (API KeyValue): letters, separators (spaces) and numbers of any script, and these.
TAG_SYMBOLS = frozenset("_.:/=+-@")
TAG_RULES = (
    "a mapping of up to 50 tags: keys 1-128 and values 0-256 characters, each a letter, digit, space or "
    "one of _ . : / = + - @; keys not starting with aws:"
)
MAX_TAGS = 50


def is_int(low: int, high: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def tag_character_allowed(character: str) -> bool:
    """Whether AWS takes the character in a tag key or value (letters, separators and numbers of any script)."""
    return unicodedata.category(character)[0] in "LZN" or character in TAG_SYMBOLS


def _tag_character_problem(text: str) -> str:
    """'' when AWS Backup takes every character of a tag key or value, else the first it refuses."""
    for character in text:
        if not tag_character_allowed(character):
            return f"has {quoted(character)} (U+{ord(character):04X})"
    return ""


def _tag_map_problem(value: Any) -> str:
    """Why a value is not a map of at most MAX_TAGS text keys to text values, or '' when it is."""
    if not isinstance(value, Mapping):
        return f"got {quoted(value)}"
    if len(value) > MAX_TAGS:
        return f"got {len(value)} tags"
    for key, text in value.items():
        if not isinstance(key, str) or not isinstance(text, str):
            return f"tag {quoted(key)}: {quoted(text)} is not text (quote numbers, dates and true/false)"
    return ""


def tags_problem(value: Any) -> str:
    """Why AWS Backup would refuse these recovery point tags, or '' when it takes them."""
    problem = _tag_map_problem(value)
    if problem:
        return problem
    for key, text in value.items():
        if not 1 <= len(key) <= 128:
            return f"key {quoted(key)} has {len(key)} characters"
        if len(text) > 256:
            return f"the value of {quoted(key)} has {len(text)} characters"
        if key.lower().startswith("aws:"):
            return f"key {quoted(key)} starts with aws:"
        for what, checked in (("key", key), ("value", text)):
            problem = _tag_character_problem(checked)
            if problem:
                where = f"the {what} {quoted(checked)}" if what == "key" else f"the value of {quoted(key)}"
                return f"{where} {problem}"
    return ""


MAX_RESOURCES = 5000


def resources_problem(value: Any) -> str:
    """Why a `resources` list cannot select resources, or '' when it can."""
    if not isinstance(value, list):
        return f"got {quoted(value)}"
    if len(value) > MAX_RESOURCES:
        return f"got {len(value)} resources"
    for item in value:
        if not plain_text(256)(item) or not item:
            return f"got {quoted(item)}"
    if len(set(value)) != len(value):
        return f"{quoted(next(v for v in value if value.count(v) > 1))} is given twice"
    return ""


def selector_tags_problem(value: Any) -> str:
    """Why `resource_tags` cannot select volumes by their tags, or '' when it can."""
    problem = _tag_map_problem(value)
    if problem:
        return problem
    for key, text in value.items():
        if not 1 <= len(key) <= 128 or not plain_text(128)(key) or not plain_text(256)(text):
            return f"tag {quoted(key)}: {quoted(text)}"
    return ""


def is_tags(value: Any) -> bool:
    return not tags_problem(value)


def plain_text(limit: int) -> Callable[[Any], bool]:
    """Text of at most `limit` characters with no control character (a newline, NUL, BEL...)."""
    return lambda v: isinstance(v, str) and len(v) <= limit and not any(unicodedata.category(c) == "Cc" for c in v)


def is_types(value: Any) -> bool:
    """A list of the capability table's types, none twice."""
    return isinstance(value, list) and all(t in resource_types.TYPES for t in value) and len(set(value)) == len(value)


def is_key(value: Any) -> bool:
    return isinstance(value, str) and bool(ALIAS.match(value) or KEY_ID.match(value) or KEY_ARN.match(value))


def is_minutes(value: Any, high: float = 10080) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= high


def matches(pattern: re.Pattern[str]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and bool(pattern.match(v))
