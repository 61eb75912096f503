"""Integration tests of the C AWS layer (src/aws: HTTP pool, endpoints, KMS/STS
operations, standard-mode retries) through tests/tools/aws_probe against the
KMS emulator, which verifies SigV4 and validates every request against
botocore's KMS model. Each test checks both what the probe reports and what
the emulator saw (requests counted per operation)."""
import base64
import hashlib
import http.server
import json
import ssl
import subprocess
import threading
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

from tls_helpers import make_certificate

from aws_probe_helpers import REGION, SECRET, base_env
from aws_probe_helpers import probe, probe_binary  # noqa: F401 (pytest fixtures)


def one_call_each(kms, *operations):
    calls = kms.calls()
    for operation in operations:
        assert calls.get(operation) == 1, calls


# --- operations ------------------------------------------------------------------

def test_key_lifecycle_each_operation_once(probe, kms):
    key = probe.ok("create-key", "ECC_NIST_P256", "SPIRE_SERVER/example.org")
    key_id = key["key_id"]
    assert key["key_spec"] == "ECC_NIST_P256" and key["enabled"] and key["key_state"] == "Enabled"
    assert key["arn"].endswith(f":key/{key_id}") and key["key_manager"] == "CUSTOMER"
    assert abs(key["creation_date"] - kms.now()) < 60

    described = probe.ok("describe-key", key_id)
    assert described["description"] == "SPIRE_SERVER/example.org"

    public = probe.ok("get-public-key", key_id)
    assert public["key_spec"] == "ECC_NIST_P256" and public["key_id"] == key["arn"]
    public_key = serialization.load_der_public_key(base64.b64decode(public["der_b64"]))
    assert public["der_len"] == len(base64.b64decode(public["der_b64"]))

    digest = hashlib.sha256(b"to be signed").digest()
    signed = probe.ok("sign", key_id, "ECDSA_SHA_256", digest.hex())
    signature = base64.b64decode(signed["signature_b64"])
    assert signed["signature_len"] == len(signature)
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
    public_key.verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))

    probe.ok("create-alias", "alias/SPIRE_SERVER/td/s1/k1", key_id)
    other = probe.ok("create-key", "RSA_2048")["key_id"]
    probe.ok("update-alias", "alias/SPIRE_SERVER/td/s1/k1", other)
    aliases = probe.ok("list-aliases", other)["aliases"]
    assert [a["alias_name"] for a in aliases] == ["alias/SPIRE_SERVER/td/s1/k1"]
    assert aliases[0]["target_key_id"] == other and aliases[0]["last_updated_date"] > 0
    probe.ok("tag-resource", key_id, "spire-td", "example.org")
    probe.ok("delete-alias", "alias/SPIRE_SERVER/td/s1/k1")
    probe.ok("schedule-key-deletion", key_id, "7")
    probe.ok("list-keys")

    state = kms.state()
    by_id = {k["id"]: k for k in state["keys"]}
    assert by_id[key_id]["state"] == "PendingDeletion"
    assert by_id[key_id]["tags"].get("spire-td") == "example.org"
    assert by_id[key_id]["tags"].get("spire-probe") == "yes"  # CreateKey Tags
    assert not any(a["name"] == "alias/SPIRE_SERVER/td/s1/k1" for a in state["aliases"])
    one_call_each(kms, "DescribeKey", "GetPublicKey", "Sign", "CreateAlias", "UpdateAlias",
                  "ListAliases", "TagResource", "DeleteAlias", "ScheduleKeyDeletion", "ListKeys")
    assert kms.calls("CreateKey") == 2


@pytest.mark.parametrize("spec,algorithm", [("RSA_2048", "RSASSA_PSS_SHA_256"),
                                            ("RSA_4096", "RSASSA_PKCS1_V1_5_SHA_256"),
                                            ("ECC_NIST_P384", "ECDSA_SHA_384")])
def test_every_key_spec_signs(probe, spec, algorithm):
    key_id = probe.ok("create-key", spec)["key_id"]
    public = serialization.load_der_public_key(
        base64.b64decode(probe.ok("get-public-key", key_id)["der_b64"]))
    hash_class = hashes.SHA384 if algorithm.endswith("384") else hashes.SHA256
    digest = hashlib.new(hash_class.name, b"msg").digest()
    signature = base64.b64decode(probe.ok("sign", key_id, algorithm, digest.hex())["signature_b64"])
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
    if spec.startswith("ECC"):
        public.verify(signature, digest, ec.ECDSA(Prehashed(hash_class())))
    elif "PSS" in algorithm:
        public.verify(signature, digest,
                      padding.PSS(padding.MGF1(hash_class()), hash_class.digest_size),
                      Prehashed(hash_class()))
    else:
        public.verify(signature, digest, padding.PKCS1v15(), Prehashed(hash_class()))


