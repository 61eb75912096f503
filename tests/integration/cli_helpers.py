"""Helpers for the operator command tests (tests/integration/test_cli_*.py):
running the real binary as an operator would (no magic cookie), a clean AWS
environment aimed at the emulator, and an account holding what an operator
finds after a while: a live server and a dead one (both made by the real
plugin), old and young orphans, a key pending deletion, a disabled one,
another trust domain, and keys that are not SPIRE's; and a tag-mode fleet
(build_tag_fleet): a live and a dead tag-mode server (made by the real plugin
in tag mode), keys tagged as upstream tags them (undated, inactive, of
example.org2, with a malformed spire-last-update)."""
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


@dataclass
class TagFleet:
    """What build_tag_fleet made: key ids by role."""
    live_server: str = ""
    live_stale_alias: str = ""  # its alias 20 days old, its tags fresh: live
    live_unaliased: str = ""    # its alias deleted, its tags fresh: live
    dead_server: str = ""
    dead_aliased: str = ""      # alias and spire-last-update 20 days old: stale-alias
    dead_unaliased: str = ""    # spire-last-update 20 days old, no alias: orphan
    dead_undated: str = ""      # active, no spire-last-update, created 40 days ago: orphan
    dead_inactive: str = ""     # spire-active=false, not pending deletion, 40 days old: orphan
    young_undated: str = ""     # active, no spire-last-update, created a day ago: live
    other_td: str = ""          # spire-server-td example.org2 only (no description): orphan
    malformed: str = ""         # spire-last-update "yesterday", no description: malformed-tags

    def alias(self, server_id, spire_key_id):
        return f"alias/SPIRE_SERVER/example_org/{server_id}/{spire_key_id}"

    def dead_keys(self):
        return {self.dead_aliased, self.dead_unaliased, self.dead_undated, self.dead_inactive}


TAG_PEER = "eeeeeeee-0000-4000-8000-000000000005"  # a third tag-mode server


def tag_mode_server_keys(start_plugin, kms, tmp_path, name, spire_key_ids):
    """A plugin in tag mode (the tagging API at the emulator) that generates
    keys and stops; its server id and {SPIRE key id: KMS key id}."""
    from tag_mode_helpers import Server

    server = Server(start_plugin, kms, tmp_path, name=name).configure(tag_mode=True)
    keys = {}
    for spire_key_id in spire_key_ids:
        server.host.generate_key(spire_key_id, "EC_P256")
        keys[spire_key_id] = alias_target(kms, server.alias(spire_key_id))
    server_id = server.server_id
    server.host.shutdown()
    return server_id, keys


def upstream_tags(server_id, spire_key_id, active="true", last_update=None,
                  trust_domain="example.org"):
    tags = {"spire-server-td": trust_domain, "spire-server-id": server_id,
            "spire-active": active, "spire-key-id": spire_key_id}
    if last_update is not None:
        tags["spire-last-update"] = last_update
    return tags


def build_tag_fleet(start_plugin, kms, tmp_path):
    """The tag-mode fleet described on TagFleet."""
    fleet = TagFleet()
    kms_api = boto3_client("kms", kms)
    fleet.live_server, live = tag_mode_server_keys(start_plugin, kms, tmp_path, "tag-live",
                                                   ("x509-CA-A", "JWT-Signer-A"))
    fleet.live_stale_alias, fleet.live_unaliased = live["x509-CA-A"], live["JWT-Signer-A"]
    now = kms.now()
    kms.set_alias_last_updated(fleet.alias(fleet.live_server, "x509-CA-A"), now - 20 * DAY)
    kms_api.delete_alias(AliasName=fleet.alias(fleet.live_server, "JWT-Signer-A"))
    fleet.dead_server, dead = tag_mode_server_keys(start_plugin, kms, tmp_path, "tag-dead",
                                                   ("x509-CA-A", "JWT-Signer-A"))
    fleet.dead_aliased, fleet.dead_unaliased = dead["x509-CA-A"], dead["JWT-Signer-A"]
    stale = str(int(now - 20 * DAY))
    for key_id in dead.values():
        kms.set_key_creation_date(key_id, now - 30 * DAY)
        kms_api.tag_resource(KeyId=key_id, Tags=[{"TagKey": "spire-last-update",
                                                  "TagValue": stale}])
    kms.set_alias_last_updated(fleet.alias(fleet.dead_server, "x509-CA-A"), now - 20 * DAY)
    kms_api.delete_alias(AliasName=fleet.alias(fleet.dead_server, "JWT-Signer-A"))
    description = "SPIRE_SERVER_KEY/example_org/"
    fleet.dead_undated = kms.create_key(
        "ECC_NIST_P256", description + "WIT-Signer-A", now - 40 * DAY,
        tags=upstream_tags(fleet.dead_server, "WIT-Signer-A"))
    fleet.dead_inactive = kms.create_key(
        "ECC_NIST_P256", description + "x509-CA-B", now - 40 * DAY,
        tags=upstream_tags(fleet.dead_server, "x509-CA-B", active="false", last_update=stale))
    fleet.young_undated = kms.create_key(
        "ECC_NIST_P256", description + "WIT-Signer-B", now - DAY,
        tags=upstream_tags(TAG_PEER, "WIT-Signer-B"))
    fleet.other_td = kms.create_key(
        "ECC_NIST_P256", "", now - 40 * DAY,
        tags=upstream_tags(OTHER_SERVER, "x509-CA-A", last_update=stale,
                           trust_domain="example.org2"))
    fleet.malformed = kms.create_key(
        "ECC_NIST_P256", "", now - 40 * DAY,
        tags=upstream_tags(TAG_PEER, "JWT-Signer-B", last_update="yesterday"))
    return fleet


def key_tags(kms, key_id):
    return next(key["tags"] for key in kms.state()["keys"] if key["id"] == key_id)


def key_states(kms):
    return {key["id"]: key["state"] for key in kms.state()["keys"]}


def alias_names(kms):
    return {alias["name"] for alias in kms.state()["aliases"]}
