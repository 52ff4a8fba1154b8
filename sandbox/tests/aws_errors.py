"""What the negative tests of the sandbox's operations assert: AWS's error code and message, exactly."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def assert_error(excinfo: pytest.ExceptionInfo[ClientError], code: str, message: str) -> None:
    error = excinfo.value.response["Error"]
    assert (error["Code"], error["Message"]) == (code, message)
