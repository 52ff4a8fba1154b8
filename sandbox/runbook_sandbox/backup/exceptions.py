"""AWS Backup errors the sandbox raises, named after their AWS error codes."""

from moto.backup.exceptions import (  # noqa: F401  (re-exported: one place to import Backup errors)
    AlreadyExistsException,
    InvalidParameterValueException,
    InvalidRequestException,
    ResourceNotFoundException,
)
from moto.core.exceptions import JsonRESTError


class InvalidResourceStateException(JsonRESTError):
    code = 400

    def __init__(self, msg: str):
        super().__init__("InvalidResourceStateException", msg)


class MissingParameterValueException(JsonRESTError):
    code = 400

    def __init__(self, msg: str):
        super().__init__("MissingParameterValueException", msg)


class AccessDeniedException(JsonRESTError):
    code = 403

    def __init__(self, msg: str):
        super().__init__("AccessDeniedException", msg)
