"""Integration tests of the AWS credential chain (src/aws/credentials*.c),
driven through tests/tools/aws_credprobe against the emulator's STS, IMDSv2
and container endpoints: the order of the sources, each source, refresh and
caching, failures, and that no secret reaches the log."""
import hashlib
import json
import os
import subprocess
import time

import pytest

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD_DIR = os.path.abspath(os.path.join(os.path.dirname(TESTS_DIR),
                                         os.environ.get("KM_BUILD_DIR", "build")))
CREDPROBE = os.path.join(BUILD_DIR, "tests", "tools", "aws_credprobe")
KMS_PROBE = os.path.join(BUILD_DIR, "tests", "tools", "aws_probe")
REGION = "us-east-2"
WEB_TOKEN = "eyJhbGciOiJSUzI1NiJ9.web-identity-token-for-tests.c2lnbmF0dXJl"
ROLE_ARN = "arn:aws:iam::111122223333:role/spire-server"


class ProbeRun:
    def __init__(self, completed):
        self.returncode = completed.returncode
        self.results = [json.loads(line) for line in completed.stdout.splitlines() if line]
        self.stderr = completed.stderr
        self.logs = [json.loads(line) for line in completed.stderr.splitlines() if line]

    @property
    def result(self):
        assert len(self.results) >= 1, self.stderr
        return self.results[0]

    def log_messages(self, level=None):
        return [entry for entry in self.logs if level is None or entry["@level"] == level]


@pytest.fixture
def world(tmp_path, kms):
    """A clean environment: no shared files, IMDS disabled, emulator STS."""
    home = tmp_path / "home"
    home.mkdir()

    class World:
        def __init__(self):
            self.tmp = tmp_path
            self.kms = kms
            self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
                        "AWS_EC2_METADATA_DISABLED": "true"}
            self.args = ["--region", REGION, "--sts-endpoint", kms.sts_url]

        def write(self, name, text, mode=0o600):
            path = self.tmp / name
            path.write_text(text)
            path.chmod(mode)
            return str(path)

        def web_identity(self, token=WEB_TOKEN):
            self.env["AWS_WEB_IDENTITY_TOKEN_FILE"] = self.write("web-token", token)
            self.env["AWS_ROLE_ARN"] = ROLE_ARN

        def static_env(self):
            self.env["AWS_ACCESS_KEY_ID"] = "AKIAFROMENVIRONMENT"
            self.env["AWS_SECRET_ACCESS_KEY"] = "secret-from-environment"

        def shared_files(self, credentials="", config=""):
            self.env["AWS_SHARED_CREDENTIALS_FILE"] = self.write("credentials", credentials)
            self.env["AWS_CONFIG_FILE"] = self.write("config", config)

        def container(self):
            self.env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = kms.container_url
            self.env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = kms.container_token

        def imds(self):
            self.env.pop("AWS_EC2_METADATA_DISABLED", None)
            self.env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = kms.imds_url

        def probe(self, *extra, timeout=60):
            completed = subprocess.run([CREDPROBE, *self.args, *extra], env=self.env,
                                       capture_output=True, text=True, timeout=timeout)
            return ProbeRun(completed)

    return World()


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def issued_secret(kms, access_key_id):
    entry = kms.credentials.get(access_key_id)
    assert entry is not None, f"{access_key_id} was not issued by the emulator"
    return entry


def sts_calls(kms):
    return kms.calls("AssumeRoleWithWebIdentity")


# --- order ----------------------------------------------------------------------------------


