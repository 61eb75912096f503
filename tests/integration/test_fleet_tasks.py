"""Fleet tasks through the real binary against the KMS emulator (issue 6):
refresh aliases, dispose aliases, dispose keys, each on its own period; the
age thresholds at their boundaries; trust-domain and server names that share
prefixes; foreign trust domains and other servers' fresh aliases untouched;
exact KMS calls per run (the plugin logs its own count at debug); KMS faults in
every step; Shutdown while a task is in a slow KMS call."""
import time

import pytest

from keymanager_helpers import (TD_PREFIX, hcl, key_state, plugin_env, read_server_id,
                                wait_until)

FAR = "1000h"
REFRESH_FAR = "42h"  # the longest refresh_aliases_interval allowed (a quarter of 168h)
HOUR = 3600
STALE_S = 336 * HOUR
ORPHAN_S = 48 * HOUR
MARGIN_S = 60  # both sides of a threshold, far above test run times


def fleet_hcl(refresh=REFRESH_FAR, dispose_aliases=FAR, dispose_keys=FAR, extra=""):
    text = (f'refresh_aliases_interval = "{refresh}"\n\n'
            f'dispose_aliases_interval = "{dispose_aliases}"\n\n'
            f'dispose_keys_interval = "{dispose_keys}"\n\nlog_level = "debug"')
    return text + ("\n\n" + extra if extra else "")


def start_fleet(start_plugin, kms, tmp_path, name="server", trust_domain="example.org",
                **intervals):
    """A configured plugin in its own directory and its server id."""
    directory = tmp_path / name
    directory.mkdir()
    metadata = str(directory / "key_metadata")
    extra = intervals.pop("extra", "")
    host = start_plugin(extra_env=plugin_env(kms), cwd=str(directory))
    host.init()
    host.configure(hcl(kms, metadata, fleet_hcl(extra=extra, **intervals)),
                   trust_domain=trust_domain)
    return host, read_server_id(metadata)


def runs(host, task):
    """The plugin's figures for each finished run of task."""
    return [r for r in host.log_records()
            if isinstance(r, dict) and r.get("@message") == "task run finished"
            and r.get("task") == task]


def wait_runs(host, task, count, timeout=15.0):
    return wait_until(lambda: len(runs(host, task)) >= count and runs(host, task), timeout,
                      f"{count} finished {task} runs")


def aliases(kms):
    return {a["name"]: a for a in kms.state()["aliases"]}


def foreign_alias(kms, name, age_s, description="SPIRE_SERVER_KEY/example_org/x509-CA-A"):
    """A key and an alias to it, last updated age_s ago; returns the key id."""
    key_id = kms.create_key("ECC_NIST_P256", description)
    kms.create_alias(name, key_id, last_updated=time.time() - age_s)
    return key_id


def old_key(kms, description, age_s):
    return kms.create_key("ECC_NIST_P256", description, creation_date=time.time() - age_s)


# ---- refresh aliases ----------------------------------------------------------------


def test_refresh_bumps_our_aliases_each_period(start_plugin, kms, tmp_path):
    host, server_id = start_fleet(start_plugin, kms, tmp_path, refresh="1s")
    host.generate_key("x509-CA-A", "EC_P256")
    host.generate_key("JWT-Signer-A", "EC_P256")
    ours = [TD_PREFIX + server_id + "/x509-CA-A", TD_PREFIX + server_id + "/JWT-Signer-A"]
    targets = {name: aliases(kms)[name]["key_id"] for name in ours}
    for name in ours:
        kms.set_alias_last_updated(name, time.time() - 10 * 24 * HOUR)

    wait_until(lambda: all(aliases(kms)[n]["last_updated"] > time.time() - 60 for n in ours),
               what="our aliases refreshed")
    assert {name: aliases(kms)[name]["key_id"] for name in ours} == targets

    # Runs whose record appears after the reset may have begun before it; the
    # run after such a record begins after it, so runs done+1 on are whole.
    kms.reset_calls()
    done = len(runs(host, "refresh_aliases"))
    records = wait_runs(host, "refresh_aliases", done + 3)
    for record in records[done + 1:done + 3]:
        assert record["calls"] == "4" and record["aliases_scanned"] == "2"
        assert record["refreshed"] == "2" and record["failures"] == "0"
    calls = kms.calls()
    assert set(calls) <= {"DescribeKey", "UpdateAlias"}
    assert calls["UpdateAlias"] >= 4 and calls["DescribeKey"] >= 4


