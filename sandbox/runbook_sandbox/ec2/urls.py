from moto.ec2.urls import url_bases  # noqa: F401

from .responses import SandboxEC2Response

url_paths = {"{0}/": SandboxEC2Response.dispatch}
