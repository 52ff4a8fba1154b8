"""Backup's JSON answers, shaped by botocore's model as moto shapes them, by a serializer made once.

moto's serializer works out, for every member of every record it writes, under which of several
spellings the value is kept; a page of 1,000 recovery points takes it about a second, and a list of
200 copy jobs a fifth of one. The sandbox's records are dicts in AWS's member names already, so a
serializer compiled once per output shape (a function per shape, no lookups per value) writes the
same JSON in a small fraction of the time. A test holds it to moto's output.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape
from botocore.utils import parse_to_aware_datetime
from moto.core.responses import ActionContext, ActionResult
from moto.core.serialize import RestJSONSerializer, TimestampSerializer

Serializer = Callable[[Any], Any]
UNIX_TIMESTAMP = TimestampSerializer.TIMESTAMP_FORMAT_UNIX
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def epoch_seconds(value: Any) -> int | float:
    """A timestamp as moto writes it in JSON: seconds since the epoch, to the millisecond (a naive
    datetime is UTC)."""
    moment = value if isinstance(value, datetime) else parse_to_aware_datetime(value)
    elapsed = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)) - EPOCH
    seconds = elapsed.days * 86400 + elapsed.seconds
    return seconds + (elapsed.microseconds // 1000) / 1000.0 if elapsed.microseconds else seconds


def _string(value: Any) -> Any:
    if type(value) is str:
        return value
    if isinstance(value, Enum):
        value = value.value
    return str(value) if value not in (None, {}, []) else value


def _timestamp(shape: Shape) -> Serializer:
    timestamp_format = shape.serialization.get("timestampFormat", UNIX_TIMESTAMP).lower()
    if timestamp_format == UNIX_TIMESTAMP:
        return epoch_seconds
    converter = TimestampSerializer(timestamp_format)
    return lambda value: converter._convert_timestamp_to_str(value, timestamp_format)


SCALARS: dict[str, Serializer] = {
    "string": _string,
    "integer": int,
    "long": int,
    "float": float,
    "double": float,
    "blob": lambda value: base64.b64encode(value.encode() if isinstance(value, str) else value).strip().decode(),
}


def compile_shape(shape: Shape, made: dict[str, Serializer] | None = None) -> Serializer:
    """The function that writes a value of this shape; `made` holds those already made (shapes may recur)."""
    made = {} if made is None else made
    if shape.name in made:
        return made[shape.name]
    if isinstance(shape, StructureShape) and not shape.is_document_type:
        members: dict[str, tuple[str, Serializer]] = {}
        made[shape.name] = lambda value: _structure(members, value)
        for name, member in shape.members.items():
            members[name] = (member.serialization.get("name", name), compile_shape(member, made))
    elif isinstance(shape, ListShape):
        item = compile_shape(shape.member, made)
        made[shape.name] = lambda value: [item(entry) if entry is not None else entry for entry in value]
    elif isinstance(shape, MapShape):
        entry_value = compile_shape(shape.value, made)
        made[shape.name] = lambda value: {key: entry_value(entry) for key, entry in value.items()}
    elif shape.type_name == "timestamp":
        made[shape.name] = _timestamp(shape)
    else:
        made[shape.name] = SCALARS.get(shape.type_name, lambda value: value)
    return made[shape.name]


def _structure(members: dict[str, tuple[str, Serializer]], value: dict[str, Any]) -> dict[str, Any]:
    """The members the shape has and the value holds (not None), in the value's order: botocore reads
    them by name. Walks the value, which holds fewer members than a shape of some thirty."""
    written = {}
    for name, member in value.items():
        known = members.get(name)
        if known is not None and member is not None:
            written[known[0]] = known[1](member)
    return written


_BODY_SERIALIZERS: dict[tuple[str, str], Serializer | None] = {}


def body_serializer(operation: OperationModel) -> Serializer | None:
    """The compiled serializer of an operation's output, made on the operation's first answer."""
    key = (operation.service_model.service_name, operation.name)
    if key not in _BODY_SERIALIZERS:
        _BODY_SERIALIZERS[key] = _compile_body(operation)
    return _BODY_SERIALIZERS[key]


def _compile_body(operation: OperationModel) -> Serializer | None:
    """None where moto's serializer must write the answer: a member bound to a header or the status
    code, or a payload."""
    shape = operation.output_shape
    if not isinstance(shape, StructureShape) or "payload" in shape.serialization or not shape.members:
        return None
    if any("location" in member.serialization for member in shape.members.values()):
        return None
    return compile_shape(shape)


class ShapedResult(ActionResult):
    """An ActionResult whose result is a dict in AWS's member names, written by body_serializer."""

    def execute_result(self, context: ActionContext) -> tuple[int, dict[str, str], str]:
        serializer = body_serializer(context.operation_model)
        rest_json = context.serializer_class is RestJSONSerializer
        if serializer is None or not rest_json or not isinstance(self.result, dict):
            return super().execute_result(context)  # type: ignore[return-value]  # moto's TYPE_RESPONSE
        status = context.operation_model.http.get("responseCode", RestJSONSerializer.DEFAULT_RESPONSE_CODE)
        return status, {"Content-Type": RestJSONSerializer.CONTENT_TYPE}, json.dumps(serializer(self.result))
