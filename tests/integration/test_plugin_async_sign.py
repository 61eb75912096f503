"""SignData does not hold a thread while KMS answers: the completion-queue
thread starts it, the HTTP event thread sends it and answers the gRPC call
when KMS's answer arrives (issue 12). What that changes and what it keeps:
many signatures in flight with 8 workers, cancellation and deadlines ending
the exchange in flight, retries waiting on the event loop's timers, the limit
of calls waiting for KMS, a stop with signatures in flight, and credentials
that need a refresh (in the background) or a wait (on the helper thread) at
the moment of a signature. The clock skew re-sign of the asynchronous path is
in test_aws_clock_skew.py."""
import hashlib
import time

import grpc

from keymanager_helpers import start_configured, verify, wait_until
from pluginhost.host import SERVING

DIGEST = hashlib.sha256(b"the data SPIRE signs").digest()
WORKER_THREADS = 8  # plugin/serve.c


def sign_future(host, key_id="x509-CA-A", timeout=60.0):
    return host.call_future("SignData", host.sign_request(key_id, DIGEST, "SHA256"),
                            timeout=timeout)


def aws_calls(host, operation="Sign"):
    """The plugin's "AWS call" debug lines for one operation."""
    return [r for r in host.log_records()
            if isinstance(r, dict) and r.get("@message") == "AWS call"
            and r.get("operation") == operation]


def debug_plugin(start_plugin, kms, tmp_path, extra_env=None):
    host, _ = start_configured(start_plugin, kms, tmp_path, extra_env=extra_env,
                               extra_hcl='log_level = "debug"')
    key = host.generate_key("x509-CA-A", "EC_P256")
    return host, key


def test_many_signatures_wait_for_a_slow_kms_together(start_plugin, kms, tmp_path):
    host, key = debug_plugin(start_plugin, kms, tmp_path)
    kms.reset_calls()
    kms.inject("Sign", "latency", count=64, latency_ms=3000)
    futures = [sign_future(host) for _ in range(64)]
    # With a worker per call, at most 8 would reach KMS before one is answered.
    wait_until(lambda: kms.calls("Sign") == 64, timeout=30, what="64 Signs in KMS at once")
    assert not any(f.done() for f in futures), "a call was answered before KMS answered"
    assert kms.calls("Sign") > WORKER_THREADS
    for future in futures:
        verify(key.pkix_data, future.result(timeout=30).signature, "SHA256")
    assert kms.calls("Sign") == 64
    assert host.health() == SERVING


def test_cancelled_sign_ends_its_exchange_in_flight(start_plugin, kms, tmp_path):
    host, key = debug_plugin(start_plugin, kms, tmp_path)
    kms.inject("Sign", "latency", count=1, latency_ms=60000)
    future = sign_future(host)
    wait_until(lambda: kms.calls("Sign") == 1, what="the Sign in KMS")
    future.cancel()
    assert future.cancelled()
    # The exchange ends now, not when KMS would answer a minute later.
    ended = wait_until(lambda: aws_calls(host), timeout=20, what="the Sign's end in the log")
    assert ended[0]["result"] == "Cancelled"
    assert ended[0]["attempts"] == "1"
    verify(key.pkix_data, host.sign_data("x509-CA-A", DIGEST, hash_algorithm="SHA256").signature,
           "SHA256")


def test_deadline_ends_a_sign_in_flight(start_plugin, kms, tmp_path):
    host, _ = debug_plugin(start_plugin, kms, tmp_path)
    kms.inject("Sign", "latency", count=1, latency_ms=60000)
    future = sign_future(host, timeout=1.5)
    assert future.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    ended = wait_until(lambda: aws_calls(host), timeout=20, what="the Sign's end in the log")
    assert ended[0]["result"] in ("Timeout", "Cancelled")
    assert kms.calls("Sign") == 1
    assert host.health() == SERVING


def test_throttled_sign_is_retried_after_backoff(start_plugin, kms, tmp_path):
    host, key = debug_plugin(start_plugin, kms, tmp_path)
    kms.reset_calls()
    kms.inject("Sign", "throttle", count=2)
    signed = host.sign_data("x509-CA-A", DIGEST, hash_algorithm="SHA256")
    verify(key.pkix_data, signed.signature, "SHA256")
    assert kms.calls("Sign") == 3
    [call] = wait_until(lambda: aws_calls(host), what="the Sign's end in the log")
    assert (call["result"], call["attempts"]) == ("OK", "3")