def test_refresh_adopts_an_alias_that_now_targets_another_key(start_plugin, kms, kms_client,
                                                             tmp_path):
    """A replica sharing our server id rotated the key: refresh never reverts
    the alias; it warns once and this server serves the replica's key from then on."""
    host, server_id = start_fleet(start_plugin, kms, tmp_path, refresh="1s")
    before = host.generate_key("x509-CA-A", "EC_P256")
    name = TD_PREFIX + server_id + "/x509-CA-A"
    other = kms.create_key("ECC_NIST_P256", "SPIRE_SERVER_KEY/example_org/x509-CA-A")
    kms_client.update_alias(AliasName=name, TargetKeyId=other)
    other_pkix = kms_client.get_public_key(KeyId=other)["PublicKey"]

    done = len(runs(host, "refresh_aliases"))
    wait_runs(host, "refresh_aliases", done + 2)
    assert aliases(kms)[name]["key_id"] == other
    adopted = host.get_public_key("x509-CA-A")
    assert adopted.pkix_data == other_pkix and adopted.pkix_data != before.pkix_data
    warnings = [r for r in host.log_records() if isinstance(r, dict)
                and r.get("@level") == "warn" and r.get("alias") == name]
    assert len(warnings) == 1 and warnings[0]["current_key"] == other
    assert key_state(kms, other) == "Enabled"


def test_dispose_aliases_only_stale_aliases_of_other_servers(start_plugin, kms, tmp_path):
    host, server_id = start_fleet(start_plugin, kms, tmp_path, dispose_aliases="1s")
    host.generate_key("x509-CA-A", "EC_P256")
    own = TD_PREFIX + server_id + "/x509-CA-A"
    kms.set_alias_last_updated(own, time.time() - 400 * 24 * HOUR)
    stale = TD_PREFIX + "peer-server/x509-CA-A"
    stale_key = foreign_alias(kms, stale, STALE_S + MARGIN_S)
    kept = {
        TD_PREFIX + "peer-server/JWT-Signer-A": STALE_S - MARGIN_S,  # 13 d 23 h 59 min
        TD_PREFIX + server_id + "0/x509-CA-A": 5 * 24 * HOUR,  # fresh, id shares our prefix
        "alias/SPIRE_SERVER/example_org2/peer-server/x509-CA-A": STALE_S + MARGIN_S,
        "alias/SPIRE_SERVER/example_org_uk/peer-server/x509-CA-A": STALE_S + MARGIN_S,
        "alias/SPIRE_SERVER/other_org/peer-server/x509-CA-A": STALE_S + MARGIN_S,
        "alias/SPIRE_SERVER/example_org": STALE_S + MARGIN_S,
        "alias/application-key": STALE_S + MARGIN_S,
    }
    kept_keys = [foreign_alias(kms, name, age) for name, age in kept.items()]

    wait_until(lambda: stale not in aliases(kms), what="stale alias deleted")
    wait_until(lambda: key_state(kms, stale_key) == "PendingDeletion", what="its key deleted")
    done = len(runs(host, "dispose_aliases"))
    wait_runs(host, "dispose_aliases", done + 1)

    left = aliases(kms)
    assert own in left
    assert all(name in left for name in kept)
    assert all(key_state(kms, key) == "Enabled" for key in kept_keys)
    assert key_state(kms, left[own]["key_id"]) == "Enabled"


