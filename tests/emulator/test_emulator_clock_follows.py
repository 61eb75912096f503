"""clock_follows_emulator: answers' Date header and the SigV4 time check follow
the emulator clock (advance_clock), so a client learns KMS's time from the
Date as it would from a real KMS whose clock differs from the host's; by
default both stay on the real clock. Also the fault log (which client a fault
hit) and the public key fingerprint in state()."""
import base64
import email.utils
import hashlib
import json
import time

import pytest

from emulator.emulator_process import EmulatorProcess
from emulator.kms_emulator import Emulator
from emulator.raw_client import kms_request, raw_kms_call, send, sign

TWO_DAYS = 2 * 86400.0


def date_of(headers):
    return email.utils.parsedate_to_datetime(headers["date"]).timestamp()


def list_keys(emulator, when=None, akid=None, secret=None):
    """ListKeys signed at `when` (epoch seconds; None: now); (status, headers, body)."""
    request = kms_request(emulator.url, "ListKeys", {})
    sign(request, akid or emulator.access_key_id, secret or emulator.secret_access_key,
         when=when)
    status, headers, data = send(emulator.url, request)
    return status, headers, json.loads(data) if data else None


def test_by_default_date_and_signature_time_stay_on_the_real_clock(kms):
    kms.advance_clock(TWO_DAYS)
    real = time.time()
    status, headers, _ = list_keys(kms)
    assert status == 200
    assert abs(date_of(headers) - real) < 5
    status, _, body = list_keys(kms, when=kms.now())
    assert status == 400 and body["message"].startswith("Signature not yet current")


@pytest.mark.parametrize("switch", ["constructor", "configure"])
def test_following_the_emulator_clock_refuses_host_time_and_teaches_kms_time(switch):
    emulator = Emulator(clock_follows_emulator=switch == "constructor").start()
    try:
        if switch == "configure":
            emulator.configure(clock_follows_emulator=True)
        emulator.advance_clock(TWO_DAYS)

        status, headers, body = list_keys(emulator)  # signed with the host's time
        assert status == 400
        assert body["__type"] == "InvalidSignatureException"
        assert body["message"].startswith("Signature expired")
        learned = date_of(headers)
        assert abs(learned - emulator.now()) < 5

        status, headers, body = list_keys(emulator, when=learned)  # re-signed on KMS's time
        assert status == 200 and body["Keys"] == []
        assert abs(date_of(headers) - emulator.now()) < 5
    finally:
        emulator.stop()


def test_following_in_process_mode_and_fault_log_over_http():
    process = EmulatorProcess(clock_follows_emulator=True)
    try:
        process.advance_clock(seconds=TWO_DAYS)
        status, _, _ = list_keys(process)
        assert status == 400
        process.inject(operation="ListKeys", fault="throttle", count=1)
        status, _, _ = list_keys(process, when=process.now())
        assert status == 400
        log = process.fault_log()
        assert [(e["seq"], e["operation"], e["fault"], e["akid"]) for e in log] == [
            (1, "ListKeys", "throttle", "AKIDEMULATOR")]
        assert process.fault_log(since=1) == []
    finally:
        process.stop()


def test_fault_log_names_the_client_each_fault_hit(kms):
    kms.add_credentials("AKIDSECOND", "second-secret")
    kms.inject("ListKeys", "500", count=2)
    kms.inject("CreateKey", "lost", count=1)
    assert list_keys(kms)[0] == 500
    assert list_keys(kms, akid="AKIDSECOND", secret="second-secret")[0] == 500
    assert list_keys(kms)[0] == 200
    with pytest.raises(ConnectionError):
        raw_kms_call(kms, "CreateKey", {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"})
    log = kms.fault_log()
    assert [(e["operation"], e["fault"], e["akid"]) for e in log] == [
        ("ListKeys", "500", "AKIDEMULATOR"), ("ListKeys", "500", "AKIDSECOND"),
        ("CreateKey", "lost", "AKIDEMULATOR")]
    assert [e["seq"] for e in kms.fault_log(since=2)] == [3]
    assert all(log[i]["at"] <= log[i + 1]["at"] for i in range(len(log) - 1))


def test_state_gives_each_key_its_public_key_fingerprint(kms):
    key_id = kms.create_key("ECC_NIST_P256")
    status, answer = raw_kms_call(kms, "GetPublicKey", {"KeyId": key_id})
    assert status == 200
    der = base64.b64decode(answer["PublicKey"])
    (key,) = kms.state()["keys"]
    assert key["public_key_sha256"] == hashlib.sha256(der).hexdigest()
