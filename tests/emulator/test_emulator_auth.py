"""SigV4 checks, request validation against botocore's model, and that
libcurl's own SigV4 signing (curl --aws-sigv4) is accepted."""
import json
import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from emulator.fixtures import boto3_client
from emulator.raw_client import kms_request, raw_kms_call, send, sign


def test_signed_request_succeeds_and_carries_a_request_id(kms):
    request = sign(kms_request(kms.url, "ListKeys", {}), "AKIDEMULATOR", "emulator-secret")
    status, headers, body = send(kms.url, request)
    assert status == 200 and json.loads(body) == {"Keys": [], "Truncated": False}
    assert len(headers["x-amzn-requestid"]) == 36
    assert headers["content-type"] == "application/x-amz-json-1.1"


@pytest.mark.parametrize("options,code,fragment", [
    ({"secret": "wrong"}, "InvalidSignatureException", "does not match"),
    ({"akid": "AKIDUNKNOWN"}, "UnrecognizedClientException", "security token"),
    ({"region": "us-west-2"}, "InvalidSignatureException", "valid region"),
    ({"service": "sts"}, "InvalidSignatureException", "correct service"),
    ({"when": time.time() - 600}, "InvalidSignatureException", "Signature expired"),
    ({"when": time.time() + 600}, "InvalidSignatureException", "not yet current"),
])
def test_sigv4_rejections(kms, options, code, fragment):
    status, answer = raw_kms_call(kms, "ListKeys", {}, **options)
    assert status == 400 and answer["__type"] == code
    assert fragment in answer["message"]


def test_tampered_body_is_rejected(kms):
    request = sign(kms_request(kms.url, "ListKeys", {}), "AKIDEMULATOR", "emulator-secret")
    headers = dict(request.headers.items())
    status, _, body = send(kms.url, ("POST", "/", headers, b'{"Limit": 5}'))
    assert status == 400 and json.loads(body)["__type"] == "InvalidSignatureException"


def test_missing_and_malformed_authorization(kms):
    headers = {"X-Amz-Target": "TrentService.ListKeys",
               "Content-Type": "application/x-amz-json-1.1"}
    status, answer_headers, body = send(kms.url, ("POST", "/", headers, b"{}"))
    assert status == 400
    assert json.loads(body)["__type"] == "MissingAuthenticationTokenException"
    assert "x-amzn-requestid" in answer_headers
    headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=AKIDEMULATOR/20200101/us-east-2/kms"
    headers["X-Amz-Date"] = "20200101T000000Z"
    status, _, body = send(kms.url, ("POST", "/", headers, b"{}"))
    assert json.loads(body)["__type"] == "IncompleteSignatureException"


def test_session_credentials_need_their_signed_token(kms):
    kms.add_credentials("ASIAEXAMPLE", "temp-secret", session_token="TOKEN-1")
    ok = raw_kms_call(kms, "ListKeys", {}, akid="ASIAEXAMPLE", secret="temp-secret",
                      token="TOKEN-1")
    assert ok[0] == 200
    missing = raw_kms_call(kms, "ListKeys", {}, akid="ASIAEXAMPLE", secret="temp-secret")
    wrong = raw_kms_call(kms, "ListKeys", {}, akid="ASIAEXAMPLE", secret="temp-secret",
                         token="TOKEN-2")
    assert missing[1]["__type"] == wrong[1]["__type"] == "UnrecognizedClientException"
    assert "TOKEN" not in missing[1]["message"] + wrong[1]["message"]
    unsigned = sign(kms_request(kms.url, "ListKeys", {}), "ASIAEXAMPLE", "temp-secret")
    unsigned.headers["X-Amz-Security-Token"] = "TOKEN-1"
    status, _, body = send(kms.url, unsigned)
    assert status == 400 and json.loads(body)["__type"] == "IncompleteSignatureException"


def test_expired_session_credentials(kms):
    kms.add_credentials("ASIAOLD", "old-secret", session_token="T", expiration=time.time() - 1)
    status, answer = raw_kms_call(kms, "ListKeys", {}, akid="ASIAOLD", secret="old-secret",
                                  token="T")
    assert status == 400 and answer["__type"] == "ExpiredTokenException"


