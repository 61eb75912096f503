"""No live key is ever lost to an unknown outcome (issue 10): KMS applied a
CreateAlias/UpdateAlias but the answer was lost (connection dropped, 5xx after
every retry, later than the call's deadline) -> GenerateKey ends with the
cache following KMS and no key discarded that an alias targets; KMS unreadable
right after -> nothing discarded, and the cache follows once KMS can be read;
the deletion queue refuses to schedule a key that any alias (of anyone)
targets; both sweeps keep the rule under lost answers.

The emulator's "applied, answer lost" faults: inject(op, "lost" | "lost_500",
count=N, latency_ms=...). KM_ALIAS_SETTLE_MS shortens, for tests only, the wait
before a key given up after an unknown outcome is checked."""
import time

import grpc
import pytest

from keymanager_helpers import (TD_PREFIX, hcl, key_state, our_aliases, plugin_env,
                                read_server_id, sign, start_configured, verify, wait_until)

HOUR = 3600
STALE_S = 336 * HOUR
ORPHAN_S = 48 * HOUR
MARGIN_S = 60


def rpc_error(call):
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def key_ids(kms):
    return {key["id"] for key in kms.state()["keys"]}


def public_der(kms, key_id):
    return kms.store.keys[key_id].public_der


def messages(host):
    return [r.get("@message") for r in host.log_records() if isinstance(r, dict)]


# ---- GenerateKey: the alias step's answer lost --------------------------------------------

LOST_CASES = [
    # step, fault, max_attempts: every attempt applied, every answer lost
    ("UpdateAlias", "lost", 3),
    ("UpdateAlias", "lost_500", 3),
    ("UpdateAlias", "lost_503", 1),
    ("CreateAlias", "lost", 1),
    ("CreateAlias", "lost_500", 1),
    ("CreateAlias", "lost", 3),
]
# curl re-sends a request whose reused connection closed unanswered, so a
# dropped answer takes up to two requests per attempt.
REQUESTS_PER_ATTEMPT = {"lost": 2, "lost_500": 1, "lost_503": 1}


@pytest.mark.parametrize("step,fault,attempts", LOST_CASES)
def test_lost_answer_at_the_alias_step_keeps_what_kms_shows(start_plugin, kms, tmp_path, step,
                                                            fault, attempts):
    host, metadata = start_configured(start_plugin, kms, tmp_path,
                                      extra_hcl=f"max_attempts = {attempts}")
    server_id = read_server_id(metadata)
    old = None
    if step == "UpdateAlias":
        old = host.generate_key("x509-CA-A", "EC_P256")
        old_key = our_aliases(kms, server_id)["x509-CA-A"]
    # Every answer lost, also for the other call GenerateKey falls back to (the
    # retry of an applied CreateAlias answers AlreadyExists: UpdateAlias follows).
    requests = attempts * REQUESTS_PER_ATTEMPT[fault]
    kms.inject("CreateAlias", fault, count=requests)
    kms.inject("UpdateAlias", fault, count=requests)

    key = host.generate_key("x509-CA-A", "EC_P256")
    kms.clear_faults()

    target = our_aliases(kms, server_id)["x509-CA-A"]
    assert key.pkix_data == public_der(kms, target)
    assert host.get_public_key("x509-CA-A") == key
    response = sign(host, "x509-CA-A", "SHA256")
    assert response.key_fingerprint == key.fingerprint
    verify(key.pkix_data, response.signature, "SHA256")
    if old is not None:
        assert key != old
        wait_until(lambda: key_state(kms, old_key) == "PendingDeletion", what="rotated-out key")
    assert key_state(kms, target) == "Enabled"
    assert "Deleting key created by a failed GenerateKey" not in messages(host)
    assert len(key_ids(kms)) == (2 if old is not None else 1)