def test_caller_identity_over_sts(probe, kms):
    identity = probe.ok("caller-identity", env={"AWS_ENDPOINT_URL_STS": kms.url})
    assert identity == {"account": "111122223333", "user_id": "AKIDEMULATOR",
                        "arn": "arn:aws:iam::111122223333:user/emulator"}
    assert kms.calls("GetCallerIdentity") == 1


# --- error mapping -------------------------------------------------------------------

def check_error(out, status, code, http_status=400, attempts=1):
    error = out["error"]
    assert (error["status"], error["code"]) == (status, code), error
    assert error["http_status"] == http_status and error["attempts"] == attempts, error
    assert error["message"] and len(error["request_id"]) > 10, error


def test_typed_errors(probe, kms):
    check_error(probe.error("describe-key", "1234abcd-12ab-34cd-56ef-1234567890ab"),
                "NotFound", "NotFoundException")
    key_id = kms.create_key("ECC_NIST_P256")
    probe.ok("create-alias", "alias/dup", key_id)
    check_error(probe.error("create-alias", "alias/dup", key_id),
                "AlreadyExists", "AlreadyExistsException")
    check_error(probe.error("create-alias", "alias/aws/mine", key_id),
                "AccessDenied", "NotAuthorizedException")
    check_error(probe.error("create-alias", "no-prefix", key_id),
                "Validation", "ValidationException")
    check_error(probe.error("sign", key_id, "RSASSA_PSS_SHA_256", "00" * 32),
                "Validation", "InvalidKeyUsageException")
    kms.disable_key(key_id)
    check_error(probe.error("sign", key_id, "ECDSA_SHA_256", "00" * 32),
                "Disabled", "DisabledException")
    pending = kms.create_key("ECC_NIST_P256")
    probe.ok("schedule-key-deletion", pending, "7")
    check_error(probe.error("sign", pending, "ECDSA_SHA_256", "00" * 32),
                "InvalidState", "KMSInvalidStateException")
    check_error(probe.error("schedule-key-deletion", key_id, "3"),
                "Validation", "ValidationException")


def test_wrong_secret_is_access_denied(probe, kms):
    out = probe.error("list-keys", keys=False,
                      options=["--access-key", "AKIDEMULATOR", "--secret-key", "wrong"])
    check_error(out, "AccessDenied", "InvalidSignatureException")
    out = probe.error("list-keys", keys=False,
                      options=["--access-key", "AKIDUNKNOWN", "--secret-key", "wrong"])
    check_error(out, "AccessDenied", "UnrecognizedClientException")


def test_injected_access_denied_and_limit_are_not_retried(probe, kms):
    kms.inject("ListKeys", "access_denied", 5)
    check_error(probe.error("list-keys"), "AccessDenied", "AccessDeniedException")
    assert kms.calls("ListKeys") == 1
    kms.clear_faults()
    kms.reset_calls()
    kms.inject("CreateKey", "limit", 5)
    check_error(probe.error("create-key", "ECC_NIST_P256"), "LimitExceeded",
                "LimitExceededException")
    assert kms.calls("CreateKey") == 1


# --- pagination -------------------------------------------------------------------------

