"""Clock skew through the real binaries: the probes and the plugin run with
their wall clock 20 minutes fast or slow (libfaketime from Debian's faketime
package, FAKETIME="+20m"/"-20m"), while the emulator keeps the real time and
refuses signatures more than 5 minutes off. The monotonic clock stays real
(FAKETIME_DONT_FAKE_MONOTONIC=1): deadlines, backoff sleeps, the plugin's
timed condition waits and gRPC's timers keep working. Each binary learns the
offset from the first answer's Date, signs that call again once, keeps the
offset for later calls, logs it once at warn, and judges credential expiry on
the corrected clock."""
import glob
import hashlib
import json
import os
import subprocess

import pytest

from keymanager_helpers import TD_PREFIX, start_configured, verify, wait_until

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD_DIR = os.path.abspath(os.path.join(os.path.dirname(TESTS_DIR),
                                         os.environ.get("KM_BUILD_DIR", "build")))
KMS_PROBE = os.path.join(BUILD_DIR, "tests", "tools", "aws_probe")
CREDPROBE = os.path.join(BUILD_DIR, "tests", "tools", "aws_credprobe")
REGION = "us-east-2"
SKEWS = {"+20m": -1200, "-20m": 1200}  # FAKETIME -> AWS's time minus the host's
SKEW_WARNING = "the host clock differs from AWS's"
ROLE_ARN = "arn:aws:iam::111122223333:role/spire-server"


def libfaketime():
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    if not found:
        pytest.fail("libfaketime is missing: install the Debian package faketime "
                    "(scripts/install-deps.sh)")
    return found[0]


def faketime_env(offset):
    """The variables that run a process with its wall clock moved by offset."""
    asan = os.environ.get("ASAN_OPTIONS", "")
    return {
        "LD_PRELOAD": libfaketime(),
        "FAKETIME": offset,
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        # ASan wants to be first in the library list; libfaketime before it is fine.
        "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0",
    }


def skew_warnings(stderr):
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [entry for entry in lines if entry["@message"].startswith(SKEW_WARNING)]


def assert_one_warning(warnings, expected_offset, endpoint):
    assert len(warnings) == 1, warnings
    assert warnings[0]["@level"] == "warn"
    assert abs(int(warnings[0]["offset_seconds"]) - expected_offset) <= 5, warnings[0]
    assert warnings[0]["endpoint"].startswith(endpoint), warnings[0]


def run_tool(command, env, timeout=60):
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    return completed


@pytest.fixture
def base_env(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
            "AWS_EC2_METADATA_DISABLED": "true"}


def test_faketime_moves_the_wall_clock_only(base_env):
    """The premise: under the preloaded library, date(1) is 20 minutes ahead."""
    env = dict(base_env, **faketime_env("+20m"))
    moved = int(run_tool(["date", "+%s"], env).stdout)
    real = int(run_tool(["date", "+%s"], base_env).stdout)
    assert 1190 <= moved - real <= 1210


