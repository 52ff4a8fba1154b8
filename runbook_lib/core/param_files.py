"""Reading a parameter file: flat YAML, read with YAML 1.2's rules for plain values (`010`, `0x23`, `yes`
stay text), refusing what YAML would let through silently: a key given twice (YAML keeps the last), an
empty file (every default would run); a YAML error says its line and column."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .errors import ParameterError, quoted

INT_TAG, FLOAT_TAG, BOOL_TAG = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool"


class _Duplicate(Exception):
    """A key given twice in one mapping; `field` is the parameter it belongs to."""

    def __init__(self, field: str, key: Any, lines: tuple[int, int]):
        super().__init__(field)
        self.field, self.key, self.lines = field, key, lines


def _refuse_duplicates(loader: yaml.SafeLoader, node: yaml.Node, field: str | None) -> None:
    """A mapping that names a key twice (YAML would keep the last without a word), here or nested.

    `field` is the parameter whose value `node` is (None for the file's top-level mapping)."""
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicates(loader, item, field)
    if not isinstance(node, yaml.MappingNode):
        return
    seen: dict[Any, int] = {}
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            if key in seen:
                raise _Duplicate(field or str(key), key, (seen[key], line))
            seen[key] = line
        except TypeError:
            continue  # an unhashable key: SafeLoader refuses it with its own error
        _refuse_duplicates(loader, value_node, field or str(key))


def _where(text: str, error: yaml.YAMLError) -> str:
    """'line L, column C: problem' of a YAML error (1-based, as editors count)."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {error.problem}"
    if isinstance(error, yaml.reader.ReaderError):
        line = text.count("\n", 0, error.position) + 1
        column = error.position - (text.rfind("\n", 0, error.position) + 1) + 1
        return f"line {line}, column {column}: character U+{error.character:04X} is not allowed in YAML"
    return str(error).splitlines()[0]


class _Loader(yaml.SafeLoader):
    """YAML 1.2's core schema for plain scalars: a value is what it looks like. YAML 1.1 (PyYAML's
    default) reads 010 as 8, 0x23 as 35, 1:05 as 65, 1_0 as 10 and yes or on as true; here they stay
    text, which validation then refuses where a number or true/false is expected."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag not in (INT_TAG, FLOAT_TAG, BOOL_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(BOOL_TAG, re.compile(r"\A(?:true|True|TRUE|false|False|FALSE)\Z"), list("tTfF"))
_Loader.add_implicit_resolver(INT_TAG, re.compile(r"\A[-+]?(?:0|[1-9][0-9]*)\Z"), list("-+0123456789"))
_Loader.add_implicit_resolver(
    FLOAT_TAG,
    re.compile(
        r"\A(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z"
    ),
    list("-+0123456789."),
)


def read(path: str | Path) -> Any:
    """The YAML document in a file; ParameterError (one line, with line and column) when it cannot be read,
    is not YAML, names a key twice or holds nothing."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error).splitlines()[0]
        raise ParameterError("file", f"cannot read {path}: {reason}") from None
    try:
        loader = _Loader(text)
    except yaml.YAMLError as error:
        raise ParameterError("file", f"{path} is not valid YAML: {_where(text, error)}") from None
    try:
        node = loader.get_single_node()
        if node is not None:
            _refuse_duplicates(loader, node, None)
        data = loader.construct_document(node) if node is not None else None
    except _Duplicate as twice:
        what = "given" if twice.field == str(twice.key) else f"has key {quoted(twice.key)}"
        raise ParameterError(
            twice.field,
            f"{what} twice in {path} (lines {twice.lines[0]} and {twice.lines[1]}); "
            "allowed: each name once (YAML would silently keep the last)",
        ) from None
    except yaml.YAMLError as error:
        raise ParameterError("file", f"{path} is not valid YAML: {_where(text, error)}") from None
    finally:
        loader.dispose()
    if data is None or data == {}:
        raise ParameterError(
            "file",
            f"{path} holds no parameters; allowed: a flat mapping of parameter names to "
            "values, e.g. parameters/sandbox.yaml (an empty file would run every default)",
        )
    return data