def test_pagination_follows_markers(probe, kms):
    created = {kms.create_key("ECC_NIST_P256") for _ in range(5)}
    for i, key_id in enumerate(sorted(created)[:2]):
        kms.create_alias(f"alias/page/{i}", key_id)
    page = probe.ok("list-keys", options=["--limit", "2"])
    assert len(page["keys"]) == 2 and page["truncated"] and page["next_marker"]
    second = probe.ok("list-keys", options=["--limit", "2", "--marker", page["next_marker"]])
    assert not {k["key_id"] for k in page["keys"]} & {k["key_id"] for k in second["keys"]}
    kms.reset_calls()
    everything = probe.ok("list-keys", options=["--limit", "2", "--all"])
    assert {k["key_id"] for k in everything["keys"]} == created
    assert everything["pages"] == 3 and kms.calls("ListKeys") == 3
    aliases = probe.ok("list-aliases", options=["--limit", "3", "--all"])
    names = [a["alias_name"] for a in aliases["aliases"]]
    assert len(names) == len(set(names)) == 10 + 2  # AWS managed aliases and ours
    assert {"alias/page/0", "alias/page/1"} <= set(names)
    assert aliases["pages"] == -(-len(names) // 3)


# --- retries --------------------------------------------------------------------------------

def test_throttled_twice_then_success(probe, kms):
    key_id = kms.create_key("ECC_NIST_P256")
    kms.inject("Sign", "throttle", 2)
    out = probe.run("sign", key_id, "ECDSA_SHA_256", "11" * 32)
    assert out["ok"] and out["attempts"] == 3 and out["http_requests"] == 3
    assert kms.calls("Sign") == 3
    assert out["connections_opened"] == 1  # the retries reused the connection


@pytest.mark.parametrize("fault,status,code", [("500", 500, "KMSInternalException"),
                                               ("503", 503, "ServiceUnavailableException")])
def test_server_error_storm_is_bounded(probe, kms, fault, status, code):
    kms.inject("DescribeKey", fault, 100)
    started = time.monotonic()
    out = probe.error("describe-key", "k")
    elapsed = time.monotonic() - started
    check_error(out, "ServerError", code, http_status=status, attempts=3)
    assert kms.calls("DescribeKey") == 3
    assert elapsed < 1 + 2 + 5  # two backoffs of at most 1 s and 2 s, plus slack


def test_max_attempts_option(probe, kms):
    kms.inject("ListKeys", "throttle", 100)
    out = probe.error("list-keys", options=["--max-attempts", "5"])
    check_error(out, "Throttled", "ThrottlingException", attempts=5)
    assert kms.calls("ListKeys") == 5
    kms.reset_calls()
    out = probe.error("list-keys", options=["--max-attempts", "1"])
    assert out["error"]["attempts"] == 1 and kms.calls("ListKeys") == 1


def test_dropped_connection_is_retried(probe, kms):
    kms.inject("ListAliases", "drop", 1)
    out = probe.run("list-aliases")
    assert out["ok"] and out["attempts"] == 2 and kms.calls("ListAliases") == 2
    assert out["connections_opened"] == 2  # the dropped one could not be reused


def test_dropped_connections_exhaust_attempts(probe, kms):
    kms.inject("ListAliases", "drop", 10)
    out = probe.error("list-aliases")
    assert out["error"]["status"] == "TransportError" and out["error"]["attempts"] == 3
    assert out["error"]["http_status"] == 0 and kms.calls("ListAliases") == 3


def test_slow_answer_times_out_and_is_retried(probe, kms):
    kms.inject("ListKeys", "latency", 1, latency_ms=1500)
    out = probe.run("list-keys", options=["--timeout-ms", "300"])
    assert out["ok"] and out["attempts"] == 2 and kms.calls("ListKeys") == 2
    kms.reset_calls()
    kms.inject("ListKeys", "latency", 3, latency_ms=1500)
    out = probe.error("list-keys", options=["--timeout-ms", "300"])
    assert out["error"]["status"] == "Timeout" and out["error"]["attempts"] == 3


def test_deadline_bounds_the_call(probe, kms):
    kms.inject("ListKeys", "latency", 5, latency_ms=3000)
    started = time.monotonic()
    out = probe.error("list-keys", options=["--deadline-ms", "400"])
    assert time.monotonic() - started < 2.5
    assert out["error"]["status"] == "Timeout"


def test_cancellation_during_backoff(probe, kms):
    kms.inject("ListKeys", "throttle", 100)
    started = time.monotonic()
    out = probe.error("list-keys", options=["--max-attempts", "12", "--cancel-after-ms", "300"])
    assert out["error"]["status"] == "Cancelled", out
    assert time.monotonic() - started < 3
    assert kms.calls("ListKeys") == out["error"]["attempts"] < 12


def test_cancellation_aborts_a_request_in_flight(probe, kms):
    """A cancelled call stops waiting on the network instead of running to its timeout."""
    kms.inject("ListKeys", "latency", 1, latency_ms=5000)
    started = time.monotonic()
    out = probe.error("list-keys", options=["--timeout-ms", "10000", "--cancel-after-ms", "300"])
    assert out["error"]["status"] == "Cancelled", out
    assert out["error"]["attempts"] == 1
    assert time.monotonic() - started < 4


# --- signing with session tokens -------------------------------------------------------------

def test_session_token_signed_and_checked(probe, kms):
    kms.add_credentials("ASIATEMPORARY", "temporary-secret", session_token="token/with+and=")
    env = {"AWS_ACCESS_KEY_ID": "ASIATEMPORARY", "AWS_SECRET_ACCESS_KEY": "temporary-secret",
           "AWS_SESSION_TOKEN": "token/with+and="}
    assert probe.run("list-keys", keys=False, env=env)["ok"]
    identity = probe.ok("caller-identity", keys=False,
                        env=dict(env, AWS_ENDPOINT_URL_STS=kms.url))
    assert identity["user_id"] == "ASIATEMPORARY"
    env["AWS_SESSION_TOKEN"] = "another-token"
    out = probe.error("list-keys", keys=False, env=env)
    assert out["error"]["status"] == "AccessDenied"
    del env["AWS_SESSION_TOKEN"]
    out = probe.error("list-keys", keys=False, env=env)
    assert out["error"]["status"] == "AccessDenied"


def test_no_secret_in_output(probe, kms):
    kms.add_credentials("ASIASECRETCHECK", "s3cr3t-value-xyz", session_token="t0ken-value-xyz")
    env = {"AWS_ACCESS_KEY_ID": "ASIASECRETCHECK", "AWS_SECRET_ACCESS_KEY": "s3cr3t-value-xyz",
           "AWS_SESSION_TOKEN": "t0ken-value-xyz", "AWS_ENDPOINT_URL_STS": kms.url}
    kms.inject("ListKeys", "throttle", 1)
    for args in (["list-keys"], ["describe-key", "nope"], ["caller-identity"]):
        probe.run(*args, keys=False, env=env, options=["--log-level", "debug"])
        text = probe.last_stdout + probe.last_stderr
        assert "AWS call" in probe.last_stderr  # the debug line is there...
        assert "s3cr3t-value-xyz" not in text and "t0ken-value-xyz" not in text  # ...no secret
    probe.run("describe-key", "nope", options=["--log-level", "trace"])
    assert SECRET not in probe.last_stdout + probe.last_stderr
    line = next(json.loads(l) for l in probe.last_stderr.splitlines() if "AWS call" in l)
    assert line["operation"] == "DescribeKey" and line["attempts"] == "1"
    assert line["http_status"] == "400" and line["request_id"]


# --- connections, proxies, TLS ------------------------------------------------------------------

def test_keep_alive_reuse(probe, kms):
    key_id = kms.create_key("ECC_NIST_P256")
    out = probe.run("repeat", "50", "describe-key", key_id)
    assert out["ok"] and out["result"]["failures"] == 0
    assert out["http_requests"] == 50 and out["connections_opened"] == 1


def test_pool_across_threads(probe, kms):
    key_id = kms.create_key("ECC_NIST_P256")
    out = probe.run("repeat", "60", "sign", key_id, "ECDSA_SHA_256", "22" * 32,
                    options=["--threads", "6", "--pool-size", "2"])
    assert out["ok"] and out["http_requests"] == 60
    assert 1 <= out["connections_opened"] <= 2
    assert kms.calls("Sign") == 60


DEAD_PROXY = "http://127.0.0.1:9"


def test_proxy_variables_are_honoured(probe, kms):
    proxies = {"http_proxy": DEAD_PROXY, "HTTPS_PROXY": DEAD_PROXY, "ALL_PROXY": DEAD_PROXY}
    out = probe.error("list-keys", env=proxies)
    assert out["error"]["status"] == "TransportError"
    assert kms.calls("ListKeys") == 0  # never reached: it went to the proxy
    assert probe.run("list-keys", env=dict(proxies, NO_PROXY="localhost,127.0.0.1"))["ok"]
    assert probe.run("list-keys", env=dict(proxies, no_proxy="127.0.0.1"))["ok"]
    assert kms.calls("ListKeys") == 2


class _TlsHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"Keys":[],"Truncated":false}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", "tls-request-0001")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_tls_is_verified_and_ca_bundle_used(probe_binary, tmp_path):
    cert_path, key_path = make_certificate(tmp_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TlsHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}"
        command = [probe_binary, "--endpoint", url, "--region", REGION, "--access-key", "AKID",
                   "--secret-key", "x", "--max-attempts", "1"]
        env = base_env(tmp_path)
        done = subprocess.run(command + ["list-keys"], env=env, capture_output=True, text=True,
                              timeout=30)
        out = json.loads(done.stdout)
        assert not out["ok"] and out["error"]["status"] == "TransportError"
        assert "certificate" in out["error"]["message"].lower()
        done = subprocess.run(command + ["--ca-bundle", cert_path, "list-keys"], env=env,
                              capture_output=True, text=True, timeout=30)
        out = json.loads(done.stdout)
        assert out["ok"], out
    finally:
        server.shutdown()
        server.server_close()


def test_bad_region_is_refused_before_any_request(probe, kms):
    out = probe.run("list-keys", options=["--region", "us-east-2; rm"])
    assert not out["ok"] and out["error"]["status"] == "Validation"
    assert "region" in out["error"]["message"] and kms.calls() == {}


def test_non_json_answer_is_bad_response(probe_binary, tmp_path):
    class Handler(_TlsHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = b"<html>captive portal</html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        done = subprocess.run([probe_binary, "--endpoint", url, "--region", REGION,
                               "--access-key", "AKID", "--secret-key", "x", "describe-key", "k"],
                              env=base_env(tmp_path), capture_output=True, text=True, timeout=30)
        out = json.loads(done.stdout)
        assert out["error"]["status"] == "BadResponse" and out["error"]["attempts"] == 1
        assert "DescribeKey" in out["error"]["message"]
    finally:
        server.shutdown()
        server.server_close()
