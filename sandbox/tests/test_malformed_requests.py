"""Requests AWS refuses before any operation runs get AWS's error, in the shape of their protocol.

Each case is sent raw (as a broken or hostile client would) and the answer is parsed by botocore's
own parser for that protocol, as an SDK would parse it: the code must be the one AWS uses, the
status a 4xx, and the body never an HTML page.
"""

from __future__ import annotations

import http.client
import socket
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError
from botocore.parsers import create_parser

from runbook_sandbox.accounts import SOURCE
from runbook_sandbox.protocols import model_of

JSON_TYPE = {"Content-Type": "application/x-amz-json-1.1"}
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
GARBAGE = b"\xff\xfe{not a body"

# (case, service whose parser reads the answer, signing service, method, path, headers, body, code, status)
CASES = [
    (
        "json garbage body",
        "kms",
        "kms",
        "POST",
        "/",
        {**JSON_TYPE, "X-Amz-Target": "TrentService.ListKeys"},
        GARBAGE,
        "SerializationException",
        400,
    ),
    (
        "json body not an object",
        "kms",
        "kms",
        "POST",
        "/",
        {**JSON_TYPE, "X-Amz-Target": "TrentService.ListKeys"},
        b"[1, 2]",
        "SerializationException",
        400,
    ),
    (
        "json unknown operation",
        "kms",
        "kms",
        "POST",
        "/",
        {**JSON_TYPE, "X-Amz-Target": "TrentService.MakeCoffee"},
        b"{}",
        "UnknownOperationException",
        400,
    ),
    ("json no target", "kms", "kms", "POST", "/", JSON_TYPE, b"{}", "UnknownOperationException", 400),
    (
        "json unknown service",
        "kms",
        "nosuchservice",
        "POST",
        "/",
        {**JSON_TYPE, "X-Amz-Target": "NoSuchService.Do"},
        b"{}",
        "UnknownOperationException",
        400,
    ),
    ("query garbage body", "sts", "sts", "POST", "/", FORM, GARBAGE, "MissingAction", 400),
    (
        "query unknown action",
        "sts",
        "sts",
        "POST",
        "/",
        FORM,
        b"Action=MakeCoffee&Version=2011-06-15",
        "InvalidAction",
        400,
    ),
    (
        "query unknown action (iam)",
        "iam",
        "iam",
        "POST",
        "/",
        FORM,
        b"Action=MakeCoffee&Version=2010-05-08",
        "InvalidAction",
        400,
    ),
    (
        "query unknown service",
        "sts",
        "nosuchservice",
        "POST",
        "/",
        FORM,
        b"Action=Do&Version=2011-06-15",
        "InvalidAction",
        400,
    ),
    ("ec2 garbage body", "ec2", "ec2", "POST", "/", FORM, GARBAGE, "MissingAction", 400),
    (
        "ec2 unknown action",
        "ec2",
        "ec2",
        "POST",
        "/",
        FORM,
        b"Action=MakeCoffee&Version=2016-11-15",
        "InvalidAction",
        400,
    ),
    (
        "ec2 unknown service",
        "ec2",
        "nosuchservice",
        "POST",
        "/",
        FORM,
        b"Action=Do&Version=2016-11-15",
        "InvalidAction",
        400,
    ),
    (
        "rest-json garbage body",
        "backup",
        "backup",
        "PUT",
        "/backup-vaults/Garbage",
        {"Content-Type": "application/json"},
        GARBAGE,
        "SerializationException",
        400,
    ),
    (
        "rest-json unknown operation",
        "backup",
        "backup",
        "GET",
        "/coffee-machines/",
        {},
        b"",
        "UnknownOperationException",
        404,
    ),
    (
        "rest-json unknown method",
        "backup",
        "backup",
        "DELETE",
        "/backup-jobs/",
        {},
        b"",
        "UnknownOperationException",
        404,
    ),
    (
        "rest-json unknown service",
        "backup",
        "nosuchservice",
        "GET",
        "/things",
        {},
        b"",
        "UnknownOperationException",
        404,
    ),
    (
        "json value of the wrong type",
        "kms",
        "kms",
        "POST",
        "/",
        {**JSON_TYPE, "X-Amz-Target": "TrentService.DescribeKey"},
        b'{"KeyId": {"a": 1}}',
        "ValidationException",
        400,
    ),
    (
        "ec2 value of the wrong type",
        "ec2",
        "ec2",
        "POST",
        "/",
        FORM,
        b"Action=DescribeVolumes&Version=2016-11-15&MaxResults=abc",
        "InvalidParameterValue",
        400,
    ),
    (
        "rest-json value of the wrong type",
        "backup",
        "backup",
        "PUT",
        "/backup-jobs",
        {"Content-Type": "application/json"},
        b'{"BackupVaultName": "V", "ResourceArn": "arn:aws:ec2:us-east-1:222222222222:volume/vol-1", '
        b'"IamRoleArn": "arn:aws:iam::222222222222:role/R", "Lifecycle": {"DeleteAfterDays": "x"}}',
        "ValidationException",
        400,
    ),
]
UNSIGNED = [
    (
        "json unsigned",
        "kms",
        {**JSON_TYPE, "X-Amz-Target": "TrentService.ListKeys"},
        b"{}",
        "MissingAuthenticationTokenException",
    ),
    ("query unsigned", "sts", FORM, b"Action=GetCallerIdentity&Version=2011-06-15", "MissingAuthenticationToken"),
    ("ec2 unsigned", "ec2", FORM, b"Action=DescribeVolumes&Version=2016-11-15", "MissingParameter"),
]


