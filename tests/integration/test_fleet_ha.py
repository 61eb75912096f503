"""High availability through the real binary (issue 6): two plugin processes
with different server ids in one trust domain never touch each other's fresh
aliases and keys, and one removes the other's only once the other stopped
refreshing for stale_alias_age; two replicas sharing one key_identifier_value
do not revert each other's rotations. The ages keep their defaults (they are
bounded below); the tests move the emulator's alias dates instead."""
import time

from keymanager_helpers import TD_PREFIX, hcl, key_state, plugin_env, read_server_id, wait_until

STALE_S = 336 * 3600  # the default stale_alias_age
MARGIN_S = 60  # both sides of the threshold, far above test run times


def fleet_hcl(extra=""):
    text = ('refresh_aliases_interval = "1s"\n\ndispose_aliases_interval = "1s"\n\n'
            'dispose_keys_interval = "1s"\n\nlog_level = "debug"')
    return text + ("\n\n" + extra if extra else "")


def start_server(start_plugin, kms, tmp_path, name, identity=None):
    """A configured plugin in its own directory: its own server id from its
    metadata file, or the shared key_identifier_value identity."""
    directory = tmp_path / name
    directory.mkdir()
    host = start_plugin(extra_env=plugin_env(kms), cwd=str(directory))
    host.init()
    if identity is None:
        metadata = str(directory / "key_metadata")
        host.configure(hcl(kms, metadata, fleet_hcl()))
        return host, read_server_id(metadata)
    text = (f'region = "us-east-2"\n\nendpoint = "{kms.url}"\n\n'
            f'key_identifier_value = "{identity}"\n\n' + fleet_hcl())
    host.configure(text)
    return host, identity


def runs(host, task):
    return [r for r in host.log_records()
            if isinstance(r, dict) and r.get("@message") == "task run finished"
            and r.get("task") == task]


def server_aliases(kms, server_id):
    prefix = f"{TD_PREFIX}{server_id}/"
    return {a["name"]: a["key_id"] for a in kms.state()["aliases"]
            if a["name"].startswith(prefix)}


def test_two_servers_keep_off_each_others_fresh_keys_until_one_stops(start_plugin, kms,
                                                                    tmp_path):
    first, first_id = start_server(start_plugin, kms, tmp_path, "first")
    second, second_id = start_server(start_plugin, kms, tmp_path, "second")
    assert first_id != second_id
    for host in (first, second):
        host.generate_key("x509-CA-A", "EC_P256")
        host.generate_key("JWT-Signer-A", "EC_P256")
    first_aliases = server_aliases(kms, first_id)
    second_aliases = server_aliases(kms, second_id)
    assert len(first_aliases) == 2 and len(second_aliases) == 2

    # Dispose runs in each server find nothing of the other's to remove while
    # both run, even with aliases last refreshed just under stale_alias_age ago
    # (the owner's next refresh bumps them).
    for name in second_aliases:
        kms.set_alias_last_updated(name, time.time() - STALE_S + MARGIN_S)
    done = len(runs(first, "dispose_aliases"))
    wait_until(lambda: len(runs(first, "dispose_aliases")) >= done + 3, timeout=30,
               what="three dispose runs of the first server")
    assert server_aliases(kms, first_id) == first_aliases
    assert server_aliases(kms, second_id) == second_aliases
    for key in list(first_aliases.values()) + list(second_aliases.values()):
        assert key_state(kms, key) == "Enabled"

    second.shutdown()
    assert second.wait(10) == 0

    # Stopped, not refreshed for just under stale_alias_age: kept.
    for name in second_aliases:
        kms.set_alias_last_updated(name, time.time() - STALE_S + MARGIN_S)
    done = len(runs(first, "dispose_aliases"))
    wait_until(lambda: len(runs(first, "dispose_aliases")) >= done + 2, timeout=30,
               what="two dispose runs of the first server")
    assert server_aliases(kms, second_id) == second_aliases

    # Not refreshed for longer than stale_alias_age: removed with its keys.
    for name in second_aliases:
        kms.set_alias_last_updated(name, time.time() - STALE_S - MARGIN_S)
    wait_until(lambda: not server_aliases(kms, second_id), timeout=30,
               what="the stopped server's aliases removed")
    wait_until(lambda: all(key_state(kms, k) == "PendingDeletion"
                           for k in second_aliases.values()), what="its keys deleted")
    assert server_aliases(kms, first_id) == first_aliases
    for key in first_aliases.values():
        assert key_state(kms, key) == "Enabled"
    first.get_public_key("x509-CA-A")


