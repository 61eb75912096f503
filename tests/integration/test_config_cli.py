"""The operator command `spire-aws-kms validate FILE [--trust-domain TD]`:
"configuration is valid" and exit 0, or one problem per line on stderr and
exit 1, for HCL and JSON files and standard input."""
import os
import subprocess

import pytest

from pluginhost.fixtures import build_dir


@pytest.fixture(scope="module")
def binary():
    path = os.path.join(build_dir(), "spire-aws-kms")
    if not os.access(path, os.X_OK):
        pytest.fail(f"plugin binary {path} is missing: build it first")
    return path


def run(binary, *args, stdin=None):
    """The CLI with no AWS settings from the test machine (no region, profile, ...)."""
    env = {k: v for k, v in os.environ.items() if k != "KeyManager" and not k.startswith("AWS_")}
    env["AWS_CONFIG_FILE"] = "/nonexistent/aws-config"
    env["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent/aws-credentials"
    return subprocess.run([binary, *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=30, check=False)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_valid_hcl_file(binary, tmp_path):
    path = write(tmp_path, "plugin_data.hcl",
                 'region = "us-east-2"\nkey_metadata_file = "./key_metadata"\n')
    result = run(binary, "validate", path, "--trust-domain", "example.org")
    assert (result.returncode, result.stdout, result.stderr) == (0, "configuration is valid\n", "")


def test_valid_json_file_without_trust_domain(binary, tmp_path):
    path = write(tmp_path, "plugin_data.json",
                 '{"region": "eu-west-1", "key_identifier_value": "server-1"}')
    result = run(binary, "validate", path)
    assert result.returncode == 0
    assert result.stdout == "configuration is valid\n"
    assert result.stderr == "note: no --trust-domain given; checking with example.org\n"


def test_problems_one_per_line(binary, tmp_path):
    path = write(tmp_path, "bad.hcl",
                 'regoin = "us-east-2"\nmax_attempts = "3"\nsecret_access_key = "TOPSECRET"\n')
    result = run(binary, "validate", path, "--trust-domain", "example.org")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        'unknown key "regoin" at 1:1 (did you mean "region"?)',
        'key "max_attempts" at 2:1: expected an integer, found string',
        "access_key_id and secret_access_key must be set together "
        "(only secret_access_key is set)",
        "one of key_metadata_file, key_identifier_file or key_identifier_value is required",
        "no AWS region: set region in plugin_data, AWS_REGION or AWS_DEFAULT_REGION in SPIRE "
        "server's environment, or region in the shared config profile \"default\"",
    ]
    assert "TOPSECRET" not in result.stderr


def test_bad_trust_domain(binary, tmp_path):
    path = write(tmp_path, "ok.hcl", 'region = "us-east-2"\nkey_metadata_file = "./km"\n')
    result = run(binary, "validate", path, "--trust-domain", "Example.ORG")
    assert result.returncode == 1
    assert "trust_domain \"Example.ORG\" is not valid" in result.stderr


def test_standard_input(binary):
    result = run(binary, "validate", "-", "--trust-domain", "example.org",
                 stdin='region "us-east-2"\n')
    assert result.returncode == 1
    assert result.stderr == "1:8: expected '=' or '{' after key \"region\", found string\n"


def test_missing_file(binary, tmp_path):
    missing = str(tmp_path / "nope.hcl")
    result = run(binary, "validate", missing)
    assert result.returncode == 1
    assert result.stderr == f"{missing}: No such file or directory\n"


@pytest.mark.parametrize("args", [("validate",), ("validate", "a", "b"), ("validate", "--bogus")])
def test_usage_errors(binary, args):
    result = run(binary, *args)
    assert result.returncode == 1
    assert result.stderr.startswith("usage: spire-aws-kms")


def test_help_mentions_validate(binary):
    result = run(binary, "--help")
    assert result.returncode == 0
    assert "validate FILE" in result.stdout
