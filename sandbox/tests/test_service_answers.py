"""Answers of the services the sandbox extends (Backup, KMS, EC2), which it calls without Flask:
errors in the service's protocol with AWS's code and message, the headers SDKs read, no CORS grant."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from werkzeug.test import Client

from runbook_sandbox import protocols, service_app
from runbook_sandbox.accounts import SOURCE, SOURCE_REGION
from runbook_sandbox.gate import OPERATION_KEY, PROTOCOL_KEY, SERVICE_KEY
from runbook_sandbox.service_app import ServiceApp

SOURCE_KEY_ALIAS_ARN = f"arn:aws:kms:{SOURCE_REGION}:{SOURCE.account_id}:alias/nope"


def test_a_service_error_keeps_its_code_message_and_request_id(aws):
    with pytest.raises(ClientError) as excinfo:
        aws.source("backup").describe_backup_vault(BackupVaultName="NoSuchVault")
    response = excinfo.value.response
    assert response["Error"]["Code"] == "ResourceNotFoundException"
    assert "NoSuchVault" in response["Error"]["Message"]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["ResponseMetadata"]["RequestId"]


def test_a_key_named_by_an_alias_that_does_not_exist(aws):
    kms = aws.source("kms")
    for alias in ("alias/nope", SOURCE_KEY_ALIAS_ARN):
        with pytest.raises(ClientError) as excinfo:
            kms.describe_key(KeyId=alias)
        assert excinfo.value.response["Error"]["Code"] == "NotFoundException"
        assert excinfo.value.response["Error"]["Message"] == f"Alias {SOURCE_KEY_ALIAS_ARN} is not found."
    assert kms.describe_key(KeyId="alias/cmkSource")["KeyMetadata"]["Description"] == "Customer managed key cmkSource"


def test_an_operation_the_sandbox_does_not_serve_is_not_implemented(aws):
    with pytest.raises(ClientError) as excinfo:
        aws.source("backup").list_frameworks()
    assert excinfo.value.response["Error"]["Code"] == "NotImplemented"
    assert excinfo.value.response["Error"]["Message"] == "The sandbox does not implement backup ListFrameworks."
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    with pytest.raises(ClientError) as excinfo:
        aws.source("ec2").accept_reserved_instances_exchange_quote(ReservedInstanceIds=["r-1"])
    assert excinfo.value.response["Error"]["Code"] == "NotImplemented"
    assert excinfo.value.response["Error"]["Message"] == (
        "The sandbox does not implement ec2 AcceptReservedInstancesExchangeQuote."
    )


def test_answers_carry_what_sdks_read_and_no_cors_grant(aws):
    """botocore reads the request id and the content type; a web page is granted nothing (AWS's APIs
    answer a signed request from a page only after a preflight, which the sandbox refuses)."""
    seen: list[dict[str, str]] = []
    clients = [aws.source("backup"), aws.source("kms"), aws.source("ec2")]
    for client in clients:
        client.meta.events.register("before-sign", lambda request, **_: request.headers.add_header("Origin", "null"))
        client.meta.events.register("after-call", lambda http_response, **_: seen.append(dict(http_response.headers)))
    aws.source("backup").list_backup_vaults()
    aws.source("kms").list_aliases()
    aws.source("ec2").describe_volumes()
    assert len(seen) == 3
    for headers in seen:
        lowered = {name.lower(): value for name, value in headers.items()}
        assert lowered.get("x-amzn-requestid"), lowered
        assert "content-type" in lowered
        assert not any(name.startswith("access-control-") for name in lowered), lowered


def test_the_server_writes_no_line_per_request(aws, world):
    aws.source("kms").list_aliases()
    log = (world.directory / "server.log").read_text(errors="replace")
    assert "POST / HTTP/1.1" not in log


def app_answer(handler: Any, protocol: str = protocols.JSON) -> tuple[int, dict[str, str], bytes]:
    """The answer of a ServiceApp serving one route with the handler, to a request the gate let through."""
    app = ServiceApp("kms", {"{0}/$": handler})
    environ_base = {PROTOCOL_KEY: protocol, SERVICE_KEY: "kms", OPERATION_KEY: "ListKeys"}
    response = Client(app).post("/", data=b"{}", environ_base=environ_base)
    return response.status_code, dict(response.headers), response.get_data()


def test_what_escapes_a_handler_is_answered_in_the_protocol(caplog):
    def crash(*_: Any) -> Any:
        raise RuntimeError("boom")

    status, headers, body = app_answer(crash)
    assert status == 500
    assert headers["x-amzn-ErrorType"] == "InternalFailure"
    assert json.loads(body)["message"] == "The sandbox failed on kms ListKeys: RuntimeError"
    assert "kms ListKeys failed" in caplog.text

    def wrong_type(*_: Any) -> Any:
        raise TypeError("not a string")

    status, headers, body = app_answer(wrong_type, protocols.EC2)
    assert status == 400
    assert b"<Code>InvalidParameterValue</Code>" in body


def test_a_handlers_answer_is_passed_on_whole():
    def answer(request: Any, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], str]:
        assert url == "http://localhost/" and request.method == "POST" and io.BytesIO(request.data).read() == b"{}"
        return 202, {"x-amzn-requestid": "R1", "Content-Type": "application/x-amz-json-1.1"}, '{"Keys": []}'

    status, headers, body = app_answer(answer)
    assert (status, body) == (202, b'{"Keys": []}')
    assert headers["x-amzn-requestid"] == "R1"
    assert headers["Content-Type"] == "application/x-amz-json-1.1"


def test_routes_are_remembered_per_method_and_path_and_a_miss_is_asked_again(monkeypatch):
    """A path answered once is routed from memory, by its own route; a path no route matches is not
    remembered (501 every time), and the memory holds at most MAX_REMEMBERED_PATHS paths."""
    monkeypatch.setattr(service_app, "MAX_REMEMBERED_PATHS", 3)
    handled: list[str] = []

    def handler_named(name: str) -> Any:
        def handler(request: Any, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], str]:
            handled.append(f"{name} {request.method} {url}")
            return 200, {}, "{}"

        return handler

    app = ServiceApp(
        "backup", {"{0}/vaults/$": handler_named("list"), "{0}/vaults/(?P<name>[^/]+)$": handler_named("one")}
    )
    client = Client(app)
    for path in ["/vaults/", "/vaults/a", "/vaults/", "/vaults/b", "/vaults/c", "/vaults/a"]:
        assert client.get(path, environ_base={SERVICE_KEY: "backup"}).status_code == 200
    assert [line.split(" http")[0] for line in handled] == [
        "list GET",
        "one GET",
        "list GET",
        "one GET",
        "one GET",
        "one GET",
    ]
    assert set(app.endpoints) == {("GET", "/vaults/c"), ("GET", "/vaults/a")}  # full at the fourth: begun again
    for _ in range(2):
        assert client.get("/nothing/here", environ_base={SERVICE_KEY: "backup"}).status_code == 501
    assert ("GET", "/nothing/here") not in app.endpoints
