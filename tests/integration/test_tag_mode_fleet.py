"""Tag-based key discovery's background work through the real binary against the
emulator (issue 11): keep-active with the alias refresh (tag mode); an
alias-mode server keeping the spire-last-update of keys it inherited fresh, and
starting without kms:ListResourceTags; the tag sweep's cases (stale, undated,
malformed, own server, other trust domains, a fresh alias, a stale alias left
to the stale-alias sweep, keys pending deletion) and its healing pass; a failed
scheduling and lost answers at ScheduleKeyDeletion and TagResource ending
cleanly (KMS refuses tags on a key pending deletion: tagged inactive first);
mixed fleets: an alias-mode server's sweeps spare keys a tag-mode server keeps
alive by their tags."""
import time

import botocore.exceptions
import pytest

from keymanager_helpers import key_state, wait_until
from tag_mode_helpers import (DAY, HOUR, MARGIN_S, STALE_S, Server, alias_target, aliases,
                              messages, pend, runs, tagged_key, tags, wait_runs)

SWEEP = "dispose_keys_via_tags"


def stamp(kms_client, key_id, age_s):
    kms_client.tag_resource(KeyId=key_id, Tags=[
        {"TagKey": "spire-last-update", "TagValue": str(int(time.time() - age_s))}])


def fresh(kms, key_id, within_s=60):
    return int(tags(kms, key_id)["spire-last-update"]) >= time.time() - within_s


def records_about(host, key_id):
    return [r for r in host.log_records() if isinstance(r, dict)
            and key_id in str(r.get("key_arn", "")) + str(r.get("key_id", ""))]


# ---- keep-active ---------------------------------------------------------------------------


def test_keep_active_refreshes_tags_and_aliases_of_every_key(start_plugin, kms, kms_client,
                                                            tmp_path):
    server = Server(start_plugin, kms, tmp_path).configure(refresh="1s")
    for key_id in ("x509-CA-A", "JWT-Signer-A", "WIT-Signer-A"):
        server.host.generate_key(key_id, "EC_P256")
    targets = [alias_target(kms, server.alias(k)) for k in ("x509-CA-A", "JWT-Signer-A",
                                                             "WIT-Signer-A")]
    for key_id in targets:
        stamp(kms_client, key_id, 13 * DAY)
    # an alias target left inactive (its activation failed) is marked active
    kms_client.tag_resource(KeyId=targets[0], Tags=[{"TagKey": "spire-active",
                                                    "TagValue": "false"}])
    kms.reset_calls()
    done = len(runs(server.host, "refresh_aliases"))
    record = wait_runs(server.host, "refresh_aliases", done + 2)[done + 1]
    assert record["tagged"] == "3" and record["refreshed"] == "3"
    assert record["calls"] == "9"  # DescribeKey + UpdateAlias + TagResource per key
    for key_id in targets:
        assert fresh(kms, key_id)
        assert tags(kms, key_id)["spire-active"] == "true"
    assert kms.calls("GetResources") == 0 and kms.calls("ListResourceTags") == 0


def test_keep_active_restores_a_deleted_alias(start_plugin, kms, kms_client, tmp_path):
    server = Server(start_plugin, kms, tmp_path).configure(refresh="1s")
    server.host.generate_key("x509-CA-A", "EC_P256")
    key_id = alias_target(kms, server.alias("x509-CA-A"))
    kms_client.delete_alias(AliasName=server.alias("x509-CA-A"))
    wait_until(lambda: alias_target(kms, server.alias("x509-CA-A")) == key_id,
               what="alias created again")
    # The line is logged once CreateAlias has answered, after KMS shows the alias.
    wait_until(lambda: "our alias was gone from KMS; created it again" in messages(server.host),
               what="the re-creation logged")


# ---- alias mode: inherited tags ----------------------------------------------------------


