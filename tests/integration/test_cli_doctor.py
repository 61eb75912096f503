"""`spire-aws-kms doctor` through the real binary against the emulator: every
check passing for a configured server, then each failure an operator meets
with its fix: an invalid configuration, no region, an endpoint that does not
resolve or refuses connections, no credentials, a wrong secret, a denied
permission (with the IAM policy to attach), and a server id file that is
missing, writable by others or corrupt; in tag mode (the configuration's
enable_tag_based_key_discovery), tag:GetResources allowed and denied, and
kms:ListResourceTags denied in either mode. Exit 1 when a check fails."""
import json
import os

import pytest

from cli_helpers import TD, alias_target, cli_env, run_cli, start_server


@pytest.fixture
def world(plugin_binary, start_plugin, kms, tmp_path):
    """A live server of example.org (the real plugin made its aliases) and
    its plugin_data file."""
    home = tmp_path / "home"
    home.mkdir()
    host, server_id = start_server(start_plugin, kms, tmp_path / "server")
    host.generate_key("x509-CA-A", "EC_P256")
    host.shutdown()
    metadata = tmp_path / "server" / "key_metadata"
    config = tmp_path / "plugin_data.hcl"
    config.write_text(f'region = "us-east-2"\nkey_metadata_file = "{metadata}"\n')
    tag_config = tmp_path / "plugin_data_tag_mode.hcl"
    tag_config.write_text(config.read_text() + "enable_tag_based_key_discovery = true\n")

    class World:
        binary = plugin_binary
        env = cli_env(kms, home)

        def __init__(self):
            self.kms = kms
            self.server_id = server_id
            self.metadata = metadata
            self.config = str(config)
            self.tag_config = str(tag_config)

        def doctor(self, *args, **extra_env):
            env = dict(self.env)
            for name, value in extra_env.items():
                if value is None:
                    env.pop(name, None)
                else:
                    env[name] = value
            return run_cli(self.binary, "doctor", *args, env=env)

        def checks(self, *args, expect, **extra_env):
            result = self.doctor(*args, "--json", **extra_env)
            assert result.returncode == expect, result.stdout + result.stderr
            document = json.loads(result.stdout)
            return {check["check"]: check for check in document["checks"]}, document

    return World()


def lines(result):
    return {line.split(": ", 1)[0]: line for line in result.stdout.splitlines()
            if line[:2] in ("✓ ", "✗ ", "! ", "- ")}


def test_a_healthy_server_passes_every_check(world):
    result = world.doctor("--config", world.config, "--trust-domain", TD)
    assert result.returncode == 0, result.stdout + result.stderr
    found = lines(result)
    assert list(found) == ["✓ configuration", "✓ region", "✓ endpoint", "✓ credentials",
                           "✓ identity", "✓ clock", "✓ kms:ListAliases", "✓ kms:ListKeys",
                           "✓ kms:DescribeKey", "✓ kms:GetPublicKey", "✓ kms:ListResourceTags",
                           "- tag:GetResources", "✓ server id file"]
    assert "us-east-2 (from the configuration)" in found["✓ region"]
    assert f"{world.kms.url}: DNS 1 address, plain http (no TLS), reachable (HTTP 404" in (
        found["✓ endpoint"])
    assert "found (source: environment)" in found["✓ credentials"]
    assert "arn:aws:iam::111122223333:user/emulator" in found["✓ identity"]
    own_alias = f"alias/SPIRE_SERVER/example_org/{world.server_id}/x509-CA-A"
    assert own_alias in found["✓ kms:DescribeKey"]
    own_key = alias_target(world.kms, own_alias)
    assert f"(on key {own_key}, the target of {own_alias})" in found["✓ kms:ListResourceTags"]
    assert "not needed (enable_tag_based_key_discovery is off)" in found["- tag:GetResources"]
    assert f"mode 0600, server id {world.server_id}" in found["✓ server id file"]
    assert result.stdout.endswith("\nAll checks passed.\n")
    assert world.kms.secret_access_key not in result.stdout + result.stderr


def test_json_output(world):
    checks, document = world.checks("--config", world.config, "--trust-domain", TD, expect=0)
    assert document["failed"] == 0 and document["iam_policy"] is None
    assert checks["identity"]["status"] == "ok"
    assert set(checks["identity"]) == {"check", "status", "message", "fix"}


