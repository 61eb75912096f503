"""KMS failures: each step of GenerateKey failing leaves no orphan (the new
key is queued for deletion and ends PendingDeletion) and no half state (the
old key, or NOT_FOUND); errors carry the gRPC code and KMS's code and text;
start-up retries a KMS outage within its budget; the deletion queue retries
and logs what it could not finish at shutdown."""
import threading
import time

import grpc
import pytest

from keymanager_helpers import (hcl, key_state, our_aliases, plugin_env, read_server_id, sign,
                                start_configured, verify, wait_until)


def key_ids(kms):
    return {key["id"] for key in kms.state()["keys"]}


def rpc_error(call):
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


@pytest.mark.parametrize("step", ["CreateKey", "GetPublicKey", "CreateAlias"])
def test_first_generate_failing_at_each_step(start_plugin, kms, tmp_path, step):
    host, metadata = start_configured(start_plugin, kms, tmp_path)
    before = key_ids(kms)
    kms.inject(step, "access_denied")
    error = rpc_error(lambda: host.generate_key("x509-CA-A", "EC_P256"))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert f"kms {step} failed: AccessDeniedException" in error.details()
    assert rpc_error(lambda: host.get_public_key("x509-CA-A")).code() == grpc.StatusCode.NOT_FOUND
    assert our_aliases(kms, read_server_id(metadata)) == {}
    created = key_ids(kms) - before
    assert len(created) == (0 if step == "CreateKey" else 1)
    for key_id in created:
        wait_until(lambda k=key_id: key_state(kms, k) == "PendingDeletion", what="orphan deletion")
    # The next attempt works and is a plain first generation.
    key = host.generate_key("x509-CA-A", "EC_P256")
    assert host.get_public_key("x509-CA-A") == key


@pytest.mark.parametrize("step", ["CreateKey", "GetPublicKey", "UpdateAlias"])
def test_rotation_failing_at_each_step_keeps_old_key(start_plugin, kms, tmp_path, step):
    host, metadata = start_configured(start_plugin, kms, tmp_path)
    old = host.generate_key("x509-CA-A", "EC_P256")
    old_kms_key = our_aliases(kms, read_server_id(metadata))["x509-CA-A"]
    before = key_ids(kms)
    kms.inject(step, "access_denied")
    error = rpc_error(lambda: host.generate_key("x509-CA-A", "EC_P256"))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert host.get_public_key("x509-CA-A") == old
    assert our_aliases(kms, read_server_id(metadata))["x509-CA-A"] == old_kms_key
    response = sign(host, "x509-CA-A", "SHA256")
    assert response.key_fingerprint == old.fingerprint
    verify(old.pkix_data, response.signature, "SHA256")
    for key_id in key_ids(kms) - before:
        wait_until(lambda k=key_id: key_state(kms, k) == "PendingDeletion", what="orphan deletion")
    assert key_state(kms, old_kms_key) == "Enabled"


def test_sign_errors_map_to_codes_with_kms_text(start_plugin, kms, tmp_path):
    host, _ = start_configured(start_plugin, kms, tmp_path)
    key = host.generate_key("x509-CA-A", "EC_P256")
    kms.inject("Sign", "throttle", count=3)  # every attempt of the default 3
    error = rpc_error(lambda: sign(host, "x509-CA-A", "SHA256"))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "kms Sign failed: ThrottlingException: Rate exceeded" in error.details()
    assert "request id" in error.details()
    kms.inject("Sign", "access_denied")
    error = rpc_error(lambda: sign(host, "x509-CA-A", "SHA256"))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    kms.inject("Sign", "500", count=1)  # one transient failure: retried inside the call
    response = sign(host, "x509-CA-A", "SHA256")
    verify(key.pkix_data, response.signature, "SHA256")


def test_startup_retries_transient_kms_outage(start_plugin, kms, tmp_path):
    kms.inject("ListAliases", "503", count=4)
    host, _ = start_configured(start_plugin, kms, tmp_path)
    assert kms.calls("ListAliases") >= 5
    assert host.get_public_keys() == []


def test_startup_gives_up_on_unreachable_kms_with_cause(start_plugin, kms, tmp_path):
    host = start_plugin(extra_env=plugin_env(kms, KM_STARTUP_RETRY_MS="1500"), cwd=str(tmp_path))
    host.init()
    started = time.monotonic()
    unreachable = hcl(kms, str(tmp_path / "key_metadata")).replace(kms.url, "http://127.0.0.1:9")
    error = rpc_error(lambda: host.configure(unreachable))
    assert time.monotonic() - started < 20
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "kms ListAliases failed" in error.details()
    assert host.health() == 1
    # A later Configure with a reachable KMS works.
    host.configure(hcl(kms, str(tmp_path / "key_metadata")))