def test_dispose_aliases_of_dotted_and_underscored_trust_domains(start_plugin, kms, tmp_path):
    """As upstream, example_org and example.org share alias names (documented)."""
    host, _ = start_fleet(start_plugin, kms, tmp_path, trust_domain="example_org",
                          dispose_aliases="1s")
    stale = TD_PREFIX + "peer-server/x509-CA-A"
    foreign_alias(kms, stale, STALE_S + MARGIN_S)
    dotted = "alias/SPIRE_SERVER/example_org_uk/peer-server/x509-CA-A"
    foreign_alias(kms, dotted, STALE_S + MARGIN_S)
    wait_until(lambda: stale not in aliases(kms), what="stale alias deleted")
    done = len(runs(host, "dispose_aliases"))
    wait_runs(host, "dispose_aliases", done + 1)
    assert dotted in aliases(kms)


# ---- dispose keys -------------------------------------------------------------------


def test_dispose_keys_only_old_unaliased_keys_of_our_trust_domain(start_plugin, kms, tmp_path):
    host, server_id = start_fleet(start_plugin, kms, tmp_path, dispose_keys="1s")
    host.generate_key("x509-CA-A", "EC_P256")
    ours = aliases(kms)[TD_PREFIX + server_id + "/x509-CA-A"]["key_id"]
    kms.set_key_creation_date(ours, time.time() - 30 * 24 * HOUR)
    pruned = [old_key(kms, "SPIRE_SERVER_KEY/example_org/x509-CA-B", ORPHAN_S + MARGIN_S),
              old_key(kms, "SPIRE_SERVER/example_org", ORPHAN_S + MARGIN_S)]
    kept = [old_key(kms, "SPIRE_SERVER_KEY/example_org/x509-CA-C", ORPHAN_S - MARGIN_S),
            old_key(kms, "SPIRE_SERVER_KEY/example_org2/x509-CA-A", ORPHAN_S + MARGIN_S),
            old_key(kms, "SPIRE_SERVER_KEY/example_org_uk/x509-CA-A", ORPHAN_S + MARGIN_S),
            old_key(kms, "SPIRE_SERVER/example_org_uk", ORPHAN_S + MARGIN_S),
            old_key(kms, "SPIRE_SERVER/example_org/x509-CA-A", ORPHAN_S + MARGIN_S),
            old_key(kms, "an application's key", ORPHAN_S + MARGIN_S)]
    aliased = old_key(kms, "SPIRE_SERVER_KEY/example_org/x509-CA-D", ORPHAN_S + MARGIN_S)
    kms.create_alias("alias/application-key", aliased)
    disabled = old_key(kms, "SPIRE_SERVER_KEY/example_org/x509-CA-E", ORPHAN_S + MARGIN_S)
    kms.disable_key(disabled)

    wait_until(lambda: all(key_state(kms, k) == "PendingDeletion" for k in pruned),
               what="orphan keys deleted")
    done = len(runs(host, "dispose_keys"))
    wait_runs(host, "dispose_keys", done + 1)
    assert all(key_state(kms, k) == "Enabled" for k in kept + [ours, aliased])
    assert key_state(kms, disabled) == "Disabled"


# ---- exact calls per run ------------------------------------------------------------


def only_task_calls(kms):
    return {op: n for op, n in kms.calls().items() if op != "ScheduleKeyDeletion"}