def test_alias_mode_server_keeps_inherited_tags_fresh(start_plugin, kms, kms_client, tmp_path):
    server = Server(start_plugin, kms, tmp_path).configure(tag_mode=True)
    server.host.generate_key("x509-CA-A", "EC_P256")
    server.host.generate_key("JWT-Signer-A", "EC_P256")
    inherited = [alias_target(kms, server.alias(k)) for k in ("x509-CA-A", "JWT-Signer-A")]
    server.configure(tag_mode=False, refresh="1s")  # rolled back to alias mode
    server.host.generate_key("WIT-Signer-A", "EC_P256")
    untagged = alias_target(kms, server.alias("WIT-Signer-A"))
    for key_id in inherited:
        stamp(kms_client, key_id, 20 * DAY)
    kms.reset_calls()
    done = len(runs(server.host, "refresh_aliases"))
    record = wait_runs(server.host, "refresh_aliases", done + 2)[done + 1]
    assert record["tagged"] == "2" and record["refreshed"] == "3"
    for key_id in inherited:
        assert fresh(kms, key_id)
    assert "spire-last-update" not in tags(kms, untagged)  # alias mode writes none
    # what carries tags was read once, at Configure; the refresh reads none
    assert kms.calls("ListResourceTags") == 0 and kms.calls("GetResources") == 0


def test_alias_mode_without_list_resource_tags_starts_and_says_so(start_plugin, kms, tmp_path):
    server = Server(start_plugin, kms, tmp_path).configure(tag_mode=False)
    server.host.generate_key("x509-CA-A", "EC_P256")
    kms.inject("ListResourceTags", "access_denied", count=100)
    server.configure(tag_mode=False, refresh="1s")
    assert server.host.get_public_key("x509-CA-A")
    done = len(runs(server.host, "refresh_aliases"))
    wait_runs(server.host, "refresh_aliases", done + 2)
    denied = [m for m in messages(server.host) if "kms:ListResourceTags is denied" in m]
    assert len(denied) == 1  # once at Configure; the refresh does not ask again
    assert kms.calls("ListResourceTags") == 1


# ---- the tag sweep ---------------------------------------------------------------------


def test_tag_sweep_cases(start_plugin, kms, kms_client, tmp_path):
    server = Server(start_plugin, kms, tmp_path).configure(dispose_keys="1s",
                                                           dispose_aliases="1s")
    server.host.generate_key("x509-CA-A", "EC_P256")
    ours_live = alias_target(kms, server.alias("x509-CA-A"))
    me = server.server_id
    peer = "peer-server"
    stale_s = STALE_S + MARGIN_S
    deleted = {
        "stale": tagged_key(kms, peer, "x509-CA-A", age_s=stale_s),
        "undated-old": tagged_key(kms, peer, "x509-CA-B", age_s=False,
                                  created_age_s=STALE_S + MARGIN_S),
        # its stale alias: the stale-alias sweep deletes the alias and queues it
        "stale-alias": tagged_key(kms, "dead-server", "JWT-Signer-A", age_s=stale_s,
                                  with_alias=True, alias_age_s=stale_s),
    }
    kept = {
        "fresh": tagged_key(kms, peer, "JWT-Signer-A", age_s=STALE_S - MARGIN_S),
        "undated-young": tagged_key(kms, peer, "JWT-Signer-B", age_s=False,
                                    created_age_s=STALE_S - MARGIN_S),
        "malformed": tagged_key(kms, peer, "WIT-Signer-A", last_update="2026-01-01T00:00:00Z"),
        "own": tagged_key(kms, me, "WIT-Signer-B", age_s=stale_s),
        "td2": tagged_key(kms, peer, "x509-CA-A", age_s=stale_s, trust_domain="example.org2"),
        "td-uk": tagged_key(kms, peer, "x509-CA-A", age_s=stale_s,
                            trust_domain="example.org.uk"),
        "td-org": tagged_key(kms, peer, "x509-CA-A", age_s=stale_s, trust_domain="org"),
        # an upstream server rolled back to alias mode: fresh alias, stale tag
        "fresh-alias": tagged_key(kms, "rolled-back", "x509-CA-A", age_s=stale_s,
                                  with_alias=True, alias_age_s=HOUR),
    }
    swept_by_upstream = tagged_key(kms, peer, "x509-CA-B", age_s=stale_s)
    pend(kms, swept_by_upstream)  # scheduled by upstream, still tagged active

    for name, key_id in deleted.items():
        wait_until(lambda k=key_id: key_state(kms, k) == "PendingDeletion", what=f"{name} deleted")
        assert tags(kms, key_id)["spire-active"] == "false", name
    done = len(runs(server.host, SWEEP))
    wait_runs(server.host, SWEEP, done + 2)
    for name, key_id in kept.items():
        assert key_state(kms, key_id) == "Enabled", name
        assert tags(kms, key_id)["spire-active"] == "true", name
    assert key_state(kms, ours_live) == "Enabled"
    assert aliases(kms)["alias/SPIRE_SERVER/example_org/rolled-back/x509-CA-A"]
    assert "alias/SPIRE_SERVER/example_org/dead-server/JWT-Signer-A" not in aliases(kms)
    assert any(r.get("@message") == "malformed spire-last-update tag value, skipping key"
               for r in records_about(server.host, kept["malformed"]))
    # the key upstream scheduled is left alone: never tagged, never scheduled again
    assert records_about(server.host, swept_by_upstream) == []
    assert tags(kms, swept_by_upstream)["spire-active"] == "true"
    # KMS refuses tags on a key pending deletion (so it is tagged inactive first)
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        kms_client.tag_resource(KeyId=swept_by_upstream,
                                Tags=[{"TagKey": "spire-active", "TagValue": "false"}])
    assert refused.value.response["Error"]["Code"] == "KMSInvalidStateException"