def signed_as_source(service: str) -> dict[str, str]:
    """An Authorization header the sandbox accepts (it checks the key, not the signature)."""
    return {
        "Authorization": f"AWS4-HMAC-SHA256 Credential={SOURCE.access_key_id}/20260101/us-east-1/{service}/"
        "aws4_request, SignedHeaders=host, Signature=0"
    }


def send(endpoint: str, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(endpoint + path, data=body or None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def parsed_error(parser_service: str, status: int, headers: dict, body: bytes) -> dict[str, str]:
    """The error botocore's parser for the service's protocol reads from the answer."""
    model = model_of(parser_service)
    operation = model.operation_model(model.operation_names[0])
    parser = create_parser(model.protocol)
    parsed = parser.parse({"status_code": status, "headers": headers, "body": body}, operation.output_shape)
    return ClientError(parsed, operation.name).response["Error"]


@pytest.mark.parametrize(
    "case, parser_service, service, method, path, headers, body, code, status", CASES, ids=[c[0] for c in CASES]
)
def test_malformed_request_gets_the_protocols_error(
    world, case, parser_service, service, method, path, headers, body, code, status
):
    answered, response_headers, response_body = send(
        world.endpoint, method, path, {**headers, **signed_as_source(service)}, body
    )
    assert answered == status, response_body
    assert b"<html" not in response_body.lower()
    error = parsed_error(parser_service, answered, response_headers, response_body)
    assert error["Code"] == code
    assert error["Message"], "the error says what is wrong"


def test_messages_name_what_is_wrong(world):
    cases = {
        ("kms", "TrentService.MakeCoffee"): "Operation TrentService.MakeCoffee is not known to kms.",
    }
    for (service, target), message in cases.items():
        status, headers, body = send(
            world.endpoint, "POST", "/", {**JSON_TYPE, "X-Amz-Target": target, **signed_as_source(service)}, b"{}"
        )
        assert parsed_error(service, status, headers, body)["Message"] == message
    status, headers, body = send(
        world.endpoint, "POST", "/", {**FORM, **signed_as_source("sts")}, b"Action=MakeCoffee&Version=2011-06-15"
    )
    assert (
        parsed_error("sts", status, headers, body)["Message"] == "Could not find operation MakeCoffee for version "
        "2011-06-15"
    )
    status, headers, body = send(world.endpoint, "GET", "/things", signed_as_source("nosuchservice"), b"")
    assert (
        parsed_error("backup", status, headers, body)["Message"] == "The sandbox does not serve the service "
        "'nosuchservice'."
    )


@pytest.mark.parametrize("case, parser_service, headers, body, code", UNSIGNED, ids=[c[0] for c in UNSIGNED])
def test_unsigned_request_is_refused_in_its_protocol(world, case, parser_service, headers, body, code):
    status, response_headers, response_body = send(world.endpoint, "POST", "/", headers, body)
    assert status == 403
    assert parsed_error(parser_service, status, response_headers, response_body)["Code"] == code


def test_a_well_formed_request_still_works_after_refusals(world, aws):
    send(
        world.endpoint,
        "POST",
        "/",
        {**JSON_TYPE, "X-Amz-Target": "TrentService.ListKeys", **signed_as_source("kms")},
        GARBAGE,
    )
    assert aws.source("kms").list_keys()["Keys"]


def test_a_body_declared_larger_than_any_aws_request_is_refused_unread(world):
    host, port = world.endpoint.removeprefix("http://").split(":")
    headers = {
        **JSON_TYPE,
        "X-Amz-Target": "TrentService.ListKeys",
        **signed_as_source("kms"),
        "Content-Length": "99999999999",
        "Host": f"{host}:{port}",
        "Connection": "close",
    }
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(
            ("POST / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode() + b"{}"
        )
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"413", head
    assert b"<html" not in body.lower()
    assert b"RequestEntityTooLarge" in body


def test_a_chunked_body_over_the_limit_is_refused_without_reading_it_all(world):
    host, port = world.endpoint.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    megabyte = b"x" * (1024 * 1024)
    connection.request(
        "POST",
        "/",
        body=(megabyte for _ in range(17)),
        encode_chunked=True,
        headers={**JSON_TYPE, "X-Amz-Target": "TrentService.ListKeys", **signed_as_source("kms")},
    )
    response = connection.getresponse()
    assert response.status == 413
    assert b"RequestEntityTooLarge" in response.read()
    connection.close()


@pytest.mark.parametrize("length", ["-5", "abc"])
def test_a_content_length_that_is_not_a_whole_number_is_refused_before_any_service(world, length):
    """Read as no body, it was answered 200 with the keys: the server refuses it in one plain line instead
    (no service ever sees it, so the request is not counted either)."""
    host, port = world.endpoint.removeprefix("http://").split(":")
    headers = {**JSON_TYPE, "X-Amz-Target": "TrentService.ListKeys", **signed_as_source("kms")}
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(
            (
                f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {length}\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                + "\r\n{}"
            ).encode()
        )
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n"), head
    assert body == f"The Content-Length must be a non-negative whole number, not '{length}'.\n".encode()
    assert world.stats()["total"] == 0
