"""Helpers for the operator command tests (tests/integration/test_cli_*.py):
running the real binary as an operator would (no magic cookie), a clean AWS
environment aimed at the emulator, and an account holding what an operator
finds after a while: a live server and a dead one (both made by the real
plugin), old and young orphans, a key pending deletion, a disabled one,
another trust domain, and keys that are not SPIRE's."""
import os
import subprocess
from dataclasses import dataclass, field

from emulator.fixtures import boto3_client
from keymanager_helpers import hcl, plugin_env, read_server_id

DAY = 86400
HOUR = 3600
TD = "example.org"
OTHER_SERVER = "cccccccc-0000-4000-8000-000000000003"


def cli_env(kms, home, **extra):
    """An operator's shell: emulator credentials, every AWS endpoint (KMS, STS,
    the SSO portal) at the emulator, no instance metadata, no shared files."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "AWS_ACCESS_KEY_ID": kms.access_key_id,
           "AWS_SECRET_ACCESS_KEY": kms.secret_access_key,
           "AWS_ENDPOINT_URL": kms.url, "AWS_REGION": "us-east-2",
           "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_CONFIG_FILE": str(home / "aws-config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials")}
    for name in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if name in os.environ:
            env[name] = os.environ[name]
    for name, value in extra.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run_cli(binary, *args, env, timeout=120, stderr=subprocess.PIPE):
    result = subprocess.run([binary, *args], env=env, stdout=subprocess.PIPE, stderr=stderr,
                            text=True, timeout=timeout, check=False)
    if result.stderr:
        assert "Sanitizer" not in result.stderr, result.stderr
        assert "runtime error" not in result.stderr, result.stderr
    return result


@dataclass
class Account:
    """What the account fixture made: key ids by role."""
    live_server: str = ""
    dead_server: str = ""
    live_keys: dict = field(default_factory=dict)  # SPIRE key id -> KMS key id
    dead_keys: dict = field(default_factory=dict)
    old_orphan: str = ""
    young_orphan: str = ""
    pending: str = ""
    disabled: str = ""
    other_td_stale: str = ""
    other_td_orphan: str = ""
    unrelated_aliased: str = ""
    unrelated: str = ""

    def dead_alias(self, spire_key_id):
        return f"alias/SPIRE_SERVER/example_org/{self.dead_server}/{spire_key_id}"

    def live_alias(self, spire_key_id):
        return f"alias/SPIRE_SERVER/example_org/{self.live_server}/{spire_key_id}"


def key_id_of(public_key_id_or_arn):
    return public_key_id_or_arn.rsplit("/", 1)[-1]


def alias_target(kms, alias_name):
    for alias in kms.state()["aliases"]:
        if alias["name"] == alias_name:
            return alias["key_id"]
    return None


def start_server(start_plugin, kms, directory, extra_env=None):
    """A plugin configured for example.org in its own directory; its server id."""
    directory.mkdir()
    metadata = str(directory / "key_metadata")
    host = start_plugin(extra_env=extra_env or plugin_env(kms), cwd=str(directory))
    host.init()
    host.configure(hcl(kms, metadata, 'refresh_aliases_interval = "42h"\n\n'
                                      'dispose_aliases_interval = "1000h"\n\n'
                                      'dispose_keys_interval = "1000h"'), trust_domain=TD)
    return host, read_server_id(metadata)


def make_server_keys(start_plugin, kms, directory):
    host, server_id = start_server(start_plugin, kms, directory)
    keys = {}
    for spire_key_id in ("x509-CA-A", "JWT-Signer-A"):
        host.generate_key(spire_key_id, "EC_P256")
        keys[spire_key_id] = alias_target(
            kms, f"alias/SPIRE_SERVER/example_org/{server_id}/{spire_key_id}")
    host.shutdown()
    return server_id, keys


def build_account(start_plugin, kms, tmp_path):
    """The account described in the module docstring."""
    account = Account()
    account.live_server, account.live_keys = make_server_keys(start_plugin, kms,
                                                              tmp_path / "live")
    account.dead_server, account.dead_keys = make_server_keys(start_plugin, kms,
                                                              tmp_path / "dead")
    now = kms.now()
    for spire_key_id in account.dead_keys:
        kms.set_alias_last_updated(account.dead_alias(spire_key_id), now - 20 * DAY)
    description = "SPIRE_SERVER_KEY/example_org/"
    account.old_orphan = kms.create_key("ECC_NIST_P256", description + "x509-CA-B",
                                        now - 5 * DAY)
    account.young_orphan = kms.create_key("ECC_NIST_P256", description + "JWT-Signer-B",
                                          now - HOUR)
    account.pending = kms.create_key("ECC_NIST_P256", description + "x509-CA-0", now - 40 * DAY)
    boto3_client("kms", kms).schedule_key_deletion(KeyId=account.pending, PendingWindowInDays=7)
    account.disabled = kms.create_key("ECC_NIST_P256", description + "JWT-Signer-0",
                                      now - 40 * DAY)
    kms.disable_key(account.disabled)
    account.other_td_stale = kms.create_key("ECC_NIST_P256", "SPIRE_SERVER_KEY/other_org/x509-CA-A",
                                            now - 60 * DAY)
    kms.create_alias(f"alias/SPIRE_SERVER/other_org/{OTHER_SERVER}/x509-CA-A",
                     account.other_td_stale, now - 30 * DAY)
    account.other_td_orphan = kms.create_key("ECC_NIST_P256", "SPIRE_SERVER_KEY/other_org/JWT",
                                             now - 30 * DAY)
    account.unrelated_aliased = kms.create_key("ECC_NIST_P256", "payments signing key",
                                               now - 90 * DAY)
    kms.create_alias("alias/payments", account.unrelated_aliased, now - 90 * DAY)
    account.unrelated = kms.create_key("ECC_NIST_P256", "", now - 90 * DAY)
    return account


def key_states(kms):
    return {key["id"]: key["state"] for key in kms.state()["keys"]}


def alias_names(kms):
    return {alias["name"] for alias in kms.state()["aliases"]}
