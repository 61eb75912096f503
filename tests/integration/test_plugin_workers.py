"""Calls that reach KMS never hold the completion-queue thread (Configure and
GenerateKey run on the worker pool, SignData waits for KMS without a thread):
a slow SignData never delays cheap calls; a client that gives up on an
in-flight KMS call leaks nothing; a full worker queue answers
RESOURCE_EXHAUSTED; answers carry the keymanager's results."""
import hashlib
import time

import grpc

from pluginhost.host import SERVING, key_type, km_pb2


def configure(host, kms):
    host.configure(f'region = "us-east-2"\n\nkey_metadata_file = "./key_metadata"\n\n'
                   f'endpoint = "{kms.url}"')


def test_keymanager_answers_map_to_protobuf(start_plugin, kms, tmp_path):
    host = start_plugin(extra_env=dict(kms.plugin_env(), AWS_ENDPOINT_URL=kms.url), cwd=str(tmp_path))
    configure(host, kms)
    generated = host.generate_key("x509-CA-A", "EC_P256")
    assert generated.id == "x509-CA-A" and generated.type == 1
    assert generated.fingerprint == hashlib.sha256(generated.pkix_data).hexdigest()
    fetched = host.get_public_key("x509-CA-A")
    assert fetched == generated
    assert [key.id for key in host.get_public_keys()] == ["x509-CA-A"]
    signed = host.sign_data("x509-CA-A", hashlib.sha256(b"x").digest(), hash_algorithm="SHA256")
    assert signed.signature and signed.key_fingerprint == generated.fingerprint
    with grpc_error() as error:
        host.get_public_key("")
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details == "key id is required"


class grpc_error:
    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        assert isinstance(value, grpc.RpcError), "expected a gRPC error"
        self.code, self.details = value.code(), value.details()
        return True


def test_slow_sign_data_does_not_delay_cheap_calls(start_plugin, kms, tmp_path):
    host = start_plugin(extra_env=dict(kms.plugin_env(), AWS_ENDPOINT_URL=kms.url), cwd=str(tmp_path))
    configure(host, kms)
    host.generate_key("x509-CA-A", "EC_P256")
    kms.inject("Sign", "latency", count=4, latency_ms=5000)
    digest = hashlib.sha256(b"slow").digest()
    slow = [host.call_future("SignData", host.sign_request("x509-CA-A", digest, "SHA256"))
            for _ in range(4)]
    while kms.calls("Sign") < 4 and not all(f.done() for f in slow):
        time.sleep(0.01)  # polling the emulator until the slow calls reached it
    worst = 0.0
    for _ in range(50):
        started = time.monotonic()
        assert host.health() == SERVING
        assert len(host.get_public_keys()) == 1
        worst = max(worst, time.monotonic() - started)
    assert not all(f.done() for f in slow), "the slow calls were not slow"
    assert worst < 0.5, f"a cheap call waited {worst:.3f} s behind SignData"
    for future in slow:
        assert future.result(timeout=10).signature


def test_cancelled_in_flight_kms_calls_leak_nothing(start_plugin, kms, tmp_path):
    host = start_plugin(extra_env=dict(kms.plugin_env(), AWS_ENDPOINT_URL=kms.url), cwd=str(tmp_path))
    configure(host, kms)
    host.generate_key("x509-CA-A", "EC_P256")
    kms.inject("Sign", "latency", count=8, latency_ms=5000)  # cancelled long before
    digest = hashlib.sha256(b"cancel").digest()
    futures = [host.call_future("SignData", host.sign_request("x509-CA-A", digest, "SHA256"))
               for _ in range(8)]
    futures.append(host.raw_unary_future(
        "/spire.service.common.config.v1.Config/Configure", b"", timeout=30))
    while kms.calls("Sign") < 8:
        time.sleep(0.01)  # polling until the calls are in flight in KMS
    for future in futures:
        future.cancel()
    assert all(f.cancelled() for f in futures[:8])  # the SignData calls were in KMS
    assert futures[8].cancelled() or futures[8].exception(timeout=10) is not None
    assert host.health() == SERVING
    assert host.sign_data("x509-CA-A", digest, hash_algorithm="SHA256").signature
    host.shutdown()
    assert host.wait(5) == 0  # the fixture then fails on any sanitizer report


def test_full_worker_queue_answers_resource_exhausted(start_plugin, kms, tmp_path):
    # Configure and GenerateKey run on the 8 workers (SignData does not: see
    # test_plugin_async_sign.py). 8 GenerateKey calls hold them: the first
    # waits on KMS, the 7 others on the lock that serialises key changes.
    host = start_plugin(extra_env=dict(kms.plugin_env(), AWS_ENDPOINT_URL=kms.url),
                        cwd=str(tmp_path))
    configure(host, kms)
    kms.reset_calls()
    kms.inject("CreateKey", "latency", count=1, latency_ms=4000)
    blockers = [host.call_future("GenerateKey", km_pb2.GenerateKeyRequest(
        key_id=f"key-{i}", key_type=key_type("EC_P256"))) for i in range(8)]
    while kms.calls("CreateKey") < 1:
        time.sleep(0.01)  # polling until the first one waits on KMS
    bad_configure = b"\x0a\x03{{{"  # hcl_configuration "{{{": answered INVALID_ARGUMENT
    flood = [host.raw_unary_future("/spire.service.common.config.v1.Config/Configure",
                                   bad_configure) for _ in range(300)]
    assert host.health() == SERVING
    codes = [future.code() for future in flood]  # waits for every answer
    busy = [f for f in flood if f.code() == grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert busy, "no call was refused with 300 queued behind 8 blocked workers"
    assert "busy" in busy[0].details()
    assert set(codes) <= {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert codes.count(grpc.StatusCode.INVALID_ARGUMENT) >= 256  # the queue's capacity
    for future in blockers:
        assert future.result(timeout=30).public_key.id.startswith("key-")
