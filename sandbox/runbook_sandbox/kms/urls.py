from moto.kms.urls import url_bases  # noqa: F401

from .responses import SandboxKmsResponse

url_paths = {"{0}/$": SandboxKmsResponse.dispatch}