def test_each_source_beats_the_ones_after_it(world):
    kms = world.kms
    world.static_env()
    world.web_identity()
    world.shared_files(credentials="[default]\naws_access_key_id = AKIAFROMSHAREDFILE\n"
                                   "aws_secret_access_key = secret-from-file\n")
    world.container()
    world.imds()
    config = ["--access-key", "AKIAFROMCONFIG", "--secret-key", "secret-from-config"]

    expected = [
        (config, "config", "AKIAFROMCONFIG"),
        ([], "environment", "AKIAFROMENVIRONMENT"),
    ]
    for extra, source, key in expected:
        run = world.probe(*extra)
        assert run.returncode == 0, run.stderr
        assert (run.result["source"], run.result["access_key_id"]) == (source, key)
    assert kms.calls() == {}, "no lower source may be contacted"

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        del world.env[name]
    run = world.probe()
    assert run.result["source"] == "web_identity"
    assert run.result["access_key_id"].startswith("ASIA")
    assert kms.calls() == {"AssumeRoleWithWebIdentity": 1}

    del world.env["AWS_WEB_IDENTITY_TOKEN_FILE"]
    run = world.probe()
    assert (run.result["source"], run.result["access_key_id"]) == ("shared_files",
                                                                   "AKIAFROMSHAREDFILE")
    assert run.result["secret_sha256"] == sha256("secret-from-file")

    world.shared_files()  # files exist but hold no profile: skipped
    run = world.probe()
    assert run.result["source"] == "container"
    assert kms.calls("container_credentials") == 1
    assert kms.calls("imds_token") == 0

    del world.env["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
    run = world.probe()
    assert run.result["source"] == "imds"
    assert kms.calls("imds_token") == 1


def test_nothing_configured_names_the_sources_tried(world):
    run = world.probe()
    assert run.returncode == 1
    error = run.result["error"]
    assert error.startswith("no AWS credentials found: set access_key_id/secret_access_key, "
                            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a web identity token, a "
                            "shared profile, a container endpoint or run on EC2 with an instance "
                            "role")
    assert ("tried: config, environment, web identity, shared profile \"default\", container "
            "endpoint, EC2 instance metadata (disabled by AWS_EC2_METADATA_DISABLED)") in error
    assert world.kms.calls() == {}


def test_configured_but_failing_source_is_an_error_not_a_fall_through(world):
    kms = world.kms
    kms.configure(expected_web_identity_token="some-other-token")
    world.web_identity()
    world.shared_files(credentials="[default]\naws_access_key_id = AKIAFILE\n"
                                   "aws_secret_access_key = s\n")
    run = world.probe()
    assert run.returncode == 1
    assert run.result["code"] == "InvalidIdentityToken"
    assert run.result["error"].startswith(f"web identity (role {ROLE_ARN}): STS error "
                                          "InvalidIdentityToken")
    assert WEB_TOKEN not in run.result["error"]

    os.unlink(world.env["AWS_WEB_IDENTITY_TOKEN_FILE"])
    kms.reset_calls()
    run = world.probe()
    assert run.returncode == 1
    assert "cannot read" in run.result["error"] and "web identity" in run.result["error"]
    assert sts_calls(kms) == 0


def test_sts_validation_error_does_not_quote_the_token(world):
    world.web_identity(token="tok")  # too short: a validation error
    run = world.probe("--log-level", "trace")
    assert run.returncode == 1
    assert run.result["code"] == "ValidationError"
    assert "'tok'" not in run.result["error"] and "'tok'" not in run.stderr


# --- web identity -----------------------------------------------------------------------------


def test_web_identity_via_sts(world):
    kms = world.kms
    world.web_identity()
    world.env["AWS_ROLE_SESSION_NAME"] = "spire-test-session"
    before = int(time.time())
    run = world.probe()
    assert run.returncode == 0, run.stderr
    result = run.result
    assert result["source"] == "web_identity"
    assert result["has_session_token"] is True
    assert before + 3600 - 5 <= result["expiration"] <= int(time.time()) + 3600 + 5
    assert kms.web_identity_tokens() == [WEB_TOKEN]
    entry = issued_secret(kms, result["access_key_id"])
    assert sha256(entry["secret"]) == result["secret_sha256"]
    assert entry["arn"].endswith("assumed-role/spire-server/spire-test-session")
    loaded = [e for e in run.logs if e["@message"] == "AWS credentials loaded"]
    assert len(loaded) == 1
    assert loaded[0]["source"] == "web_identity" and loaded[0]["role_arn"] == ROLE_ARN


def test_web_identity_default_session_name(world):
    world.web_identity()
    run = world.probe()
    entry = issued_secret(world.kms, run.result["access_key_id"])
    assert "/spire-aws-kms-" in entry["arn"]


# --- shared files ----------------------------------------------------------------------------


def test_shared_files_static_and_profile_selection(world):
    world.shared_files(
        credentials="# keys\n[default]\naws_access_key_id = AKIADEFAULTPROFILE\n"
                    "aws_secret_access_key = default-secret\n\n"
                    "[dev]\naws_access_key_id=AKIADEVPROFILE\naws_secret_access_key=dev-secret\n"
                    "aws_session_token = dev-session-token\n",
        config="[profile dev]\nregion = eu-west-1\n")
    run = world.probe()
    assert (run.result["source"], run.result["access_key_id"]) == ("shared_files",
                                                                   "AKIADEFAULTPROFILE")
    world.env["AWS_PROFILE"] = "dev"
    run = world.probe()
    assert run.result["access_key_id"] == "AKIADEVPROFILE"
    assert run.result["secret_sha256"] == sha256("dev-secret")
    assert run.result["has_session_token"] is True
    assert run.result["expiration"] == 0

    world.env["AWS_PROFILE"] = "missing"
    run = world.probe()
    assert run.returncode == 1
    assert "shared profile \"missing\" (AWS_PROFILE) not found" in run.result["error"]


def test_default_files_under_home(world):
    aws_dir = world.tmp / "home" / ".aws"
    aws_dir.mkdir()
    (aws_dir / "credentials").write_text("[default]\naws_access_key_id = AKIAHOMEFILE\n"
                                         "aws_secret_access_key = s\n")
    run = world.probe()
    assert run.result["access_key_id"] == "AKIAHOMEFILE"


def process_script(world, body):
    return world.write("cred-process.sh", "#!/bin/sh\n" + body, mode=0o700)


def test_credential_process(world):
    expiration = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    script = process_script(world, f"""echo "process stderr: secret-on-stderr" >&2
cat <<'JSON'
{{"Version": 1, "AccessKeyId": "ASIAPROCESS", "SecretAccessKey": "process-secret",
 "SessionToken": "process-session-token", "Expiration": "{expiration}"}}
JSON
""")
    world.shared_files(config=f"[profile proc]\ncredential_process = {script} --flag\n")
    world.env["AWS_PROFILE"] = "proc"
    run = world.probe("--log-level", "trace")
    assert run.returncode == 0, run.stderr
    assert run.result["source"] == "credential_process"
    assert run.result["access_key_id"] == "ASIAPROCESS"
    assert run.result["secret_sha256"] == sha256("process-secret")
    assert run.result["has_session_token"] is True
    assert "secret-on-stderr" not in run.stderr
    assert "process-secret" not in run.stderr and "process-session-token" not in run.stderr


def test_credential_process_failure_is_an_error(world):
    script = process_script(world, "echo failing >&2\nexit 7\n")
    world.shared_files(credentials="[default]\nregion = x\n",
                       config=f"[default]\ncredential_process = {script}\n")
    run = world.probe()
    assert run.returncode == 1
    assert run.result["error"] == ("credential_process of shared profile \"default\": command "
                                   "exited with status 7")


def test_credential_process_timeout(world):
    script = process_script(world, "exec sleep 30\n")
    world.shared_files(config=f"[default]\ncredential_process = {script}\n")
    started = time.monotonic()
    run = world.probe("--process-timeout-ms", "300")
    assert run.returncode == 1
    assert "did not finish within 300 ms" in run.result["error"]
    assert time.monotonic() - started < 10


def test_assume_role_with_source_profile(world):
    kms = world.kms
    world.shared_files(
        credentials=f"[base]\naws_access_key_id = {kms.access_key_id}\n"
                    f"aws_secret_access_key = {kms.secret_access_key}\n",
        config="[profile deploy]\nrole_arn = arn:aws:iam::111122223333:role/deployer\n"
               "source_profile = base\nrole_session_name = deploy-session\n"
               "[profile chained]\nrole_arn = arn:aws:iam::111122223333:role/second\n"
               "source_profile = deploy\n")
    world.env["AWS_PROFILE"] = "deploy"
    run = world.probe()
    assert run.returncode == 0, run.stderr
    assert run.result["source"] == "shared_files"
    assert run.result["has_session_token"] is True
    entry = issued_secret(kms, run.result["access_key_id"])
    assert entry["arn"].endswith("assumed-role/deployer/deploy-session")
    assert kms.calls("AssumeRole") == 1
    loaded = [e for e in run.logs if e["@message"] == "AWS credentials loaded"][0]
    assert loaded["role_arn"] == "arn:aws:iam::111122223333:role/deployer"
    assert loaded["profile"] == "deploy"

    # chained: the second AssumeRole is signed with the first one's session credentials
    world.env["AWS_PROFILE"] = "chained"
    run = world.probe()
    assert run.returncode == 0, run.stderr
    assert issued_secret(kms, run.result["access_key_id"])["arn"].split("/")[1] == "second"
    assert kms.calls("AssumeRole") == 3

    world.shared_files(credentials="[base]\naws_access_key_id = AKIAUNKNOWN\n"
                                   "aws_secret_access_key = wrong\n",
                       config="[profile deploy]\nrole_arn = arn:aws:iam::1:role/deployer\n"
                              "source_profile = base\n")
    world.env["AWS_PROFILE"] = "deploy"
    run = world.probe()
    assert run.returncode == 1
    assert "AssumeRole arn:aws:iam::1:role/deployer: STS error" in run.result["error"]


def test_profile_web_identity(world):
    token_file = world.write("profile-token", "profile-web-token")
    world.shared_files(config=f"[default]\nrole_arn = {ROLE_ARN}\n"
                              f"web_identity_token_file = {token_file}\n")
    run = world.probe()
    assert run.returncode == 0, run.stderr
    assert run.result["source"] == "shared_files"
    assert world.kms.web_identity_tokens() == ["profile-web-token"]


# --- container ---------------------------------------------------------------------------------


def test_container_with_authorization_token(world):
    kms = world.kms
    world.container()
    run = world.probe()
    assert run.returncode == 0, run.stderr
    assert run.result["source"] == "container"
    assert run.result["has_session_token"] is True
    issued_secret(kms, run.result["access_key_id"])

    world.env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "wrong-token"
    run = world.probe()
    assert run.returncode == 1
    assert run.result["error"] == (f"container endpoint {kms.container_url}: endpoint answered "
                                   "HTTP 401")
    assert kms.calls("container_credentials") == 2


def test_container_with_authorization_token_file(world):
    kms = world.kms
    world.container()
    world.env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "ignored-when-file-set"
    world.env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = world.write(
        "pod-identity-token", kms.container_token + "\n")
    run = world.probe()
    assert run.returncode == 0, run.stderr
    assert run.result["source"] == "container"


def test_container_full_uri_host_is_checked(world):
    world.container()
    world.env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://192.0.2.1/creds"
    run = world.probe()
    assert run.returncode == 1
    assert "AWS_CONTAINER_CREDENTIALS_FULL_URI must use https" in run.result["error"]
    assert "it names http://192.0.2.1" in run.result["error"]
    assert world.kms.calls() == {}


def test_container_uri_with_user_information_is_refused_before_any_connection(world):
    """http://localhost:80@elsewhere.example/ is user "localhost", password
    "80", host elsewhere.example: the token must never be sent there. Here
    elsewhere is the emulator's own address, so a request would be counted."""
    kms = world.kms
    world.container()
    port = kms.url.rsplit(":", 1)[1]
    for uri in (f"http://localhost:80@127.0.0.1:{port}/container-credentials/x",
                f"http://user@127.0.0.1:{port}/container-credentials/x",
                f"https://user:secret-password@127.0.0.1:{port}/container-credentials/x"):
        world.env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = uri
        run = world.probe()
        assert run.returncode == 1
        error = run.result["error"]
        assert ("container endpoint: AWS_CONTAINER_CREDENTIALS_FULL_URI holds user information "
                "(\"user@\" or \"user:password@\" before the host); it is refused") in error
        assert "secret-password" not in error and kms.container_token not in error
        assert "secret-password" not in run.stderr and kms.container_token not in run.stderr
    assert kms.calls() == {}


# --- IMDS ------------------------------------------------------------------------------------


def test_imds_v2(world):
    kms = world.kms
    world.imds()
    run = world.probe()
    assert run.returncode == 0, run.stderr
    assert run.result["source"] == "imds"
    assert run.result["has_session_token"] is True
    issued_secret(kms, run.result["access_key_id"])
    assert kms.calls() == {"imds_token": 1, "imds_role": 1, "imds_credentials": 1}


def test_imds_refused_token_then_401_gets_a_new_token(world):
    kms = world.kms
    world.imds()
    kms.inject("imds_token", "access_denied", count=1)  # 403: try IMDSv1
    run = world.probe()
    assert run.returncode == 0, run.stderr  # v1 GET answered 401 -> new token -> retried
    assert kms.calls() == {"imds_token": 2, "imds_role": 2, "imds_credentials": 1}

    world.env["AWS_EC2_METADATA_V1_DISABLED"] = "true"
    kms.reset_calls()
    kms.inject("imds_token", "access_denied", count=1)
    run = world.probe()
    assert run.returncode == 1
    assert "token request answered HTTP 403" in run.result["error"]
    assert run.result["error"].startswith("no AWS credentials found")


def test_imds_disabled(world):
    world.imds()
    world.env["AWS_EC2_METADATA_DISABLED"] = "TRUE"
    run = world.probe()
    assert run.returncode == 1
    assert "disabled by AWS_EC2_METADATA_DISABLED" in run.result["error"]
    assert world.kms.calls() == {}


def test_imds_unreachable_fails_fast(world):
    world.imds()
    world.kms.inject("imds_token", "latency", latency_ms=5000)
    started = time.monotonic()
    run = world.probe()
    elapsed = time.monotonic() - started
    assert run.returncode == 1
    assert run.result["error"].startswith("no AWS credentials found")
    assert elapsed < 3.0, f"IMDS took {elapsed:.2f} s to give up"


# --- caching and refresh ---------------------------------------------------------------------


def test_credentials_within_five_minutes_of_expiry_are_refreshed(world):
    kms = world.kms
    kms.configure(temp_credential_seconds=120)
    world.web_identity()
    run = world.probe("--times", "3", "--log-level", "debug")
    assert run.returncode == 0, run.stderr
    assert sts_calls(kms) == 3
    assert len({r["access_key_id"] for r in run.results}) == 3
    assert kms.web_identity_tokens() == [WEB_TOKEN] * 3
    refreshed = [e for e in run.logs if e["@message"] == "AWS credentials refreshed"]
    assert len(refreshed) == 2


def test_long_lived_credentials_are_cached(world):
    kms = world.kms
    world.web_identity()
    run = world.probe("--times", "5")
    assert run.returncode == 0, run.stderr
    assert sts_calls(kms) == 1
    assert len({r["access_key_id"] for r in run.results}) == 1


def test_many_threads_one_fetch(world):
    kms = world.kms
    world.web_identity()
    kms.inject("AssumeRoleWithWebIdentity", "latency", latency_ms=300)
    run = world.probe("--threads", "16", "--times", "5")
    assert run.returncode == 0, run.stderr
    assert len(run.results) == 80
    assert sts_calls(kms) == 1
    assert len({r["access_key_id"] for r in run.results}) == 1


def test_failed_refresh_keeps_valid_credentials(world):
    counter = world.tmp / "runs"
    expiration = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 200))
    script = process_script(world, f"""echo x >> {counter}
if [ "$(wc -l < {counter})" -gt 1 ]; then echo "refresh broke" >&2; exit 9; fi
echo '{{"Version": 1, "AccessKeyId": "ASIAONCE", "SecretAccessKey": "s", "SessionToken": "t",
 "Expiration": "{expiration}"}}'
""")
    world.shared_files(config=f"[default]\ncredential_process = {script}\n")
    run = world.probe("--times", "3")
    assert run.returncode == 0, run.stderr
    assert [r["access_key_id"] for r in run.results] == ["ASIAONCE"] * 3
    assert counter.read_text().count("x") == 2  # one failed refresh, then a pause before retrying
    warnings = run.log_messages("warn")
    assert len(warnings) == 1
    assert warnings[0]["source"] == "credential_process"
    assert warnings[0]["error"].endswith("command exited with status 9")