def test_without_config_or_trust_domain_some_checks_are_skipped(world):
    checks, _ = world.checks(expect=0)
    assert checks["configuration"]["status"] == "skip"
    assert checks["kms:DescribeKey"]["status"] == "skip"
    assert "give --trust-domain" in checks["kms:DescribeKey"]["message"]
    assert checks["kms:GetPublicKey"]["status"] == "skip"
    assert checks["kms:ListResourceTags"]["status"] == "skip"
    assert checks["server id file"]["status"] == "skip"
    assert checks["region"]["message"] == "us-east-2 (from AWS_REGION)"


def test_invalid_configuration(world, tmp_path):
    bad = tmp_path / "bad.hcl"
    bad.write_text('regoin = "us-east-2"\n')
    checks, _ = world.checks("--config", str(bad), expect=1)
    assert checks["configuration"]["status"] == "fail"
    assert 'unknown key "regoin" at 1:1 (did you mean "region"?)' in (
        checks["configuration"]["message"])
    assert "spire-aws-kms validate" in checks["configuration"]["fix"]
    assert checks["region"]["status"] == "ok"  # the environment's region is still checked


def test_no_region(world):
    checks, _ = world.checks(expect=1, AWS_REGION=None)
    assert checks["region"]["status"] == "fail"
    assert "AWS_REGION" in checks["region"]["fix"]
    assert checks["endpoint"]["status"] == "skip"


def test_endpoint_that_does_not_resolve(world):
    checks, _ = world.checks("--endpoint", "https://kms.invalid", expect=1)
    endpoint = checks["endpoint"]
    assert endpoint["status"] == "fail"
    assert "cannot resolve kms.invalid" in endpoint["message"]
    assert "DNS resolver" in endpoint["fix"]
    assert checks["clock"]["status"] == "skip"
    assert checks["kms:ListKeys"]["status"] == "skip"  # one cause, one failure
    assert checks["kms:ListKeys"]["message"] == "not tried (the endpoint cannot be reached)"


def test_endpoint_that_refuses_connections(world):
    checks, _ = world.checks("--endpoint", "http://127.0.0.1:1", expect=1)
    assert checks["endpoint"]["status"] == "fail"
    assert "firewall" in checks["endpoint"]["fix"]


def test_no_credentials(world):
    checks, _ = world.checks(expect=1, AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None)
    assert checks["credentials"]["status"] == "fail"
    assert "no AWS credentials found" in checks["credentials"]["message"]
    assert checks["identity"]["status"] == "skip"
    assert checks["kms:ListKeys"]["status"] == "skip"


def test_wrong_secret(world):
    result = world.doctor("--trust-domain", TD, AWS_SECRET_ACCESS_KEY="not-the-secret")
    assert result.returncode == 1
    found = lines(result)
    assert "✓ credentials" in found  # found, but refused:
    assert "the AWS credentials were refused (InvalidSignatureException" in found["✗ identity"]
    assert "- kms:ListKeys" in found  # not tried: it could only repeat the refusal
    assert "IAM policy" not in result.stdout
    assert "not-the-secret" not in result.stdout + result.stderr
    assert result.stdout.endswith("\n1 check failed.\n")


def test_denied_permissions_print_the_policy(world):
    world.kms.inject("ListKeys", "access_denied", count=5)
    world.kms.inject("DescribeKey", "access_denied", count=5)
    result = world.doctor("--config", world.config, "--trust-domain", TD)
    assert result.returncode == 1
    found = lines(result)
    assert "denied (AccessDeniedException" in found["✗ kms:ListKeys"]
    assert "denied (on alias/SPIRE_SERVER/example_org/" in found["✗ kms:DescribeKey"]
    assert "✓ kms:ListAliases" in found and "✓ kms:GetPublicKey" in found
    assert "fix: attach the IAM policy printed below" in result.stdout
    policy = printed_policy(result)
    assert policy == {"Version": "2012-10-17", "Statement": [{
        "Sid": "SpireAwsKmsReads", "Effect": "Allow",
        "Action": ["kms:ListKeys", "kms:DescribeKey"], "Resource": "*"}]}
    assert "Attach this IAM policy to arn:aws:iam::111122223333:user/emulator" in result.stdout
    _, document = world.checks("--trust-domain", TD, expect=1)
    assert document["iam_policy"]["Statement"][0]["Action"] == ["kms:ListKeys",
                                                                 "kms:DescribeKey"]


def printed_policy(result):
    policy_text = result.stdout.split("(the permissions that were denied):\n", 1)[1]
    return json.loads(policy_text[:policy_text.index("\n}") + 2])