@pytest.mark.parametrize("operation,fault", [
    ("ScheduleKeyDeletion", "500"),          # a failed scheduling: retried, ends scheduled
    ("ScheduleKeyDeletion", "access_denied"),
    ("ScheduleKeyDeletion", "lost"),         # applied, answer lost: KMSInvalidState after
    ("ScheduleKeyDeletion", "lost_500"),
    ("TagResource", "lost"),                 # tagged inactive, answer lost
    ("TagResource", "503"),
])
def test_tag_sweep_ends_cleanly_after_faults(start_plugin, kms, tmp_path, operation, fault):
    server = Server(start_plugin, kms, tmp_path).configure(dispose_keys="1s",
                                                           extra="max_attempts = 2")
    kms.inject(operation, fault, count=4)
    dead = tagged_key(kms, "peer-server", "x509-CA-A", age_s=STALE_S + MARGIN_S)
    wait_until(lambda: key_state(kms, dead) == "PendingDeletion", timeout=20,
               what="the stale key scheduled")
    wait_until(lambda: tags(kms, dead)["spire-active"] == "false", what="tagged inactive")
    wait_until(lambda: any(r.get("@module") == "deletion_queue"
                           and r.get("@message", "").startswith(("Key scheduled", "Key already"))
                           for r in records_about(server.host, dead)),
               what="the deletion queue done with the key")
    kms.clear_faults()
    # nothing is left to do: later runs neither tag nor schedule it again (a run
    # under way may have described it before it was scheduled: one more
    # ScheduleKeyDeletion, answered KMSInvalidState; the next run sees it pending)
    done = len(runs(server.host, SWEEP))
    wait_runs(server.host, SWEEP, done + 2)
    kms.reset_calls()
    done = len(runs(server.host, SWEEP))
    wait_runs(server.host, SWEEP, done + 2)
    assert kms.calls("TagResource") == 0 and kms.calls("ScheduleKeyDeletion") == 0


def test_healing_pass_deletes_inactive_keys_left_behind(start_plugin, kms, tmp_path):
    server = Server(start_plugin, kms, tmp_path).configure(dispose_keys="1s")
    me = server.server_id
    # a crash between tagging inactive and scheduling; a CreateKey answer lost
    crashed = tagged_key(kms, "peer-server", "x509-CA-A", age_s=STALE_S + MARGIN_S,
                         active="false", created_age_s=30 * DAY)
    lost = tagged_key(kms, me, "x509-CA-B", age_s=3 * DAY, active="false",
                      created_age_s=3 * DAY)
    in_flight = tagged_key(kms, "peer-server", "JWT-Signer-A", age_s=60, active="false",
                           created_age_s=60)  # a peer's GenerateKey before its alias step
    aliased = tagged_key(kms, "peer-server", "JWT-Signer-B", age_s=3 * DAY, active="false",
                         created_age_s=3 * DAY, with_alias=True)
    for key_id in (crashed, lost):
        wait_until(lambda k=key_id: key_state(kms, k) == "PendingDeletion", what="healed")
    done = len(runs(server.host, SWEEP))
    wait_runs(server.host, SWEEP, done + 2)
    assert key_state(kms, in_flight) == "Enabled" and key_state(kms, aliased) == "Enabled"


# ---- mixed fleets: alias-mode sweeps and tag-mode peers ------------------------------------