@pytest.mark.parametrize("offset", sorted(SKEWS))
def test_kms_calls_correct_the_clock_once_and_keep_it(kms, base_env, offset):
    env = dict(base_env, **kms.plugin_env(), **faketime_env(offset))
    completed = run_tool([KMS_PROBE, "--endpoint", kms.url, "--region", REGION,
                          "repeat", "5", "list-keys"], env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    outcome = json.loads(completed.stdout)
    assert outcome["result"]["failures"] == 0
    assert outcome["result"]["max_attempts"] == 2  # the first call: refused, signed again
    assert kms.calls("ListKeys") == 6  # one refusal, then every call signed right
    assert_one_warning(skew_warnings(completed.stderr), SKEWS[offset], kms.url)


@pytest.mark.parametrize("offset", sorted(SKEWS))
def test_create_and_sign_under_skew(kms, base_env, offset):
    env = dict(base_env, **kms.plugin_env(), **faketime_env(offset))
    created = run_tool([KMS_PROBE, "--endpoint", kms.url, "--region", REGION, "create-key",
                        "ECC_NIST_P256"], env)
    assert created.returncode == 0, created.stdout + created.stderr
    key_id = json.loads(created.stdout)["result"]["key_id"]
    assert len(kms.state()["keys"]) == 1  # the refused request created nothing
    signed = run_tool([KMS_PROBE, "--endpoint", kms.url, "--region", REGION, "sign", key_id,
                       "ECDSA_SHA_256", "00" * 32], env)
    assert signed.returncode == 0, signed.stdout + signed.stderr
    assert json.loads(signed.stdout)["attempts"] == 2


@pytest.mark.parametrize("offset", sorted(SKEWS))
def test_sts_get_caller_identity_under_skew(kms, base_env, offset):
    env = dict(base_env, **kms.plugin_env(), **faketime_env(offset),
               AWS_ENDPOINT_URL_STS=kms.sts_url)
    completed = run_tool([KMS_PROBE, "--endpoint", kms.url, "--region", REGION,
                          "caller-identity"], env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert json.loads(completed.stdout)["attempts"] == 2
    assert kms.calls("GetCallerIdentity") == 2
    assert_one_warning(skew_warnings(completed.stderr), SKEWS[offset], kms.sts_url)


@pytest.mark.parametrize("offset", sorted(SKEWS))
def test_assume_role_under_skew(kms, base_env, tmp_path, offset):
    """A shared profile's role: AssumeRole is signed with the profile's keys."""
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[base]\naws_access_key_id = {kms.access_key_id}\n"
                           f"aws_secret_access_key = {kms.secret_access_key}\n")
    config = tmp_path / "config"
    config.write_text(f"[profile deploy]\nrole_arn = {ROLE_ARN}\nsource_profile = base\n")
    env = dict(base_env, **faketime_env(offset), AWS_SHARED_CREDENTIALS_FILE=str(credentials),
               AWS_CONFIG_FILE=str(config), AWS_PROFILE="deploy")
    completed = run_tool([CREDPROBE, "--region", REGION, "--sts-endpoint", kms.sts_url], env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert json.loads(completed.stdout.splitlines()[0])["has_session_token"] is True
    assert kms.calls("AssumeRole") == 2
    assert_one_warning(skew_warnings(completed.stderr), SKEWS[offset], kms.sts_url)


def web_identity_env(kms, base_env, tmp_path, offset):
    token = tmp_path / "web-token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.skew-test-token.c2ln")
    return dict(base_env, **faketime_env(offset), AWS_WEB_IDENTITY_TOKEN_FILE=str(token),
                AWS_ROLE_ARN=ROLE_ARN)


def test_credentials_valid_on_aws_clock_are_not_expired_when_host_is_fast(kms, base_env,
                                                                          tmp_path):
    """15-minute credentials seen from a host 20 minutes fast look expired on
    arrival; on the corrected clock (learned from STS's Date) they have 15
    minutes left."""
    kms.configure(temp_credential_seconds=900)
    env = web_identity_env(kms, base_env, tmp_path, "+20m")
    completed = run_tool([CREDPROBE, "--region", REGION, "--sts-endpoint", kms.sts_url,
                          "--times", "3"], env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    results = [json.loads(line) for line in completed.stdout.splitlines()]
    assert len({r["access_key_id"] for r in results}) == 1  # fresh: fetched once
    assert kms.calls("AssumeRoleWithWebIdentity") == 1
    assert_one_warning(skew_warnings(completed.stderr), -1200, kms.sts_url)


def test_credentials_near_expiry_on_aws_clock_are_refreshed_when_host_is_slow(kms, base_env,
                                                                              tmp_path):
    """Credentials with 200 s left look good for 1400 s on a host 20 minutes
    slow, and would be used after they expire; on the corrected clock they
    are within the refresh window and refreshed at every use."""
    kms.configure(temp_credential_seconds=200)
    env = web_identity_env(kms, base_env, tmp_path, "-20m")
    completed = run_tool([CREDPROBE, "--region", REGION, "--sts-endpoint", kms.sts_url,
                          "--times", "3"], env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert kms.calls("AssumeRoleWithWebIdentity") == 3
    assert_one_warning(skew_warnings(completed.stderr), 1200, kms.sts_url)


@pytest.mark.parametrize("offset", sorted(SKEWS))
def test_plugin_serves_under_a_skewed_clock(start_plugin, kms, tmp_path, offset):
    """The whole plugin under libfaketime: gRPC, the worker pool, the fleet and
    deletion-queue threads, a rotation and signatures; one warning; a clean
    shutdown (the host checks the exit)."""
    host, _ = start_configured(start_plugin, kms, tmp_path, extra_env=faketime_env(offset))
    first = host.generate_key("x509-CA-A", "EC_P256")
    rotated = host.generate_key("x509-CA-A", "EC_P256")
    assert first.pkix_data != rotated.pkix_data
    digest_message = b"the data SPIRE signs"
    response = host.sign_data("x509-CA-A", hashlib.sha256(digest_message).digest(),
                              hash_algorithm="SHA256")
    verify(rotated.pkix_data, response.signature, "SHA256", digest_message)
    aliases = [a["name"] for a in kms.state()["aliases"]]
    assert any(name.startswith(TD_PREFIX) and name.endswith("/x509-CA-A") for name in aliases)
    records = [r for r in host.log_records() if isinstance(r, dict)]
    warnings = [r for r in records if r.get("@message", "").startswith(SKEW_WARNING)]
    assert_one_warning(warnings, SKEWS[offset], kms.url)
    host.shutdown()
    assert host.wait(10) == 0


def test_sign_data_refused_for_skew_is_signed_again_on_the_async_path(start_plugin, kms, tmp_path):
    """The wall clock jumps 20 minutes after Configure (libfaketime reading its
    offset from a file on every call): the next SignData, signed on the
    asynchronous path with the offset learned so far (none), is refused for
    skew, learns the offset from the refusal's Date and is signed again once,
    outside its attempts; later signatures are right at once."""
    clock_file = tmp_path / "faketime"
    clock_file.write_text("+0\n")
    env = dict(faketime_env("+0"), FAKETIME=None, FAKETIME_TIMESTAMP_FILE=str(clock_file),
               FAKETIME_NO_CACHE="1")
    host, _ = start_configured(start_plugin, kms, tmp_path, extra_env=env,
                               extra_hcl='log_level = "debug"')
    key = host.generate_key("x509-CA-A", "EC_P256")
    digest_message = b"the data SPIRE signs"
    digest = hashlib.sha256(digest_message).digest()
    clock_file.write_text("+20m\n")
    kms.reset_calls()
    response = host.sign_data("x509-CA-A", digest, hash_algorithm="SHA256")
    verify(key.pkix_data, response.signature, "SHA256", digest_message)
    assert kms.calls("Sign") == 2  # refused for skew, then signed again
    response = host.sign_data("x509-CA-A", digest, hash_algorithm="SHA256")
    verify(key.pkix_data, response.signature, "SHA256", digest_message)
    assert kms.calls("Sign") == 3

    def sign_calls():
        return [(r["result"], r["attempts"]) for r in host.log_records() if isinstance(r, dict)
                and r.get("@message") == "AWS call" and r.get("operation") == "Sign"]

    assert wait_until(lambda: len(sign_calls()) == 2 and sign_calls(),
                      what="both Sign calls logged") == [("OK", "2"), ("OK", "1")]
    records = [r for r in host.log_records() if isinstance(r, dict)]
    warnings = [r for r in records if r.get("@message", "").startswith(SKEW_WARNING)]
    assert_one_warning(warnings, SKEWS["+20m"], kms.url)
