"""An answer held to botocore's output shape: what an SDK relies on being there, and being of its type.

botocore's parsers keep the members a shape names and convert them (a timestamp into a datetime, a
blob into bytes), but they let a required member be missing, a value of the wrong type pass, and an
enum value AWS never sends through. A sandbox answer with one of those would work with the runbook
here and differ from what it gets from AWS: `problems` names each one, with the operation and the
member's path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

RESPONSE_METADATA = "ResponseMetadata"

# The Python types botocore's parsers give each scalar type; a JSON number may be an int where the
# shape says double or float (AWS writes 5 for 5.0, and botocore keeps what it read).
SCALAR_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "character": (str,),
    "integer": (int,),
    "long": (int,),
    "short": (int,),
    "byte": (int,),
    "boolean": (bool,),
    "double": (float, int),
    "float": (float, int),
    "timestamp": (datetime,),
    "blob": (bytes, bytearray),
}
# What botocore's own handlers turn a value of these shapes into, after parsing ("after-call"):
# (service, shape name) -> the types given. IAM's policy documents arrive URL-encoded JSON, which
# botocore decodes into a dict (json_decode_policies), or leaves a string when it is not JSON.
DECODED_BY_BOTOCORE: dict[tuple[str, str], tuple[type, ...]] = {("iam", "policyDocumentType"): (dict, str)}
TYPE_WORDS = {"timestamp": "a timestamp (datetime)", "blob": "a blob (bytes)", "integer": "an integer"}


def label(operation: OperationModel) -> str:
    """How an answer's problems name its operation: "backup DescribeCopyJob"."""
    return f"{operation.service_model.service_name} {operation.name}"


def problems(operation: OperationModel, parsed: dict[str, Any]) -> list[str]:
    """Every way the parsed answer differs from the operation's output shape; [] when it fits.

    ResponseMetadata is botocore's, not the shape's, and is ignored.
    """
    answer = {name: value for name, value in parsed.items() if name != RESPONSE_METADATA}
    shape = operation.output_shape
    if shape is None:
        found = [f"{label(operation)}: {name}: the operation answers nothing, but the answer has it" for name in answer]
        return found
    service = operation.service_model.service_name
    return [f"{label(operation)}: {problem}" for problem in _check(shape, answer, "", service)]


def _check(shape: Shape, value: Any, path: str, service: str) -> list[str]:
    decoded = DECODED_BY_BOTOCORE.get((service, shape.name))
    if decoded is not None:
        return [] if isinstance(value, decoded) else [f"{_at(path)}: expected {shape.name}, got {_described(value)}"]
    if isinstance(shape, StructureShape):
        return _check_structure(shape, value, path, service)
    if isinstance(shape, ListShape):
        if not isinstance(value, list):
            return [f"{_at(path)}: expected a list, got {_described(value)}"]
        return [
            found
            for index, item in enumerate(value)
            for found in _check(shape.member, item, f"{path}[{index}]", service)
        ]
    if isinstance(shape, MapShape):
        if not isinstance(value, dict):
            return [f"{_at(path)}: expected a map, got {_described(value)}"]
        found = []
        for key, item in value.items():
            found += [f"{problem} (a key)" for problem in _check(shape.key, key, f"{path}[{key!r}]", service)]
            found += _check(shape.value, item, f"{path}[{key!r}]", service)
        return found
    return _check_scalar(shape, value, path)


def _check_structure(shape: StructureShape, value: Any, path: str, service: str) -> list[str]:
    if shape.is_document_type:
        return []
    if not isinstance(value, dict):
        return [f"{_at(path)}: expected a structure ({shape.name}), got {_described(value)}"]
    found = [
        f"{_joined(path, name)}: required member missing" for name in shape.required_members if value.get(name) is None
    ]
    for name, member_value in value.items():
        member = shape.members.get(name)
        if member is None:
            found.append(f"{_joined(path, name)}: not a member of {shape.name}")
        elif member_value is not None:
            found += _check(member, member_value, _joined(path, name), service)
    return found


def _check_scalar(shape: Shape, value: Any, path: str) -> list[str]:
    expected = SCALAR_TYPES.get(shape.type_name)
    if expected is None:
        return [f"{_at(path)}: the shape's type {shape.type_name!r} is not known to this check"]
    wrong_bool = isinstance(value, bool) and bool not in expected
    if wrong_bool or not isinstance(value, expected):
        word = TYPE_WORDS.get(shape.type_name, f"a {shape.type_name}")
        return [f"{_at(path)}: expected {word}, got {_described(value)}"]
    enum = shape.metadata.get("enum")
    if enum and value not in enum:
        return [f"{_at(path)}: {value!r} is not one of {', '.join(enum)}"]
    return []


def _joined(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _at(path: str) -> str:
    return path or "the answer"


def _described(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"