def test_boto3_with_wrong_secret_is_refused(kms):
    client = boto3_client("kms", kms, aws_secret_access_key="nope")
    with pytest.raises(ClientError) as excinfo:
        client.list_keys()
    assert excinfo.value.response["Error"]["Code"] == "InvalidSignatureException"


@pytest.mark.parametrize("body,code,fragment", [
    ({}, "ValidationException", "Value null at 'keyId' failed to satisfy constraint: "
                                "Member must not be null"),
    ({"KeyId": "", "GrantTokens": []}, "ValidationException",
     "Member must have length greater than or equal to 1"),
    ({"KeyId": "k" * 2049}, "ValidationException",
     "Member must have length less than or equal to 2048"),
    ({"KeyID": "x"}, "SerializationException", "Unknown member 'KeyID'"),
    ({"KeyId": 7}, "SerializationException", "'keyId'"),
    ({"KeyId": ["x"]}, "SerializationException", "'keyId'"),
])
def test_describe_key_validation(kms, body, code, fragment):
    status, answer = raw_kms_call(kms, "DescribeKey", body)
    assert status == 400 and answer["__type"] == code
    assert fragment in answer["message"]


def test_several_violations_are_reported_together(kms):
    status, answer = raw_kms_call(kms, "ListAliases", {"Limit": 0, "Marker": ""})
    assert status == 400 and answer["__type"] == "ValidationException"
    assert answer["message"].startswith("2 validation errors detected: ")
    assert "Member must have value greater than or equal to 1" in answer["message"]


def test_enum_violation_lists_the_values(kms):
    status, answer = raw_kms_call(kms, "Sign", {"KeyId": "k", "Message": "AA==",
                                                "SigningAlgorithm": "MD5"})
    assert answer["__type"] == "ValidationException"
    assert "Member must satisfy enum value set: [" in answer["message"]
    assert "ECDSA_SHA_256" in answer["message"]


@pytest.mark.parametrize("operation,body,content_type,code", [
    ("ListKeys", b"{not json", "application/x-amz-json-1.1", "SerializationException"),
    ("ListKeys", b"", "application/x-amz-json-1.1", "SerializationException"),
    ("ListKeys", b"[]", "application/x-amz-json-1.1", "SerializationException"),
    ("ListKeys", b"{}", "application/json", "SerializationException"),
    ("Encrypt", b"{}", "application/x-amz-json-1.1", "UnknownOperationException"),
    ("Nonsense", b"{}", "application/x-amz-json-1.1", "UnknownOperationException"),
])
def test_malformed_requests(kms, operation, body, content_type, code):
    request = kms_request(kms.url, operation, body, content_type)
    sign(request, "AKIDEMULATOR", "emulator-secret")
    status, headers, answer = send(kms.url, request)
    assert status == 400 and json.loads(answer)["__type"] == code
    assert "x-amzn-requestid" in headers


def curl_kms(url, user, *extra):
    command = ["curl", "-s", "-w", "\n%{http_code}", "--aws-sigv4", "aws:amz:us-east-2:kms",
               "--user", user, "-H", "X-Amz-Target: TrentService.ListKeys",
               "-H", "Content-Type: application/x-amz-json-1.1", *extra, "-d", "{}", url + "/"]
    output = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)
    body, status = output.stdout.rsplit("\n", 1)
    return int(status), json.loads(body)


def test_curl_aws_sigv4_is_accepted(kms):
    status, body = curl_kms(kms.url, "AKIDEMULATOR:emulator-secret")
    assert status == 200 and body["Truncated"] is False
    status, body = curl_kms(kms.url, "AKIDEMULATOR:bad-secret")
    assert status == 400 and body["__type"] == "InvalidSignatureException"


def test_curl_aws_sigv4_with_a_session_token(kms):
    kms.add_credentials("ASIACURL", "curl-secret", session_token="CURL-TOKEN")
    status, _ = curl_kms(kms.url, "ASIACURL:curl-secret", "-H", "X-Amz-Security-Token: CURL-TOKEN")
    assert status == 200
    status, body = curl_kms(kms.url, "ASIACURL:curl-secret")
    assert status == 400 and body["__type"] == "UnrecognizedClientException"
