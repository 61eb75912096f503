"""SSO (IAM Identity Center) profiles through the real binary: the token that
`aws sso login` cached (written here by botocore's own cache code, so the file
name is the AWS CLI's) is traded with the emulator's SSO portal for role
credentials, by the operator commands and by the plugin itself; an expired,
missing or refused token says to run `aws sso login --profile P`; the token
never appears in any output."""
import time

import pytest
from botocore.utils import JSONFileCache, SSOTokenLoader

from cli_helpers import cli_env, run_cli, start_server

ACCOUNT = "111122223333"
ROLE = "SpireOperator"
START_URL = "https://my-sso-portal.awsapps.com/start"
TOKEN = "aoaAAAAAGTOKEN-FROM-AWS-SSO-LOGIN-must-never-be-printed"
CONFIG = f"""[profile dev]
sso_session = corp
sso_account_id = {ACCOUNT}
sso_role_name = {ROLE}
region = us-east-2

[sso-session corp]
sso_start_url = {START_URL}
sso_region = us-east-2
sso_registration_scopes = sso:account:access

[profile legacy]
sso_start_url = {START_URL}
sso_region = us-east-2
sso_account_id = {ACCOUNT}
sso_role_name = {ROLE}
"""


def iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@pytest.fixture
def world(plugin_binary, kms, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "aws-config").write_text(CONFIG)

    class World:
        binary = plugin_binary
        env = cli_env(kms, home, AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None,
                      AWS_REGION=None)

        def __init__(self):
            self.kms = kms
            self.home = home

        def login(self, expires_in=3600, session_name="corp"):
            """What `aws sso login` leaves behind, in botocore's own cache layout."""
            cache = JSONFileCache(str(home / ".aws" / "sso" / "cache"))
            SSOTokenLoader(cache=cache).save_token(
                START_URL, {"startUrl": START_URL, "region": "us-east-2", "accessToken": TOKEN,
                            "expiresAt": iso(time.time() + expires_in)},
                session_name=session_name)

        def run(self, *args):
            result = run_cli(self.binary, *args, env=self.env)
            assert TOKEN not in result.stdout + result.stderr
            return result

    kms.sso_grant(TOKEN, ACCOUNT, ROLE, expiration=time.time() + 3600)
    return World()


def test_keys_list_with_an_sso_profile(world):
    world.login()
    result = world.run("keys", "list", "--profile", "dev", "--json")
    assert result.returncode == 0, result.stderr
    assert world.kms.calls("GetRoleCredentials") == 1
    assert world.kms.calls("ListKeys") == 1


def test_doctor_names_the_sso_source_and_role(world):
    world.login()
    result = world.run("doctor", "--profile", "dev")
    assert result.returncode == 0, result.stdout
    assert '✓ region: us-east-2 (from region in shared profile "dev")' in result.stdout
    assert '✓ credentials: found (source: sso, profile "dev")' in result.stdout
    assert (f"✓ identity: arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_{ROLE}_emulator/"
            "sso-user") in result.stdout


def test_legacy_sso_profile(world):
    world.login(session_name=None)  # legacy: the cache file is named after the start URL
    world.env["AWS_PROFILE"] = "legacy"
    result = world.run("keys", "list", "--region", "us-east-2")
    assert result.returncode == 0, result.stderr


def test_expired_token_says_log_in(world):
    world.login(expires_in=-60)
    result = world.run("keys", "list", "--profile", "dev")
    assert result.returncode == 2
    assert "the SSO token expired at" in result.stderr
    assert "run `aws sso login --profile dev`" in result.stderr
    assert world.kms.calls("GetRoleCredentials") == 0
    doctor = world.run("doctor", "--profile", "dev")
    assert doctor.returncode == 1
    assert "✗ credentials: " in doctor.stdout and "aws sso login --profile dev" in doctor.stdout


def test_not_logged_in(world):
    result = world.run("keys", "list", "--profile", "dev")
    assert result.returncode == 2
    assert "no cached SSO token" in result.stderr
    assert "you are not logged in; run `aws sso login --profile dev`" in result.stderr


def test_token_refused_by_the_portal(world):
    world.login()
    world.kms.sso_grant(TOKEN, ACCOUNT, ROLE, expiration=time.time() - 1)  # signed out
    result = world.run("keys", "list", "--profile", "dev")
    assert result.returncode == 2
    assert "the SSO portal refused the cached token (HTTP 401" in result.stderr
    assert "aws sso login --profile dev" in result.stderr


def test_the_plugin_itself_uses_an_sso_profile(world, start_plugin, tmp_path):
    """SPIRE servers rarely log in with SSO, but upstream's SDK chain would:
    the same chain serves the plugin."""
    world.login()
    env = dict(world.env, AWS_PROFILE="dev", AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None,
               KM_STARTUP_RETRY_MS="10000")
    host, server_id = start_server(start_plugin, world.kms, tmp_path / "server", extra_env=env)
    host.generate_key("x509-CA-A", "EC_P256")
    aliases = {alias["name"] for alias in world.kms.state()["aliases"]}
    assert f"alias/SPIRE_SERVER/example_org/{server_id}/x509-CA-A" in aliases
    assert world.kms.calls("GetRoleCredentials") == 1
    assert TOKEN not in host.stderr_text()
    assert any(record.get("source") == "sso" for record in host.log_records())
