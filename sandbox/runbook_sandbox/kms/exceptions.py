"""KMS errors the sandbox raises, named after their AWS error codes."""

from moto.core.exceptions import JsonRESTError
from moto.kms.exceptions import NotFoundException  # noqa: F401  (re-exported)


class AccessDeniedException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("AccessDeniedException", message)


class MalformedPolicyDocumentException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("MalformedPolicyDocumentException", message)