def test_tag_mode_tries_get_resources(world):
    """Tag mode on in the configuration: tag:GetResources is tried on this
    server's own keys (its trust domain and server id); kms:ListKeys, which
    tag mode does not use, is not."""
    world.kms.reset_calls()
    result = world.doctor("--config", world.tag_config, "--trust-domain", TD)
    assert result.returncode == 0, result.stdout + result.stderr
    found = lines(result)
    assert list(found)[6:] == ["✓ kms:ListAliases", "- kms:ListKeys", "✓ kms:DescribeKey",
                               "✓ kms:GetPublicKey", "✓ kms:ListResourceTags",
                               "✓ tag:GetResources", "✓ server id file"]
    assert (f"allowed (spire-server-td = {TD}, spire-server-id = {world.server_id}, at "
            f"{world.kms.url})") in found["✓ tag:GetResources"]
    assert "not needed in tag mode" in found["- kms:ListKeys"]
    assert world.kms.calls("GetResources") == 1 and world.kms.calls("ListKeys") == 0


def test_tag_mode_with_get_resources_denied_prints_the_policy(world):
    world.kms.inject("GetResources", "access_denied", count=1)
    result = world.doctor("--config", world.tag_config, "--trust-domain", TD)
    assert result.returncode == 1
    found = lines(result)
    assert "denied (spire-server-td = example.org" in found["✗ tag:GetResources"]
    assert "(AccessDeniedException: " in found["✗ tag:GetResources"]
    assert ("fix: attach the IAM policy printed below (tag:GetResources can only be granted by "
            "an identity-based policy, never by a KMS key policy)") in result.stdout
    assert printed_policy(result)["Statement"][0]["Action"] == ["tag:GetResources"]
    # tag mode tags every key it creates: kms:TagResource is named among the writes
    assert "kms:ScheduleKeyDeletion, kms:TagResource; doctor does not try them" in result.stdout
    assert result.stdout.endswith("\n1 check failed.\n")
    _, document = world.checks("--config", world.tag_config, "--trust-domain", TD, expect=0)
    assert document["iam_policy"] is None  # the fault was injected once


def test_list_resource_tags_denied_in_alias_mode(world):
    """The plugin reads a key's tags before deleting it in both modes: a denied
    kms:ListResourceTags fails in alias mode too, and the policy names it."""
    world.kms.inject("ListResourceTags", "access_denied", count=1)
    result = world.doctor("--config", world.config, "--trust-domain", TD)
    assert result.returncode == 1
    assert "denied (on key " in lines(result)["✗ kms:ListResourceTags"]
    assert printed_policy(result)["Statement"][0]["Action"] == ["kms:ListResourceTags"]
    assert ("kms:ScheduleKeyDeletion (and kms:TagResource when key_tags is set or keys carry "
            "spire-* tags from a tag-mode period)") in result.stdout


def test_without_config_get_resources_is_not_tried(world):
    checks, _ = world.checks("--trust-domain", TD, expect=0)
    assert checks["tag:GetResources"]["status"] == "skip"
    assert "give --config" in checks["tag:GetResources"]["message"]
    assert checks["kms:ListResourceTags"]["status"] == "ok"


def test_server_id_file_missing_is_a_warning(world):
    os.unlink(world.metadata)
    checks, _ = world.checks("--config", world.config, "--trust-domain", TD, expect=0)
    assert checks["server id file"]["status"] == "warn"
    assert "does not exist yet" in checks["server id file"]["message"]
    assert "restore the file" in checks["server id file"]["fix"]


def test_server_id_file_writable_by_others(world):
    os.chmod(world.metadata, 0o666)
    checks, _ = world.checks("--config", world.config, expect=1)
    assert checks["server id file"]["status"] == "fail"
    assert "writable by group or others (mode 0666)" in checks["server id file"]["message"]
    assert checks["server id file"]["fix"] == "chmod 600 the file"


def test_server_id_file_corrupt(world):
    world.metadata.write_text("not-a-uuid\n")
    checks, _ = world.checks("--config", world.config, expect=1)
    assert checks["server id file"]["status"] == "fail"
    assert "does not hold a UUID: the plugin refuses to start" in (
        checks["server id file"]["message"])


def test_usage_error(world):
    result = world.doctor("--yes")
    assert result.returncode == 2
    assert "--yes is not an option of doctor" in result.stderr