def test_dispose_keys_calls_per_run(start_plugin, kms, tmp_path):
    """ListKeys pages + ListAliases pages + one DescribeKey per unaliased key
    (first run); later runs skip keys whose answer cannot change."""
    host, server_id = start_fleet(start_plugin, kms, tmp_path, dispose_keys="3s")
    host.generate_key("x509-CA-A", "EC_P256")
    shared = kms.create_key("ECC_NIST_P256", "an application's key")
    for i in range(130):  # two ListAliases pages of 100
        kms.create_alias(f"alias/app-{i:03d}", shared)
    orphan = old_key(kms, "SPIRE_SERVER_KEY/example_org/x509-CA-B", ORPHAN_S + MARGIN_S)
    young = old_key(kms, "SPIRE_SERVER_KEY/example_org/x509-CA-C", HOUR)
    foreign = old_key(kms, "SPIRE_SERVER_KEY/example_org2/x509-CA-A", ORPHAN_S + MARGIN_S)
    kms.reset_calls()

    first = wait_runs(host, "dispose_keys", 1)[0]
    wait_until(lambda: key_state(kms, orphan) == "PendingDeletion", what="orphan deleted")
    # keys: ours + shared (aliased), orphan, young, foreign (unaliased): 3 DescribeKey;
    # then the deletion queue's ListAliases and ListResourceTags for the orphan (KMS
    # shows it unaliased, and its tags keep no server alive)
    assert only_task_calls(kms) == {"ListKeys": 1, "ListAliases": 2 + 1, "DescribeKey": 3,
                                    "ListResourceTags": 1}
    assert first["calls"] == "6" and first["keys_scanned"] == "5" and first["disposed"] == "1"

    kms.reset_calls()
    second = wait_runs(host, "dispose_keys", 2)[1]
    # young and foreign are remembered; the queued orphan is described again
    assert only_task_calls(kms) == {"ListKeys": 1, "ListAliases": 2, "DescribeKey": 1}
    assert second["calls"] == "4" and second["disposed"] == "0"
    assert key_state(kms, young) == "Enabled" and key_state(kms, foreign) == "Enabled"


def test_dispose_aliases_and_refresh_calls_per_run(start_plugin, kms, tmp_path):
    host, server_id = start_fleet(start_plugin, kms, tmp_path, dispose_aliases="3s")
    host.generate_key("x509-CA-A", "EC_P256")
    stale = [TD_PREFIX + f"peer-server/key-{i}" for i in range(3)]
    for name in stale:
        foreign_alias(kms, name, STALE_S + MARGIN_S)
    for i in range(110):
        foreign_alias(kms, f"alias/app-{i:03d}", STALE_S + MARGIN_S, "an application's key")
    # ListAliases also lists AWS's ten predefined alias/aws/* (state() does not)
    total = len(kms.state()["aliases"]) + 10
    assert total == 1 + 3 + 110 + 10
    kms.reset_calls()

    first = wait_runs(host, "dispose_aliases", 1)[0]
    wait_until(lambda: kms.calls("ScheduleKeyDeletion") == 3, what="3 keys queued and deleted")
    # 2 listing pages, then per stale alias: ListAliases of its key and its tags
    # (ListResourceTags) right before DeleteAlias, and the deletion queue's
    # ListAliases and ListResourceTags before scheduling the key
    assert only_task_calls(kms) == {"ListAliases": 2 + 3 + 3, "ListResourceTags": 3 + 3,
                                    "DeleteAlias": 3}
    assert first["calls"] == "11" and first["aliases_scanned"] == str(total)
    assert first["disposed"] == "3"


def test_refresh_calls_per_run(start_plugin, kms, tmp_path):
    host, _ = start_fleet(start_plugin, kms, tmp_path, refresh="3s")
    for key_id in ("x509-CA-A", "x509-CA-B", "JWT-Signer-A"):
        host.generate_key(key_id, "EC_P256")
    for i in range(20):
        foreign_alias(kms, f"alias/app-{i:03d}", HOUR, "an application's key")
    kms.reset_calls()
    first = wait_runs(host, "refresh_aliases", 1)[0]
    assert only_task_calls(kms) == {"DescribeKey": 3, "UpdateAlias": 3}
    assert first["calls"] == "6" and first["refreshed"] == "3"


# ---- faults -------------------------------------------------------------------------