def test_alias_mode_sweeps_spare_keys_kept_alive_by_tags(start_plugin, kms, tmp_path):
    server = Server(start_plugin, kms, tmp_path).configure(tag_mode=False, dispose_keys="1s",
                                                           dispose_aliases="1s")
    stale_s = STALE_S + MARGIN_S
    # a tag-mode peer refreshing its tags, whose alias went stale
    live_stale_alias = tagged_key(kms, "tag-peer", "x509-CA-A", age_s=HOUR, with_alias=True,
                                  alias_age_s=stale_s)
    # a tag-mode peer whose alias was deleted: unaliased, old, fresh tags
    live_unaliased = tagged_key(kms, "tag-peer", "JWT-Signer-A", age_s=HOUR,
                                created_age_s=10 * DAY)
    # a dead server: stale alias, stale tags
    dead = tagged_key(kms, "dead-server", "x509-CA-A", age_s=stale_s, with_alias=True,
                      alias_age_s=stale_s)
    # an untagged orphan (alias mode's own case)
    orphan = kms.create_key("ECC_NIST_P256", "SPIRE_SERVER_KEY/example_org/x509-CA-B",
                            creation_date=time.time() - 3 * DAY)
    for key_id in (dead, orphan):
        wait_until(lambda k=key_id: key_state(kms, k) == "PendingDeletion", what="deleted")
    assert tags(kms, dead)["spire-active"] == "false"
    for task in ("dispose_aliases", "dispose_keys"):
        done = len(runs(server.host, task))
        wait_runs(server.host, task, done + 2)
    assert key_state(kms, live_stale_alias) == "Enabled"
    assert key_state(kms, live_unaliased) == "Enabled"
    assert alias_target(kms, "alias/SPIRE_SERVER/example_org/tag-peer/x509-CA-A") == \
        live_stale_alias
    assert any("its tags show another server keeps it alive" in (r.get("@message") or "")
               for r in records_about(server.host, live_unaliased))


def test_keys_prune_spares_keys_kept_alive_by_tags(plugin_binary, kms, tmp_path):
    """The operator command's prune keeps the same rule as the deletion queue:
    an unaliased key that a tag-mode server keeps alive by its tags is kept;
    a dead server's tagged orphan is tagged inactive, then scheduled. With the
    tags read (GetResources), the live key is not even planned; without them
    (tag:GetResources denied) it is planned by its description, and the
    re-read of its tags before the change keeps it."""
    import json

    from cli_helpers import cli_env, run_cli
    live = tagged_key(kms, "tag-peer", "x509-CA-A", age_s=HOUR, created_age_s=10 * DAY)
    dead = tagged_key(kms, "dead-server", "x509-CA-A", age_s=STALE_S + MARGIN_S,
                      created_age_s=30 * DAY)
    env = cli_env(kms, tmp_path)
    result = run_cli(plugin_binary, "keys", "prune", "--trust-domain", "example.org", "--json",
                     env=env)
    assert [a["key_id"] for a in json.loads(result.stdout)["actions"]] == [dead]
    kms.inject("GetResources", "access_denied", count=1)
    result = run_cli(plugin_binary, "keys", "prune", "--trust-domain", "example.org", "--yes",
                     "--json", env=env)
    actions = {a["key_id"]: a for a in json.loads(result.stdout)["actions"]}
    assert actions[live]["result"] == "skipped"
    assert "its tags show a server keeping it alive" in actions[live]["detail"]
    assert actions[dead]["result"] == "done"
    assert key_state(kms, live) == "Enabled"
    assert key_state(kms, dead) == "PendingDeletion"
    assert tags(kms, dead)["spire-active"] == "false"


def test_alias_mode_without_tag_resource_still_deletes_dead_tagged_keys(start_plugin, kms,
                                                                       tmp_path):
    """Alias mode needs kms:TagResource only for key_tags and inherited tags: a
    dead tag-mode server's key is scheduled without being tagged inactive (as
    upstream leaves such keys), logged once; the deletion is not held up."""
    server = Server(start_plugin, kms, tmp_path).configure(tag_mode=False, dispose_keys="1s")
    kms.inject("TagResource", "access_denied", count=100)
    dead = [tagged_key(kms, "dead-server", key_id, age_s=STALE_S + MARGIN_S,
                       created_age_s=30 * DAY) for key_id in ("x509-CA-A", "JWT-Signer-A")]
    for key_id in dead:
        wait_until(lambda k=key_id: key_state(kms, k) == "PendingDeletion", what="deleted")
        assert tags(kms, key_id)["spire-active"] == "true"
    denied = [m for m in messages(server.host) if m.startswith("kms:TagResource is denied")]
    assert len(denied) == 1
