"""The control API (faults, call counts, clock, direct helpers), over Python
and HTTP, the process mode with its state file, start time and Sign latency."""
import hashlib
import http.client
import json
import os
import time
import urllib.parse

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ConnectionClosedError

from emulator.emulator_process import ControlError, EmulatorProcess, RemoteControl
from emulator.fixtures import boto3_client
from emulator.kms_emulator import Emulator
from emulator.raw_client import kms_request, raw_kms_call, sign

DIGEST = hashlib.sha256(b"payload").digest()


def sign_call(client, key_id):
    return client.sign(KeyId=key_id, Message=DIGEST, MessageType="DIGEST",
                       SigningAlgorithm="ECDSA_SHA_256")


def new_key(client):
    return client.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"][
        "KeyId"]


@pytest.mark.parametrize("fault,status,code", [
    ("throttle", 400, "ThrottlingException"),
    ("500", 500, "KMSInternalException"),
    ("503", 503, "ServiceUnavailableException"),
    ("limit", 400, "LimitExceededException"),
    ("access_denied", 400, "AccessDeniedException"),
])
def test_injected_errors_hit_the_next_calls_only(kms, kms_client, fault, status, code):
    key_id = new_key(kms_client)
    kms.inject("Sign", fault, count=2)
    for _ in range(2):
        with pytest.raises(ClientError) as excinfo:
            sign_call(kms_client, key_id)
        assert excinfo.value.response["Error"]["Code"] == code
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert sign_call(kms_client, key_id)["KeyId"].endswith(key_id)
    assert kms_client.describe_key(KeyId=key_id)["KeyMetadata"]["KeyId"] == key_id
    assert kms.calls("Sign") == 3 and kms.calls()["CreateKey"] == 1


def test_wildcard_fault_applies_to_any_kms_operation(kms, kms_client):
    kms.inject("*", "throttle", count=2)
    for call in (kms_client.list_keys, kms_client.list_aliases):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert excinfo.value.response["Error"]["Code"] == "ThrottlingException"
    assert kms_client.list_keys()["Keys"] == []
    assert kms.calls() == {"ListKeys": 2, "ListAliases": 1}
    kms.reset_calls()
    assert kms.calls() == {}


def test_drop_closes_the_connection_without_answer(kms, kms_client):
    kms.inject("ListKeys", "drop", count=1)
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        kms_client.list_keys()
    assert kms_client.list_keys()["Truncated"] is False
    assert kms.calls("ListKeys") == 2


def test_lost_answer_applies_the_call_then_drops_the_connection(kms, kms_client):
    key = new_key(kms_client)
    kms.inject("CreateAlias", "lost", count=1)
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        kms_client.create_alias(AliasName="alias/lost", TargetKeyId=key)
    aliases = {a["name"]: a["key_id"] for a in kms.state()["aliases"]}
    assert aliases["alias/lost"] == key


@pytest.mark.parametrize("fault,status,code", [
    ("lost_500", 500, "KMSInternalException"),
    ("lost_503", 503, "ServiceUnavailableException"),
])
def test_lost_answer_applies_the_call_then_answers_an_error(kms, fault, status, code):
    old, new = kms.create_key("ECC_NIST_P256"), kms.create_key("ECC_NIST_P256")
    kms.create_alias("alias/moved", old)
    kms.inject("UpdateAlias", fault, count=1)
    answer = raw_kms_call(kms, "UpdateAlias", {"AliasName": "alias/moved", "TargetKeyId": new})
    assert (answer[0], answer[1]["__type"]) == (status, code)
    aliases = {a["name"]: a["key_id"] for a in kms.state()["aliases"]}
    assert aliases["alias/moved"] == new


def test_lost_answer_of_a_failing_call_is_its_own_error(kms):
    kms.inject("UpdateAlias", "lost", count=1)
    answer = raw_kms_call(kms, "UpdateAlias", {"AliasName": "alias/none",
                                               "TargetKeyId": kms.create_key("ECC_NIST_P256")})
    assert (answer[0], answer[1]["__type"]) == (400, "NotFoundException")


def test_lost_answer_faults_are_kms_only(kms):
    with pytest.raises(ValueError):
        kms.inject("GetCallerIdentity", "lost", 1)


def test_latency_delays_then_answers(kms, kms_client):
    kms.inject("ListKeys", "latency", count=1, latency_ms=300)
    started = time.monotonic()
    kms_client.list_keys()
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    kms_client.list_keys()
    assert time.monotonic() - started < 0.3


def test_inject_rejects_unknown_names(kms):
    with pytest.raises(ValueError):
        kms.inject("Sign", "explode", 1)
    with pytest.raises(ValueError):
        kms.inject("Sing", "throttle", 1)


def test_clock_and_dates(kms, kms_client):
    start = kms.now()
    assert abs(start - time.time()) < 1
    kms.advance_clock(86400)
    key_id = new_key(kms_client)
    created = kms_client.describe_key(KeyId=key_id)["KeyMetadata"]["CreationDate"].timestamp()
    assert created - start >= 86400
    kms.set_key_creation_date(key_id, 1000.5)
    described = kms_client.describe_key(KeyId=key_id)["KeyMetadata"]["CreationDate"]
    assert described.timestamp() == 1000.5
    kms_client.create_alias(AliasName="alias/dated", TargetKeyId=key_id)
    kms.set_alias_last_updated("alias/dated", 2000.0)
    alias = kms_client.list_aliases(KeyId=key_id)["Aliases"][0]
    assert alias["LastUpdatedDate"].timestamp() == 2000.0
    kms_client.update_alias(AliasName="alias/dated", TargetKeyId=key_id)
    alias = kms_client.list_aliases(KeyId=key_id)["Aliases"][0]
    assert alias["LastUpdatedDate"].timestamp() >= start + 86400