FAULT_CASES = [
    ("dispose_keys", "ListKeys"),
    ("dispose_keys", "ListAliases"),
    ("dispose_keys", "DescribeKey"),
    ("dispose_aliases", "ListAliases"),
    ("dispose_aliases", "DeleteAlias"),
    ("refresh_aliases", "DescribeKey"),
    ("refresh_aliases", "UpdateAlias"),
]


@pytest.mark.parametrize("task,operation", FAULT_CASES)
def test_task_survives_kms_faults_and_retries_next_period(start_plugin, kms, tmp_path, task,
                                                         operation):
    interval = {"dispose_keys": "dispose_keys", "dispose_aliases": "dispose_aliases",
                "refresh_aliases": "refresh"}[task]
    host, server_id = start_fleet(start_plugin, kms, tmp_path, extra="max_attempts = 1",
                                  **{interval: "1s"})
    host.generate_key("x509-CA-A", "EC_P256")
    own = TD_PREFIX + server_id + "/x509-CA-A"
    if task == "dispose_keys":
        target = old_key(kms, "SPIRE_SERVER_KEY/example_org/x509-CA-B", ORPHAN_S + MARGIN_S)
        done = lambda: key_state(kms, target) == "PendingDeletion"  # noqa: E731
    elif task == "dispose_aliases":
        stale = TD_PREFIX + "peer-server/x509-CA-A"
        foreign_alias(kms, stale, STALE_S + MARGIN_S)
        done = lambda: stale not in aliases(kms)  # noqa: E731
    else:
        kms.set_alias_last_updated(own, time.time() - 10 * 24 * HOUR)
        done = lambda: aliases(kms)[own]["last_updated"] > time.time() - 60  # noqa: E731
    kms.inject(operation, "500", count=1)

    wait_until(done, timeout=15, what=f"{task} done after a failed {operation}")
    failed = [r for r in runs(host, task) if r["failures"] != "0"]
    assert len(failed) == 1 and failed[0]["failures"] == "1"
    assert failed[0]["disposed"] == "0" and failed[0]["refreshed"] == "0"
    assert kms.calls(operation) >= 2
    assert host.get_public_key("x509-CA-A") is not None  # still serving


# ---- shutdown -----------------------------------------------------------------------


def test_shutdown_during_a_slow_kms_call_is_prompt(start_plugin, kms, tmp_path):
    """Shutdown aborts the in-flight KMS call (10 s here) instead of waiting
    for it, and the rest of the run is skipped."""
    host, _ = start_fleet(start_plugin, kms, tmp_path, dispose_keys="1s")
    host.generate_key("x509-CA-A", "EC_P256")
    old_key(kms, "SPIRE_SERVER_KEY/example_org/x509-CA-B", ORPHAN_S + MARGIN_S)
    kms.reset_calls()
    kms.inject("ListKeys", "latency", count=1, latency_ms=10000)
    wait_until(lambda: kms.calls("ListKeys") >= 1, what="dispose keys in ListKeys")
    started = time.monotonic()
    host.shutdown()
    assert host.wait(5) == 0
    took = time.monotonic() - started
    assert took < 2.5, f"shutdown took {took:.2f}s"
    assert kms.calls("ListKeys") == 1
    assert kms.calls("ListAliases") == 0 and kms.calls("DescribeKey") == 0


def test_each_task_on_its_own_period(start_plugin, kms, tmp_path):
    host, _ = start_fleet(start_plugin, kms, tmp_path, refresh="1s", dispose_aliases="2s")
    host.generate_key("x509-CA-A", "EC_P256")
    wait_runs(host, "dispose_aliases", 2)
    refreshes = len(runs(host, "refresh_aliases"))
    disposals = len(runs(host, "dispose_aliases"))
    assert refreshes >= disposals + 1
    assert runs(host, "dispose_keys") == [] and kms.calls("ListKeys") == 0
