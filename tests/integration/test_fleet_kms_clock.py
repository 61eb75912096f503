"""The fleet tasks and `keys list` judge KMS's dates (alias LastUpdatedDate,
key CreationDate) on KMS's clock as the plugin learned it from the Date of
KMS's answers, not on the host's: the emulator's clock runs 10 days ahead
(clock_follows_emulator: its Date and SigV4 time check follow advance_clock,
as a real KMS whose clock differs from the host's). A peer alias 8 days old
on KMS's clock (in the host's future) is stale; one 1 day old is not; an
unaliased key of ours 2 days old on KMS's clock is an orphan."""
import json

import pytest

from cli_helpers import cli_env, run_cli
from emulator.kms_emulator import Emulator
from keymanager_helpers import TD_PREFIX, hcl, key_state, plugin_env, wait_until

DAY = 86400.0
AHEAD = 10 * DAY
FLEET = ('refresh_aliases_interval = "1s"\n\ndispose_aliases_interval = "1s"\n\n'
         'dispose_keys_interval = "1s"\n\nstale_alias_age = "168h"\n\n'
         'orphan_key_age = "24h"\n\nlog_level = "debug"')
PEER = "dddddddd-0000-4000-8000-000000000004"


@pytest.fixture
def kms_ahead():
    emulator = Emulator(clock_follows_emulator=True).start()
    emulator.advance_clock(AHEAD)
    try:
        yield emulator
    finally:
        emulator.stop()


def dated_world(kms):
    """A peer with a stale and a fresh alias, and an old unaliased key of ours."""
    now = kms.now()
    world = {}
    for name, age in (("x509-CA-A", 8 * DAY), ("JWT-Signer-A", DAY)):
        key = kms.create_key("ECC_NIST_P256", f"SPIRE_SERVER_KEY/example_org/{name}",
                             creation_date=now - 30 * DAY)
        kms.create_alias(f"{TD_PREFIX}{PEER}/{name}", key, last_updated=now - age)
        world[name] = key
    world["orphan"] = kms.create_key("ECC_NIST_P256", "SPIRE_SERVER_KEY/example_org/x509-CA-B",
                                     creation_date=now - 2 * DAY)
    return world


def test_fleet_ages_kms_dates_on_kms_clock(start_plugin, kms_ahead, tmp_path):
    kms = kms_ahead
    world = dated_world(kms)
    host = start_plugin(extra_env=plugin_env(kms), cwd=str(tmp_path))
    host.init()
    host.configure(hcl(kms, str(tmp_path / "key_metadata"), FLEET))
    ours = host.generate_key("x509-CA-A", "EC_P256")

    wait_until(lambda: key_state(kms, world["x509-CA-A"]) == "PendingDeletion", timeout=30,
               what="the peer's stale alias removed and its key deleted")
    wait_until(lambda: key_state(kms, world["orphan"]) == "PendingDeletion", timeout=30,
               what="the orphan deleted")
    aliases = {a["name"]: a["key_id"] for a in kms.state()["aliases"]}
    assert f"{TD_PREFIX}{PEER}/x509-CA-A" not in aliases
    assert aliases[f"{TD_PREFIX}{PEER}/JWT-Signer-A"] == world["JWT-Signer-A"]
    assert key_state(kms, world["JWT-Signer-A"]) == "Enabled"
    assert host.get_public_key("x509-CA-A") == ours
    warned = [r for r in host.log_records() if isinstance(r, dict)
              and r.get("offset_seconds") is not None]
    assert warned and abs(int(warned[0]["offset_seconds"]) - AHEAD) < 300


def test_keys_list_judges_on_kms_clock(plugin_binary, kms_ahead, tmp_path):
    kms = kms_ahead
    world = dated_world(kms)
    result = run_cli(plugin_binary, "keys", "list", "--json", "--stale-alias-age", "168h",
                     "--orphan-key-age", "24h", env=cli_env(kms, tmp_path))
    assert result.returncode == 0, result.stderr
    verdicts = {k["key_id"]: k["verdict"] for k in json.loads(result.stdout)["keys"]}
    assert verdicts == {world["x509-CA-A"]: "stale-alias", world["JWT-Signer-A"]: "live",
                        world["orphan"]: "orphan"}