def unreachable_hcl(kms, tmp_path):
    return hcl(kms, str(tmp_path / "key_metadata")).replace(kms.url, "http://127.0.0.1:9")


def test_configure_stops_retrying_at_its_call_deadline(start_plugin, kms, tmp_path):
    """Start-up retries end with the Configure call's deadline, not the longer
    budget: a second Configure right after is not stuck behind the first."""
    host = start_plugin(extra_env=plugin_env(kms, KM_STARTUP_RETRY_MS="120000"), cwd=str(tmp_path))
    host.init()
    started = time.monotonic()
    error = rpc_error(lambda: host.configure(unreachable_hcl(kms, tmp_path), timeout=1.5))
    # The plugin stops at the same deadline: whichever side speaks first, the
    # call ends then, far short of the 120 s budget.
    assert error.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)
    assert time.monotonic() - started < 30
    host.configure(hcl(kms, str(tmp_path / "key_metadata")), timeout=30)
    assert host.get_public_keys() == []


def test_shutdown_cancels_a_configure_that_is_retrying(start_plugin, kms, tmp_path):
    host = start_plugin(extra_env=plugin_env(kms, KM_STARTUP_RETRY_MS="120000"), cwd=str(tmp_path))
    host.init()
    outcome = {}

    def configure():
        try:
            host.configure(unreachable_hcl(kms, tmp_path), timeout=120)
        except grpc.RpcError as error:
            outcome["code"] = error.code()

    worker = threading.Thread(target=configure)
    worker.start()
    wait_until(lambda: any(isinstance(r, dict) and "retrying" in r.get("@message", "")
                           for r in host.log_records()), what="Configure retrying")
    host.shutdown()
    assert host.wait(timeout=30) == 0
    worker.join(timeout=30)
    assert outcome.get("code") is not None
    messages = [r.get("@message", "") for r in host.log_records() if isinstance(r, dict)]
    assert not any("did not finish after the stop" in m for m in messages), messages


def test_startup_fails_at_once_on_access_denied(start_plugin, kms, tmp_path):
    kms.inject("ListAliases", "access_denied", count=100)
    host = start_plugin(extra_env=plugin_env(kms), cwd=str(tmp_path))
    host.init()
    error = rpc_error(lambda: host.configure(hcl(kms, str(tmp_path / "key_metadata"))))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "AccessDeniedException" in error.details()
    assert kms.calls("ListAliases") == 1


def test_deletion_queue_retries_after_kms_error(start_plugin, kms, tmp_path):
    host, metadata = start_configured(start_plugin, kms, tmp_path)
    host.generate_key("x509-CA-A", "EC_P256")
    old_kms_key = our_aliases(kms, read_server_id(metadata))["x509-CA-A"]
    kms.inject("ScheduleKeyDeletion", "access_denied", count=1)
    host.generate_key("x509-CA-A", "EC_P256")
    wait_until(lambda: key_state(kms, old_kms_key) == "PendingDeletion", timeout=15,
               what="deletion after a retry")
    assert kms.calls("ScheduleKeyDeletion") == 2


def test_shutdown_logs_keys_left_undeleted(start_plugin, kms, tmp_path):
    host, metadata = start_configured(start_plugin, kms, tmp_path)
    host.generate_key("x509-CA-A", "EC_P256")
    old_kms_key = our_aliases(kms, read_server_id(metadata))["x509-CA-A"]
    kms.inject("ScheduleKeyDeletion", "access_denied", count=1000)
    host.generate_key("x509-CA-A", "EC_P256")
    wait_until(lambda: kms.calls("ScheduleKeyDeletion") >= 1, what="first deletion attempt")
    started = time.monotonic()
    host.shutdown()
    assert host.wait(10) == 0
    assert time.monotonic() - started < 8
    host.drain_output()
    unfinished = [r for r in host.log_records() if isinstance(r, dict)
                  and r.get("@level") == "warn" and old_kms_key in r.get("key_arn", "")
                  and r.get("@message", "").startswith("Key deletion not scheduled before "
                                                       "shutdown")]
    assert unfinished, host.stderr_text()[-3000:]