@pytest.mark.parametrize("step", ["CreateAlias", "UpdateAlias"])
def test_alias_step_answered_after_the_call_deadline(start_plugin, kms, tmp_path, step):
    """The alias call is applied but answered after GenerateKey's deadline:
    the client sees DEADLINE_EXCEEDED, and the plugin, reading the alias,
    follows KMS instead of deleting the key the alias now targets."""
    host, metadata = start_configured(start_plugin, kms, tmp_path)
    server_id = read_server_id(metadata)
    if step == "UpdateAlias":
        host.generate_key("x509-CA-A", "EC_P256")
    old_key = our_aliases(kms, server_id).get("x509-CA-A")
    kms.inject(step, "lost", count=1, latency_ms=6000)

    error = rpc_error(lambda: host.generate_key("x509-CA-A", "EC_P256", timeout=2.0))
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    target = our_aliases(kms, server_id)["x509-CA-A"]
    assert target != old_key
    wait_until(lambda: messages(host).count(
        "KMS shows the alias on the new key although the call failed (its answer was lost); "
        "GenerateKey goes on") == 1, timeout=20, what="the plugin to read the alias")
    current = host.get_public_key("x509-CA-A")
    assert current.pkix_data == public_der(kms, target)
    verify(current.pkix_data, sign(host, "x509-CA-A", "SHA256").signature, "SHA256")
    if old_key is not None:
        wait_until(lambda: key_state(kms, old_key) == "PendingDeletion", what="rotated-out key")
    assert key_state(kms, target) == "Enabled"
    assert "Deleting key created by a failed GenerateKey" not in messages(host)


def test_kms_unreadable_after_the_lost_answer_discards_nothing(start_plugin, kms, tmp_path):
    """UpdateAlias applied, 5xx on every attempt, and KMS unreadable right
    after (the alias read and the deletion queue's first checks fail):
    GenerateKey fails saying the new key is kept; nothing is deleted; once
    KMS can be read, the cache follows the alias to the new key."""
    host, metadata = start_configured(start_plugin, kms, tmp_path,
                                      extra_env={"KM_ALIAS_SETTLE_MS": "500"})
    server_id = read_server_id(metadata)
    old = host.generate_key("x509-CA-A", "EC_P256")
    old_key = our_aliases(kms, server_id)["x509-CA-A"]
    kms.inject("UpdateAlias", "lost_500", count=3)
    kms.inject("DescribeKey", "500", count=3)
    kms.inject("ListAliases", "503", count=6)

    error = rpc_error(lambda: host.generate_key("x509-CA-A", "EC_P256"))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "kms UpdateAlias failed: KMSInternalException" in error.details()
    assert "KMS could not be read afterwards" in error.details()
    assert "is kept until KMS shows whether the alias targets it" in error.details()

    new_key = our_aliases(kms, server_id)["x509-CA-A"]  # KMS applied it
    assert new_key != old_key
    assert host.get_public_key("x509-CA-A") == old
    wait_until(lambda: host.get_public_key("x509-CA-A").pkix_data == public_der(kms, new_key),
               timeout=30, what="the cache to follow the alias once KMS can be read")
    assert kms.calls("ListAliases") >= 7  # the queue's checks failed, then one showed the alias
    assert key_state(kms, new_key) == "Enabled"
    assert key_state(kms, old_key) == "Enabled"  # unaliased now: the orphan sweep's, not ours
    assert kms.calls("ScheduleKeyDeletion") == 0
    response = sign(host, "x509-CA-A", "SHA256")
    verify(public_der(kms, new_key), response.signature, "SHA256")


def test_alias_write_not_applied_discards_the_key_once_kms_shows_it(start_plugin, kms, tmp_path):
    """The connection drops before KMS applies UpdateAlias (an unknown outcome
    from our side): the alias read shows the old key, and the new key is
    deleted only after the settle delay, when KMS still lists no alias for it."""
    host, metadata = start_configured(start_plugin, kms, tmp_path,
                                      extra_env={"KM_ALIAS_SETTLE_MS": "500"})
    server_id = read_server_id(metadata)
    old = host.generate_key("x509-CA-A", "EC_P256")
    old_key = our_aliases(kms, server_id)["x509-CA-A"]
    before = key_ids(kms)
    kms.inject("UpdateAlias", "drop", count=10)  # curl re-sends on a fresh connection too

    error = rpc_error(lambda: host.generate_key("x509-CA-A", "EC_P256"))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    (new_key,) = key_ids(kms) - before
    assert our_aliases(kms, server_id)["x509-CA-A"] == old_key
    assert host.get_public_key("x509-CA-A") == old
    wait_until(lambda: key_state(kms, new_key) == "PendingDeletion", what="the unaliased new key")
    assert key_state(kms, old_key) == "Enabled"


# ---- the deletion queue ------------------------------------------------------------------


