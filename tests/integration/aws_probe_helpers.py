"""The aws_probe tool (tests/tools/aws_probe.c) for the tests of the C AWS layer:
its path in the build, a clean environment (no proxies, no shared AWS files, no
AWS_* variables from the test machine), and Probe, which runs one operation
against the emulator and returns the JSON line it prints."""
import json
import os
import subprocess

import pytest

REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_DIR = os.path.abspath(os.path.join(REPO_DIR, os.environ.get("KM_BUILD_DIR", "build")))
PROBE = os.path.join(BUILD_DIR, "tests", "tools", "aws_probe")
REGION = "us-east-2"
SECRET = "emulator-secret"


@pytest.fixture(scope="session")
def probe_binary():
    if not os.access(PROBE, os.X_OK):
        pytest.fail(f"{PROBE} is missing: cmake --build {BUILD_DIR} --target aws_probe")
    return PROBE


def base_env(tmp_path):
    """A clean environment: no proxies, no shared AWS files, no AWS_* leaks."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and k.lower() not in
           ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env["HOME"] = str(tmp_path)
    env["AWS_CONFIG_FILE"] = str(tmp_path / "no-config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "no-credentials")
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


class Probe:
    def __init__(self, binary, kms, tmp_path):
        self.binary = binary
        self.kms = kms
        self.tmp_path = tmp_path
        self.last_stderr = ""
        self.last_stdout = ""

    def run(self, *args, keys=True, env=None, options=(), timeout=60, region=REGION,
            endpoint=True):
        """region None: the probe resolves it (AWS_REGION, profile); endpoint False:
        KMS's endpoint from the environment or the region."""
        command = [self.binary]
        if endpoint:
            command += ["--endpoint", self.kms.url]
        if region is not None:
            command += ["--region", region]
        if keys:
            command += ["--access-key", self.kms.access_key_id, "--secret-key", SECRET]
        command += list(options) + [str(a) for a in args]
        full_env = base_env(self.tmp_path)
        full_env.update(env or {})
        done = subprocess.run(command, env=full_env, capture_output=True, text=True,
                              timeout=timeout)
        self.last_stdout, self.last_stderr = done.stdout, done.stderr
        assert "runtime error" not in done.stderr and "AddressSanitizer" not in done.stderr
        lines = done.stdout.strip().splitlines()
        assert len(lines) == 1, f"expected one JSON line, got {done.stdout!r} {done.stderr!r}"
        out = json.loads(lines[0])
        assert done.returncode == (0 if out["ok"] else 1)
        return out

    def ok(self, *args, **kwargs):
        out = self.run(*args, **kwargs)
        assert out["ok"], out
        return out["result"]

    def error(self, *args, **kwargs):
        out = self.run(*args, **kwargs)
        assert not out["ok"], out
        return out


@pytest.fixture
def probe(probe_binary, kms, tmp_path):
    return Probe(probe_binary, kms, tmp_path)