def test_direct_helpers_and_state(kms, kms_client):
    foreign = kms.create_key("ECC_NIST_P384", "SPIRE_SERVER/other.org", creation_date=5.0)
    kms.create_alias("alias/SPIRE_SERVER/other.org/x/k", foreign, last_updated=7.0)
    kms.disable_key(foreign)
    state = kms.state()
    assert len(state["keys"][0].pop("public_key_sha256")) == 64
    assert state["keys"] == [{
        "id": foreign, "arn": f"arn:aws:kms:us-east-2:111122223333:key/{foreign}",
        "spec": "ECC_NIST_P384", "state": "Disabled", "description": "SPIRE_SERVER/other.org",
        "creation_date": 5.0, "deletion_date": None, "tags": {}}]
    assert state["aliases"][0]["name"] == "alias/SPIRE_SERVER/other.org/x/k"
    assert state["aliases"][0]["last_updated"] == 7.0
    meta = kms_client.describe_key(KeyId="alias/SPIRE_SERVER/other.org/x/k")["KeyMetadata"]
    assert meta["KeyState"] == "Disabled" and meta["CreationDate"].timestamp() == 5.0
    with pytest.raises(ValueError):
        kms.configure(no_such_setting=1)


def test_http_control_api(kms, kms_client):
    remote = RemoteControl(kms.url)
    key_id = remote.create_key(spec="ECC_NIST_P256", description="via http")
    assert kms_client.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "via http"
    remote.inject(operation="DescribeKey", fault="limit", count=1)
    with pytest.raises(ClientError):
        kms_client.describe_key(KeyId=key_id)
    assert remote.calls()["DescribeKey"] == 2
    assert remote.calls(operation="DescribeKey") == 2
    assert remote.advance_clock(seconds=60) >= time.time() + 59
    with pytest.raises(ControlError) as excinfo:
        remote.create_alias(name="alias/x", key_id="11111111-2222-3333-4444-555555555555")
    assert "NotFoundException" in str(excinfo.value)
    with pytest.raises(ControlError):
        remote.no_such_method()


def test_start_is_fast_and_stop_closes_keepalive_connections():
    started = time.perf_counter()
    emulator = Emulator().start()
    elapsed = time.perf_counter() - started
    parts = urllib.parse.urlsplit(emulator.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    request = sign(kms_request(emulator.url, "ListKeys", {}), "AKIDEMULATOR", "emulator-secret")
    connection.request("POST", "/", body=request.body, headers=dict(request.headers.items()))
    assert connection.getresponse().read() == b'{"Keys": [], "Truncated": false}'
    emulator.stop()
    assert elapsed < 0.1
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        connection.request("POST", "/", body=request.body, headers=dict(request.headers.items()))
        connection.getresponse().read()


def test_process_mode_with_state_file(tmp_path):
    state_file = tmp_path / "kms-state.json"
    first = EmulatorProcess(state_file=state_file)
    try:
        client = boto3_client("kms", first)
        key_id = new_key(client)
        client.create_alias(AliasName="alias/persisted", TargetKeyId=key_id)
        public_der = client.get_public_key(KeyId=key_id)["PublicKey"]
        assert first.calls()["CreateKey"] == 1
    finally:
        assert first.stop() == 0
    assert os.stat(state_file).st_mode & 0o777 == 0o600
    second = EmulatorProcess(state_file=state_file)
    try:
        client = boto3_client("kms", second)
        assert client.get_public_key(KeyId="alias/persisted")["PublicKey"] == public_der
        assert sign_call(client, "alias/persisted")["KeyId"].endswith(key_id)
    finally:
        assert second.stop() == 0


def test_kms_process_fixture(kms_process):
    client = boto3_client("kms", kms_process)
    key_id = new_key(client)
    kms_process.inject(operation="Sign", fault="throttle", count=1)
    with pytest.raises(ClientError):
        sign_call(client, key_id)
    assert kms_process.state()["keys"][0]["id"] == key_id
    assert kms_process.plugin_env()["AWS_ACCESS_KEY_ID"] == "AKIDEMULATOR"


def test_sign_answers_on_one_keepalive_connection(kms, kms_client):
    """Every Sign answer comes back on the same TCP connection (the benchmark's
    baseline relies on keep-alive); latency figures live in bench/, not here."""
    key_id = new_key(kms_client)
    body = json.dumps({"KeyId": key_id, "Message": "A" * 43 + "=", "MessageType": "DIGEST",
                       "SigningAlgorithm": "ECDSA_SHA_256"}).encode()
    parts = urllib.parse.urlsplit(kms.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    first_socket = None
    for _ in range(50):
        request = sign(kms_request(kms.url, "Sign", body), "AKIDEMULATOR", "emulator-secret")
        connection.request("POST", "/", body=body, headers=dict(request.headers.items()))
        answer = connection.getresponse()
        data = answer.read()
        assert answer.status == 200, data
        first_socket = first_socket or connection.sock
        assert connection.sock is first_socket
    connection.close()