def test_queue_never_schedules_a_key_any_alias_targets(start_plugin, kms, kms_client, tmp_path):
    """A rotated-out key that another alias (an application's, not ours)
    still targets stays; once that alias is gone, the queue's next check
    deletes it."""
    host, metadata = start_configured(start_plugin, kms, tmp_path)
    server_id = read_server_id(metadata)
    host.generate_key("x509-CA-A", "EC_P256")
    old_key = our_aliases(kms, server_id)["x509-CA-A"]
    kms.create_alias("alias/app-still-uses-it", old_key)

    host.generate_key("x509-CA-A", "EC_P256")
    wait_until(lambda: "Key not deleted: KMS shows an alias targeting it; will check again"
               in messages(host), what="the queue's check to find the alias")
    assert key_state(kms, old_key) == "Enabled"
    assert kms.calls("ScheduleKeyDeletion") == 0

    kms_client.delete_alias(AliasName="alias/app-still-uses-it")
    wait_until(lambda: key_state(kms, old_key) == "PendingDeletion", timeout=15,
               what="the key deleted once no alias targets it")


# ---- the sweeps --------------------------------------------------------------------------


def start_sweeper(start_plugin, kms, tmp_path, **intervals):
    text = "\n\n".join(f'{name}_interval = "{value}"' for name, value in intervals.items())
    metadata = str(tmp_path / "key_metadata")
    host = start_plugin(extra_env=plugin_env(kms), cwd=str(tmp_path))
    host.init()
    host.configure(hcl(kms, metadata, text + '\n\nlog_level = "debug"'))
    return host, read_server_id(metadata)


@pytest.mark.parametrize("fault", ["lost", "lost_500"])
def test_stale_sweep_with_lost_delete_answers(start_plugin, kms, tmp_path, fault):
    """DeleteAlias applied, answer lost (its retry then answers NotFound): the
    stale alias is gone and its key is deleted (the queue's check shows no
    alias); our own alias and key are untouched."""
    host, server_id = start_sweeper(start_plugin, kms, tmp_path, dispose_aliases="1s")
    host.generate_key("x509-CA-A", "EC_P256")
    own_key = our_aliases(kms, server_id)["x509-CA-A"]
    stale = TD_PREFIX + "dead-server/x509-CA-A"
    stale_key = kms.create_key("ECC_NIST_P256", "SPIRE_SERVER_KEY/example_org/x509-CA-A")
    kms.create_alias(stale, stale_key, last_updated=time.time() - STALE_S - MARGIN_S)
    kms.inject("DeleteAlias", fault, count=3)

    wait_until(lambda: stale not in {a["name"] for a in kms.state()["aliases"]},
               what="the stale alias gone")
    wait_until(lambda: key_state(kms, stale_key) == "PendingDeletion", timeout=15,
               what="its key deleted")
    assert kms.calls("DeleteAlias") == 2  # applied and lost, then NotFound
    assert our_aliases(kms, server_id)["x509-CA-A"] == own_key
    assert key_state(kms, own_key) == "Enabled"


def test_orphan_aliased_after_the_sweep_listed_it_is_kept(start_plugin, kms, tmp_path):
    """The orphan sweep listed a key as unaliased; an alias to it appears
    before the deletion queue's check: KMS shows the alias, the key stays. A
    lost ScheduleKeyDeletion answer for a true orphan still ends with it
    pending deletion."""
    adopted = kms.create_key("ECC_NIST_P256", "SPIRE_SERVER_KEY/example_org/x509-CA-B",
                             creation_date=time.time() - ORPHAN_S - MARGIN_S)
    orphan = kms.create_key("ECC_NIST_P256", "SPIRE_SERVER_KEY/example_org/x509-CA-C",
                            creation_date=time.time() - ORPHAN_S - MARGIN_S)
    kms.inject("DescribeKey", "latency", count=1, latency_ms=3000)  # the sweep's first describe
    kms.inject("ScheduleKeyDeletion", "lost", count=1)
    host, _ = start_sweeper(start_plugin, kms, tmp_path, dispose_keys="1s")
    wait_until(lambda: kms.calls("DescribeKey") >= 1, what="the sweep describing the first key")
    kms.create_alias("alias/SPIRE_SERVER/example_org/peer/x509-CA-B", adopted)

    wait_until(lambda: key_state(kms, orphan) == "PendingDeletion", timeout=15,
               what="the true orphan deleted")
    wait_until(lambda: "Key not deleted: KMS shows an alias targeting it; will check again"
               in messages(host), what="the queue's check to find the new alias")
    assert key_state(kms, adopted) == "Enabled"
