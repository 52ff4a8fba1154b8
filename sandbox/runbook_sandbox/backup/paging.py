"""NextToken and MaxResults for the Backup listings the sandbox adds, as moto pages, found faster.

moto's paginator finds where a page starts by comparing every record before it with the token: the
tenth page of 10,000 recovery points compares 9,000. Here the token also holds the position of the
page's first record, checked first; the records are searched only when the listing changed since
the token was made (a record before it added or deleted). Tokens stay moto's otherwise: the record's
unique attribute and a checksum of the other parameters, so a token used with other filters is
refused.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from moto.core.exceptions import InvalidToken
from moto.utilities.paginator import Paginator

RecordT = TypeVar("RecordT")

PAGINATION_MODEL: dict[str, dict[str, Any]] = {
    name: {"input_token": "next_token", "limit_key": "max_results", "limit_default": 1000, "unique_attribute": key}
    for name, key in {
        "list_backup_jobs": "backup_job_id",
        "list_copy_jobs": "copy_job_id",
        "list_restore_jobs": "restore_job_id",
        "list_recovery_points_by_backup_vault": "recovery_point_arn",
        "list_recovery_points_by_resource": "recovery_point_arn",
    }.items()
}


class PositionedPaginator(Paginator):
    """moto's Paginator, whose token says where the next page starts (see the module docstring)."""

    def paginate(self, results: list[Any]) -> tuple[list[Any], str | None]:
        start = self._start_of_page(results)
        end = min(start + self._max_results, len(results))
        token = self._token_for(results[end], end) if end < len(results) else None
        return results[start:end], token

    def _start_of_page(self, results: list[Any]) -> int:
        if self._parsed_token is None:
            return 0
        position = self._parsed_token.get("position")
        if isinstance(position, int) and 0 <= position < len(results) and self._check_predicate(results[position]):
            return position
        found = next((index for index, record in enumerate(results) if self._check_predicate(record)), None)
        if found is None:
            raise InvalidToken("Resource not found!")
        return found

    def _token_for(self, record: Any, position: int) -> str:
        unique = "|".join(str(self._get_unique_value(record, name)) for name in self._unique_attributes)
        token: dict[str, Any] = {"uniqueAttributes": unique, "position": position}
        if self._param_checksum:
            token["parameterChecksum"] = self._param_checksum
        return self._token_encoder.encode(token)


def paginate(
    pagination_model: dict[str, dict[str, Any]],
) -> Callable[[Callable[..., list[RecordT]]], Callable[..., tuple[list[RecordT], str | None]]]:
    """moto's @paginate, with PositionedPaginator: the method lists every record, the wrapper pages."""

    def decorate(list_records: Callable[..., list[RecordT]]) -> Callable[..., tuple[list[RecordT], str | None]]:
        config = pagination_model[list_records.__name__]

        @wraps(list_records)
        def page_of(*args: Any, **kwargs: Any) -> tuple[list[RecordT], str | None]:
            paginator = PositionedPaginator(
                starting_token=kwargs.pop(config["input_token"], None),
                max_results=kwargs.pop(config["limit_key"], None),
                max_results_default=config["limit_default"],
                unique_attribute=config["unique_attribute"],
                param_values_to_check=dict(kwargs),
            )
            return paginator.paginate(list_records(*args, **kwargs))

        return page_of

    return decorate