# --- secrets never logged ------------------------------------------------------------------------


def test_no_secret_in_logs(world):
    kms = world.kms
    kms.configure(temp_credential_seconds=120)
    world.web_identity()
    run = world.probe("--times", "2", "--log-level", "trace")
    assert run.returncode == 0, run.stderr
    assert len(run.logs) >= 2
    secrets_seen = [WEB_TOKEN]
    for result in run.results:
        entry = issued_secret(kms, result["access_key_id"])
        secrets_seen += [entry["secret"], entry["session_token"], result["access_key_id"]]
    for secret in secrets_seen:
        assert secret not in run.stderr

    world.env = {k: v for k, v in world.env.items() if not k.startswith("AWS_WEB")}
    world.container()
    run = world.probe("--log-level", "trace")
    assert run.returncode == 0, run.stderr
    entry = issued_secret(kms, run.result["access_key_id"])
    for secret in (kms.container_token, entry["secret"], entry["session_token"]):
        assert secret not in run.stderr

    run = world.probe("--access-key", "AKIACONFIGKEY", "--secret-key", "config-secret-value",
                      "--log-level", "trace")
    assert "config-secret-value" not in run.stderr


# --- end to end: a signed KMS call with web identity session credentials --------------------------


def test_kms_call_signed_with_web_identity_session_credentials(world):
    kms = world.kms
    world.web_identity()
    env = dict(world.env, AWS_ENDPOINT_URL_STS=kms.sts_url)
    completed = subprocess.run([KMS_PROBE, "--endpoint", kms.url, "--region", REGION,
                                "caller-identity"], env=env, capture_output=True, text=True,
                               timeout=60)
    assert completed.returncode == 0, completed.stderr + completed.stdout
    answer = json.loads(completed.stdout)
    assert "assumed-role/spire-server/" in json.dumps(answer)
    assert sts_calls(kms) == 1
    assert kms.web_identity_tokens() == [WEB_TOKEN]
    completed = subprocess.run([KMS_PROBE, "--endpoint", kms.url, "--region", REGION,
                                "create-key", "ECC_NIST_P256"], env=env, capture_output=True,
                               text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr + completed.stdout
    assert kms.calls("CreateKey") == 1


# --- files we read: regular files only, never a hang ------------------------------------------------


def test_token_file_that_is_a_fifo_fails_at_once(world):
    """A FIFO nobody writes to would block open() forever: it is refused by name."""
    fifo = world.tmp / "token-fifo"
    os.mkfifo(fifo)
    world.web_identity()
    world.env["AWS_WEB_IDENTITY_TOKEN_FILE"] = str(fifo)
    run = world.probe(timeout=20)
    assert run.returncode == 1
    assert f"{fifo} is not a regular file (a FIFO)" in run.result["error"]
    assert sts_calls(world.kms) == 0

    world.env.pop("AWS_WEB_IDENTITY_TOKEN_FILE")
    world.container()
    world.env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = str(fifo)
    run = world.probe(timeout=20)
    assert run.returncode == 1
    assert f"{fifo} is not a regular file (a FIFO)" in run.result["error"]
    assert world.kms.calls() == {}


def test_shared_file_that_is_a_directory_or_fifo_is_named(world):
    folder = world.tmp / "credentials-dir"
    folder.mkdir()
    world.env["AWS_SHARED_CREDENTIALS_FILE"] = str(folder)
    run = world.probe(timeout=20)
    assert run.returncode == 1
    assert f"{folder} is a directory, not a file" in run.result["error"]

    fifo = world.tmp / "config-fifo"
    os.mkfifo(fifo)
    world.env.pop("AWS_SHARED_CREDENTIALS_FILE")
    world.env["AWS_CONFIG_FILE"] = str(fifo)
    run = world.probe(timeout=20)
    assert run.returncode == 1
    assert f"{fifo} is not a regular file (a FIFO)" in run.result["error"]


def test_oversized_token_file_is_refused(world):
    world.web_identity(token="x" * (64 * 1024 + 1))
    run = world.probe()
    assert run.returncode == 1
    assert "is larger than 65536 bytes" in run.result["error"]
    assert sts_calls(world.kms) == 0


# --- secrets wiped from memory --------------------------------------------------------------------

KNOWN_SECRET = "KnownSecretAccessKey+issued/by0the1emulator2"
KNOWN_SESSION_TOKEN = "IQoJKnownSessionToken-issued-by-the-emulator-0123456789"


def issue_known_secrets(kms):
    """Makes the emulator hand out KNOWN_SECRET / KNOWN_SESSION_TOKEN (STS,
    container, IMDS), so that a probe can look for them in its memory."""
    table = kms.credentials
    original = table.issue_temporary

    def issue(lifetime_seconds, role_name, session_name):
        issued = original(lifetime_seconds, role_name, session_name)
        issued.update(SecretAccessKey=KNOWN_SECRET, SessionToken=KNOWN_SESSION_TOKEN)
        table.add(issued["AccessKeyId"], KNOWN_SECRET, KNOWN_SESSION_TOKEN,
                  issued["Expiration"], issued["AssumedRoleArn"], issued["AssumedRoleId"])
        return issued

    table.issue_temporary = issue


def memory_probe(world, live=(), after_free=()):
    """Runs the probe with the memory check; returns {when: [found...]}."""
    args = []
    for text in live:
        args += ["--forbid-live", text[::-1]]
    for text in after_free:
        args += ["--forbid-after-free", text[::-1]]
    # Freed memory at the top of a heap would go back to the kernel (zeroed):
    # keep it, so that what free() leaves behind stays visible.
    world.env["GLIBC_TUNABLES"] = "glibc.malloc.trim_threshold=1073741824"
    run = world.probe(*args)
    assert run.returncode == 0, run.stderr
    checks = {r["memory_check"]: r["found"] for r in run.results if "memory_check" in r}
    return run, checks


def container_token_file(world):
    world.container()
    world.env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = world.write(
        "pod-identity-token", world.kms.container_token + "\n")
    del world.env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]


