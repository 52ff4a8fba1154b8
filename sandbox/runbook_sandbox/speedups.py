"""What moto works out anew for every request or value, worked out once: answers in milliseconds.

moto's server mode finds, for every request, the backend that serves its host (listing its package
folder, a stat call for each of some 250 services, then trying each service's URL pattern), and the
handler methods of the response class (inspect.getmembers over a class of hundreds of members); and
for every value it writes, the spellings the value may be kept under and the transformer its key
path takes. None of these answers change while the server runs (the last two, while one answer is
written), so each is worked out once.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any

from moto.backend_index import backend_url_patterns
from moto.backends import list_of_moto_modules
from moto.core import responses as moto_responses
from moto.core.serialize import AttributePickerContext, XFormedAttributePicker
from moto.core.utils import MISSING, get_value
from moto.moto_api._internal import mock_random
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_moto_method_names = moto_responses.method_names_from_class
REQUEST_ID_CHARACTERS = string.ascii_letters + string.digits


@cache
def _moto_modules() -> frozenset[str]:
    return frozenset(list_of_moto_modules())


@lru_cache(maxsize=256)
def backend_for_host(host: str) -> str | None:
    """The moto backend that serves a host such as backup.us-east-1.amazonaws.com, or None."""
    if host in _moto_modules():
        return host
    return next((backend for backend, pattern in backend_url_patterns if pattern.match(f"http://{host}")), None)


class SandboxDispatcher(DomainDispatcherApplication):
    """moto's dispatcher, with the backend for each host remembered (backend_for_host)."""

    def get_backend_for_host(self, host: str | None) -> str | None:
        if host is None or host == "moto_api":
            return host
        return backend_for_host(host)


@cache
def method_names_from_class(response_class: type) -> list[str]:
    """The handler methods of a response class, listed once per class."""
    return _moto_method_names(response_class)


class MemoizedAttributePicker(XFormedAttributePicker):
    """moto's attribute picker, remembering while it writes one answer the spellings each member may
    be kept under and each key path's transformer. moto works both out for every value (DescribeVolumes
    of 200 volumes: 120,000 times, and 2 million suffix tests of key paths).

    The spellings depend on the record's class and the member's shape and parent shape, which stay
    the same objects while the answer is written; the transformers, on the key path alone.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spellings: dict[tuple[type, str, int, int], tuple[str, ...]] = {}
        self.transforms: dict[str, Callable[[Any], Any] | None] = {}

    def __call__(self, context: AttributePickerContext) -> Any:
        record, shape = context.obj, context.shape
        member = (type(record), context.key, id(shape), id(getattr(shape, "parent", None)))
        spellings = self.spellings.get(member)
        if spellings is None:
            spellings = self.spellings[member] = tuple(self.get_possible_keys(context))
        value = None
        for spelling in spellings:
            found = get_value(record, spelling, MISSING)
            if found is not MISSING:
                value = found
                break
        key_path = f"{context.key_path}.{context.key}"
        if key_path not in self.transforms:
            self.transforms[key_path] = next(
                (transform for path, transform in self.response_transformers.items() if key_path.endswith(path)), None
            )
        transform = self.transforms[key_path]
        return value if transform is None else transform(value)


def gen_amzn_requestid_long(headerdict: dict[str, Any] | None = None) -> str:
    """moto's request id (52 letters and digits, from moto's random source), drawn in one call rather
    than 52: a twentieth of a millisecond of every answer."""
    request_id = "".join(mock_random.choices(REQUEST_ID_CHARACTERS, k=52))
    if isinstance(headerdict, dict):
        headerdict["x-amzn-requestid"] = request_id
    return request_id


def install() -> None:
    """Have moto's responses list a class's handler methods once, draw request ids in one call, and
    write answers with the memoizing attribute picker (moto looks the names up in its responses module
    at each request)."""
    moto_responses.method_names_from_class = method_names_from_class
    moto_responses.gen_amzn_requestid_long = gen_amzn_requestid_long
    moto_responses.XFormedAttributePicker = MemoizedAttributePicker  # type: ignore[misc]