def test_retries_end_with_the_error_after_max_attempts(start_plugin, kms, tmp_path):
    host, _ = debug_plugin(start_plugin, kms, tmp_path)
    kms.reset_calls()
    kms.inject("Sign", "503", count=3)
    future = sign_future(host)
    assert future.code() == grpc.StatusCode.UNAVAILABLE
    assert "ServiceUnavailableException" in future.details()
    assert kms.calls("Sign") == 3
    [call] = wait_until(lambda: aws_calls(host), what="the Sign's end in the log")
    assert call["attempts"] == "3"


def test_cancel_during_backoff_ends_the_call(start_plugin, kms, tmp_path):
    host, _ = debug_plugin(start_plugin, kms, tmp_path, extra_env={"AWS_MAX_ATTEMPTS": "10"})
    kms.reset_calls()
    kms.inject("Sign", "throttle", count=100)
    future = sign_future(host)
    wait_until(lambda: kms.calls("Sign") >= 2, what="a retried Sign")
    future.cancel()
    ended = wait_until(lambda: aws_calls(host), timeout=20, what="the Sign's end in the log")
    assert ended[0]["result"] == "Cancelled"
    assert int(ended[0]["attempts"]) < 10


def test_calls_waiting_for_kms_are_limited(start_plugin, kms, tmp_path):
    host, key = debug_plugin(start_plugin, kms, tmp_path, extra_env={"KM_MAX_ASYNC_CALLS": "16"})
    kms.reset_calls()
    kms.inject("Sign", "latency", count=16, latency_ms=3000)
    blockers = [sign_future(host) for _ in range(16)]
    wait_until(lambda: kms.calls("Sign") == 16, what="16 Signs in KMS")
    refused = [sign_future(host) for _ in range(20)]
    for future in refused:
        assert future.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "busy" in future.details()
    assert kms.calls("Sign") == 16
    for future in blockers:
        verify(key.pkix_data, future.result(timeout=30).signature, "SHA256")
    verify(key.pkix_data, host.sign_data("x509-CA-A", DIGEST, hash_algorithm="SHA256").signature,
           "SHA256")


def test_stop_with_signatures_in_flight(start_plugin, kms, tmp_path):
    host, _ = debug_plugin(start_plugin, kms, tmp_path)
    kms.inject("Sign", "latency", count=16, latency_ms=60000)
    futures = [sign_future(host) for _ in range(16)]
    wait_until(lambda: kms.calls("Sign") == 16, what="16 Signs in KMS")
    host.shutdown()
    # The drain gives calls 5 s, then they are cancelled: far before KMS answers.
    assert host.wait(20) == 0
    host.drain_output()
    for future in futures:
        assert future.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
    ended = aws_calls(host)
    assert len(ended) == 16 and {c["result"] for c in ended} == {"Cancelled"}
    assert host.sanitizer_reports() == []


def container_plugin(start_plugin, kms, tmp_path):
    env = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None,
           "AWS_CONTAINER_CREDENTIALS_FULL_URI": kms.container_url,
           "AWS_CONTAINER_AUTHORIZATION_TOKEN": kms.container_token,
           "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
           "AWS_CONFIG_FILE": str(tmp_path / "no-config")}
    return debug_plugin(start_plugin, kms, tmp_path, extra_env=env)


def test_credentials_due_for_refresh_are_refreshed_in_the_background(start_plugin, kms, tmp_path):
    # Credentials that expire in 2 minutes are within the 5-minute refresh
    # window from the start: each signature finds them due, signs with them
    # and leaves the refresh to the helper thread.
    kms.configure(temp_credential_seconds=120)
    host, key = container_plugin(start_plugin, kms, tmp_path)
    fetched = kms.calls("container_credentials")
    for _ in range(3):
        verify(key.pkix_data,
               host.sign_data("x509-CA-A", DIGEST, hash_algorithm="SHA256").signature, "SHA256")
    wait_until(lambda: kms.calls("container_credentials") > fetched,
               what="a refresh after the signatures")
    assert host.health() == SERVING


def test_expired_credentials_are_waited_for_off_the_event_thread(start_plugin, kms, tmp_path):
    kms.configure(temp_credential_seconds=3)
    host, key = container_plugin(start_plugin, kms, tmp_path)
    fetched = kms.calls("container_credentials")
    issued_at = time.time()
    # Until the last credentials fetched have expired (a condition on the
    # clock: nothing else would end them).
    wait_until(lambda: time.time() > issued_at + 4, what="the credentials' expiry")
    signed = host.sign_data("x509-CA-A", DIGEST, hash_algorithm="SHA256")
    verify(key.pkix_data, signed.signature, "SHA256")
    assert kms.calls("container_credentials") > fetched
    [call] = wait_until(lambda: aws_calls(host), what="the Sign's end in the log")
    assert call["result"] == "OK"
