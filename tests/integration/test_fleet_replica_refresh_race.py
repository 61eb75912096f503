"""Two replicas sharing one key_identifier_value: a refresh write of one that
KMS applies late must not get the key it re-points the alias to deleted by
the other's rotation (found by reasoning over the chaos soak's replica races).

The refresh reads the alias (DescribeKey: K1, the key its cache holds) and
writes the same target back (UpdateAlias). The alias lock that orders a
refresh and a rotation is per process, so the other replica can rotate the
alias to K2 and queue K1 between that read and the moment KMS applies the
write: the alias is then back on K1. If the rotated-out K1 is checked and
scheduled for deletion at once, a late enough write lands between the
deletion queue's check (no alias on K1) and ScheduleKeyDeletion: the replicas'
alias ends on a key pending deletion. A rotated-out key is first checked
after the settle delay (KM_ALIAS_SETTLE_MS here), by which time any write
the refresh started (10 s deadline) has landed; the check then finds the
alias on K1, keeps K1 and the rotating replica follows its alias back."""
import time

from keymanager_helpers import TD_PREFIX, key_state, plugin_env, sign, verify, wait_until

IDENTITY = "shared-replica"
ALIAS = f"{TD_PREFIX}{IDENTITY}/x509-CA-A"
REVERT_LATENCY_MS = 1000  # the first replica's refresh write reaches KMS this late
SCHEDULE_LATENCY_MS = 3000  # and the other's ScheduleKeyDeletion this late
SETTLE_MS = 4000


def replica_hcl(kms, refresh):
    return (f'region = "us-east-2"\n\nendpoint = "{kms.url}"\n\n'
            f'key_identifier_value = "{IDENTITY}"\n\n'
            f'refresh_aliases_interval = "{refresh}"\n\ndispose_aliases_interval = "1h"\n\n'
            f'dispose_keys_interval = "1h"\n\nlog_level = "debug"')


def start_replica(start_plugin, kms, tmp_path, name, refresh):
    directory = tmp_path / name
    directory.mkdir()
    host = start_plugin(extra_env=plugin_env(kms, KM_ALIAS_SETTLE_MS=str(SETTLE_MS)),
                        cwd=str(directory))
    host.init()
    host.configure(replica_hcl(kms, refresh))
    return host


def alias_target(kms):
    return next(a["key_id"] for a in kms.state()["aliases"] if a["name"] == ALIAS)


def test_a_late_refresh_write_never_leaves_the_alias_on_a_deleted_key(start_plugin, kms,
                                                                      tmp_path):
    refresher = start_replica(start_plugin, kms, tmp_path, "refresher", "1s")
    refresher.generate_key("x509-CA-A", "EC_P256")
    first_key = alias_target(kms)
    # The rotating replica loads K1 at start; it does not refresh during the test.
    rotator = start_replica(start_plugin, kms, tmp_path, "rotator", "1h")
    assert rotator.get_public_key("x509-CA-A") is not None

    kms.reset_calls()
    kms.inject("UpdateAlias", "latency", count=1, latency_ms=REVERT_LATENCY_MS)
    kms.inject("ScheduleKeyDeletion", "latency", count=1, latency_ms=SCHEDULE_LATENCY_MS)
    wait_until(lambda: kms.calls("UpdateAlias") >= 1, what="a refresh write in flight")
    rotator.generate_key("x509-CA-A", "EC_P256")  # K1 -> K2, K1 queued
    rotated_at = time.monotonic()

    # The refresh write lands (the alias is back on K1) and the deletion queue
    # has had its chance; at no point may the alias target a key not Enabled.
    def settled():
        target = alias_target(kms)
        assert key_state(kms, target) == "Enabled", f"the alias targets {target}, " \
                                                    f"{key_state(kms, target)}"
        return time.monotonic() - rotated_at > (SETTLE_MS + SCHEDULE_LATENCY_MS) / 1000 + 1

    wait_until(settled, timeout=30, what="the refresh write and the deletion queue's turn")
    assert alias_target(kms) == first_key
    assert key_state(kms, first_key) == "Enabled"
    # Both replicas sign with the alias's key (the rotator followed it back).
    der = kms.store.keys[first_key].public_der
    for host in (refresher, rotator):
        wait_until(lambda h=host: h.get_public_key("x509-CA-A").pkix_data == der,
                   what="the replica on the alias's key")
        answer = sign(host, "x509-CA-A", "SHA256")
        verify(der, answer.signature, "SHA256")
