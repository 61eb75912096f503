"""Helpers for the tag-based key discovery tests (tests/integration/test_tag_mode*.py):
a plugin configured in tag mode (or alias mode) against the emulator, with the
tagging API pointed at it; the spire-* tags of the emulator's keys; keys tagged
as SPIRE's built-in plugin tags them, made directly in the emulator."""
import time

from keymanager_helpers import TD_PREFIX, hcl, plugin_env, read_server_id, wait_until

HOUR = 3600
DAY = 24 * HOUR
STALE_S = 336 * HOUR
ORPHAN_S = 48 * HOUR
MARGIN_S = 60
FAR = "1000h"
REFRESH_FAR = "42h"
TRUST_DOMAIN = "example.org"
SIX_KEYS = ("x509-CA-A", "x509-CA-B", "JWT-Signer-A", "JWT-Signer-B", "WIT-Signer-A",
            "WIT-Signer-B")


def tag_env(kms, **extra):
    """The plugin's environment: the emulator for KMS, STS and the tagging API."""
    return plugin_env(kms, AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API=kms.url, **extra)


def mode_hcl(kms, metadata, tag_mode=True, refresh=REFRESH_FAR, dispose_aliases=FAR,
             dispose_keys=FAR, extra=""):
    text = (f"enable_tag_based_key_discovery = {'true' if tag_mode else 'false'}\n\n"
            f'refresh_aliases_interval = "{refresh}"\n\n'
            f'dispose_aliases_interval = "{dispose_aliases}"\n\n'
            f'dispose_keys_interval = "{dispose_keys}"\n\nlog_level = "debug"')
    return hcl(kms, metadata, text + ("\n\n" + extra if extra else ""))


class Server:
    """One plugin process with its own directory (its server id file)."""

    def __init__(self, start_plugin, kms, tmp_path, name="server", trust_domain=TRUST_DOMAIN,
                 extra_env=None):
        self.kms = kms
        self.directory = tmp_path / name
        self.directory.mkdir(exist_ok=True)
        self.metadata = str(self.directory / "key_metadata")
        self.trust_domain = trust_domain
        self.host = start_plugin(extra_env=tag_env(kms, **(extra_env or {})),
                                 cwd=str(self.directory))
        self.host.init()

    def configure(self, tag_mode=True, **settings):
        self.host.configure(mode_hcl(self.kms, self.metadata, tag_mode, **settings),
                            trust_domain=self.trust_domain)
        return self

    @property
    def server_id(self):
        return read_server_id(self.metadata)

    def alias(self, spire_id):
        return f"{TD_PREFIX}{self.server_id}/{spire_id}"


def keys(kms):
    return {key["id"]: key for key in kms.state()["keys"]}


def aliases(kms):
    return {a["name"]: a for a in kms.state()["aliases"]}


def tags(kms, key_id):
    return keys(kms)[key_id]["tags"]


def alias_target(kms, alias_name):
    alias = aliases(kms).get(alias_name)
    return alias["key_id"] if alias else None


def active_keys(kms, server_id, spire_id, trust_domain=TRUST_DOMAIN):
    """Keys tagged spire-active=true for one SPIRE key id of one server (any state)."""
    return [k["id"] for k in kms.state()["keys"]
            if k["tags"].get("spire-server-td") == trust_domain
            and k["tags"].get("spire-server-id") == server_id
            and k["tags"].get("spire-key-id") == spire_id
            and k["tags"].get("spire-active") == "true"]


def usable_active_keys(kms, server_id, spire_id):
    """Active-tagged keys not pending deletion: what discovery could pick."""
    states = {k["id"]: k["state"] for k in kms.state()["keys"]}
    return [k for k in active_keys(kms, server_id, spire_id) if states[k] == "Enabled"]


def spire_tags(server_id, spire_id, active="true", last_update=None, trust_domain=TRUST_DOMAIN):
    """Tags as SPIRE's built-in plugin writes them (last_update None: now)."""
    stamp = int(time.time()) if last_update is None else last_update
    result = {"spire-server-td": trust_domain, "spire-server-id": server_id,
              "spire-active": active, "spire-key-id": spire_id}
    if stamp is not False:
        result["spire-last-update"] = str(stamp)
    return result


def tagged_key(kms, server_id, spire_id, age_s=None, active="true", last_update=None,
               trust_domain=TRUST_DOMAIN, created_age_s=30 * DAY, with_alias=False,
               alias_age_s=None):
    """A key of another server tagged as upstream tags it; its spire-last-update
    age_s ago (None: now; False: no tag). Returns the key id."""
    stamp = False if age_s is False else (None if age_s is None else int(time.time() - age_s))
    if last_update is not None:
        stamp = last_update
    description = f"SPIRE_SERVER_KEY/{trust_domain.replace('.', '_')}/{spire_id}"
    key_id = kms.create_key("ECC_NIST_P256", description,
                            creation_date=time.time() - created_age_s,
                            tags=spire_tags(server_id, spire_id, active, stamp, trust_domain))
    if with_alias:
        name = f"alias/SPIRE_SERVER/{trust_domain.replace('.', '_')}/{server_id}/{spire_id}"
        kms.create_alias(name, key_id,
                         last_updated=None if alias_age_s is None else time.time() - alias_age_s)
    return key_id


def runs(host, task):
    return [r for r in host.log_records()
            if isinstance(r, dict) and r.get("@message") == "task run finished"
            and r.get("task") == task]


def wait_runs(host, task, count, timeout=20.0):
    return wait_until(lambda: len(runs(host, task)) >= count and runs(host, task), timeout,
                      f"{count} finished {task} runs")


def messages(host):
    return [r.get("@message") for r in host.log_records() if isinstance(r, dict)]


def configured_record(host):
    return wait_until(lambda: next((r for r in host.log_records() if isinstance(r, dict)
                                    and r.get("@message") == "Configured"), None),
                      what="the Configured log line")


def pend(kms, key_id, days=7):
    """Puts a key in PendingDeletion as ScheduleKeyDeletion does, whatever its tags."""
    with kms.store.lock:
        key = kms.store.keys[key_id]
        key.state = "PendingDeletion"
        key.deletion_date = kms.now() + days * DAY