@pytest.mark.parametrize("source", ["web_identity", "container", "imds"])
def test_tokens_and_answered_secrets_are_wiped(world, source):
    """The probe scans its own writable memory (through /proc/self/mem) for the
    strings it is given reversed. The token it sent (web identity, container)
    is gone once the credentials are fetched; the secret key and session token
    of the answer are gone once the provider is freed: freed and realloc'd
    buffers, curl's copies (request, answer) and jansson's all count."""
    kms = world.kms
    issue_known_secrets(kms)
    live = []
    if source == "web_identity":
        world.web_identity()
        live = [WEB_TOKEN]
    elif source == "container":
        container_token_file(world)
        live = [kms.container_token]
    else:
        world.imds()
    run, checks = memory_probe(world, live=live,
                               after_free=live + [KNOWN_SECRET, KNOWN_SESSION_TOKEN])
    assert run.results[0]["secret_sha256"] == sha256(KNOWN_SECRET)
    assert checks == ({"live": [], "after_free": []} if live else {"after_free": []})


def test_shared_file_and_process_secrets_are_wiped(world):
    file_secret = "shared-file-secret-0123456789abcdef"
    file_token = "shared-file-session-token-0123456789"
    padding = "".join(f"# comment line {i}: the parser copies the whole file\n"
                      for i in range(100))
    world.shared_files(credentials="[default]\n" + padding +
                                   "aws_access_key_id = AKIASHAREDFILE\n"
                                   f"aws_secret_access_key = {file_secret}\n"
                                   f"aws_session_token = {file_token}\n")
    run, checks = memory_probe(world, after_free=[file_secret, file_token])
    assert run.results[0]["secret_sha256"] == sha256(file_secret)
    assert checks == {"after_free": []}

    process_secret = "process-secret-key-0123456789abcdef"
    process_token = "process-session-token-0123456789abcdef"
    expiration = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    script = process_script(world, f"""cat <<'JSON'
{{"Version": 1, "AccessKeyId": "ASIAPROCESS", "SecretAccessKey": "{process_secret}",
 "SessionToken": "{process_token}", "Expiration": "{expiration}"}}
JSON
""")
    world.shared_files(config=f"[default]\ncredential_process = {script}\n")
    run, checks = memory_probe(world, after_free=[process_secret, process_token])
    assert run.results[0]["secret_sha256"] == sha256(process_secret)
    assert checks == {"after_free": []}