def test_replicas_sharing_an_identity_do_not_revert_rotations(start_plugin, kms, tmp_path):
    one, identity = start_server(start_plugin, kms, tmp_path, "one", identity="shared-server")
    two, _ = start_server(start_plugin, kms, tmp_path, "two", identity="shared-server")
    alias = TD_PREFIX + "shared-server/x509-CA-A"

    one.generate_key("x509-CA-A", "EC_P256")
    first_key = server_aliases(kms, identity)[alias]
    two.generate_key("x509-CA-A", "EC_P256")  # the replica rotates the shared alias
    rotated = server_aliases(kms, identity)[alias]
    assert rotated != first_key

    done = len(runs(one, "refresh_aliases"))
    wait_until(lambda: len(runs(one, "refresh_aliases")) >= done + 3, timeout=15,
               what="three refresh runs of the first replica")
    assert server_aliases(kms, identity)[alias] == rotated
    moved = [r for r in one.log_records() if isinstance(r, dict)
             and r.get("@level") == "warn" and r.get("alias") == alias]
    assert moved and moved[-1]["current_key"].endswith(rotated.rsplit("/", 1)[-1])

    # the replica that rotated keeps the alias fresh; the other leaves it be
    before = next(a["last_updated"] for a in kms.state()["aliases"] if a["name"] == alias)
    wait_until(lambda: next(a["last_updated"] for a in kms.state()["aliases"]
                            if a["name"] == alias) > before, timeout=10,
               what="the rotating replica's refresh")
    assert server_aliases(kms, identity)[alias] == rotated


def test_reconfigure_never_lets_the_old_refresh_revert_a_rotation(start_plugin, kms, tmp_path):
    """The alias lock belongs to the manager, not to a state: a refresh of the
    replaced state whose UpdateAlias is still on its way to KMS holds it, so the
    new state's rotation waits for that write instead of being reverted by it
    later. The write is not abandoned on stop (KMS would still apply it), and
    the rotated-out key is deleted only once KMS shows no alias targets it."""
    host, server_id = start_server(start_plugin, kms, tmp_path, "server")
    host.generate_key("x509-CA-A", "EC_P256")
    alias = f"{TD_PREFIX}{server_id}/x509-CA-A"
    first_key = server_aliases(kms, server_id)[alias]
    kms.reset_calls()
    # The old state's next refresh write reaches KMS 3 s late; the rotated-out
    # key's deletion is slow to be scheduled (throttled), as it may be in AWS.
    kms.inject("UpdateAlias", "latency", count=1, latency_ms=3000)
    kms.inject("ScheduleKeyDeletion", "throttle", count=6)
    wait_until(lambda: kms.calls("UpdateAlias") >= 1, what="a refresh write in flight")

    host.configure(hcl(kms, str(tmp_path / "server" / "key_metadata"), fleet_hcl()))
    rotated = host.generate_key("x509-CA-A", "EC_P256")

    wait_until(lambda: key_state(kms, first_key) == "PendingDeletion", timeout=30,
               what="the rotated-out key deleted")
    second_key = server_aliases(kms, server_id)[alias]
    assert second_key != first_key
    assert key_state(kms, second_key) == "Enabled"
    assert host.get_public_key("x509-CA-A") == rotated
    done = len(runs(host, "refresh_aliases"))
    wait_until(lambda: len(runs(host, "refresh_aliases")) >= done + 2, timeout=15,
               what="two refresh runs of the new state")
    assert server_aliases(kms, server_id)[alias] == second_key
    assert host.get_public_key("x509-CA-A") == rotated
