"""`spire-aws-kms keys list` and `keys prune` with tag-based key discovery in
the account, through the real binary against the emulator: a live tag-mode
server (made by the real plugin in tag mode) whose keys its fresh
spire-last-update keeps alive whatever their aliases, a dead one (stale tags,
one key with a stale alias, one without), keys tagged as upstream tags them
(active without spire-last-update, old and young; inactive but not pending
deletion; of example.org2; a malformed spire-last-update). The verdicts are
the plugin's (the tag sweep, its healing pass, the deletion queue's tag
check); prune plans and carries out only the dead server's keys, each tagged
spire-active=false before it is scheduled; tag:GetResources denied is a
warning, not an error."""
import json

import pytest

from cli_helpers import (TD, alias_names, build_tag_fleet, cli_env, key_states, key_tags,
                         run_cli)


@pytest.fixture
def fleet(plugin_binary, start_plugin, kms, tmp_path):
    home = tmp_path / "home"
    home.mkdir()

    class World:
        binary = plugin_binary
        tags = build_tag_fleet(start_plugin, kms, tmp_path)
        env = cli_env(kms, home)

        def __init__(self):
            self.kms = kms

        def run(self, *args):
            return run_cli(self.binary, *args, env=self.env)

        def json(self, *args, expect=0):
            result = self.run(*args, "--json")
            assert result.returncode == expect, result.stderr
            return json.loads(result.stdout), result.stderr

    kms.reset_calls()
    return World()


def verdicts(listing):
    return {key["key_id"]: key["verdict"] for key in listing["keys"]}


def test_list_judges_tagged_keys_as_the_fleet_does(fleet):
    f = fleet.tags
    listing, stderr = fleet.json("keys", "list")
    assert stderr == ""
    assert verdicts(listing) == {
        f.live_stale_alias: "live",  # a fresh spire-last-update keeps it, whatever its alias
        f.live_unaliased: "live",
        f.dead_aliased: "stale-alias",
        f.dead_unaliased: "orphan",  # the tag sweep's: stale spire-last-update, no alias
        f.dead_undated: "orphan",    # undated, judged by its creation date (40 days)
        f.dead_inactive: "orphan",   # the healing pass's: inactive, not pending deletion
        f.young_undated: "live",     # undated, created a day ago
        f.other_td: "orphan",
        f.malformed: "malformed-tags"}
    summary = listing["summary"]
    assert summary["by_verdict"] == {"live": 3, "stale-alias": 1, "orphan": 4,
                                     "young-orphan": 0, "pending-deletion": 0, "disabled": 0,
                                     "malformed-tags": 1}
    assert (summary["prunable"], summary["tags"], summary["tagged_keys"]) == (5, "read", 9)
    # 9 keys, all tagged: one page of each listing; DescribeKey for each key without an
    # alias (7), and for none of the aliased ones (both carry spire-last-update)
    assert summary["kms_calls"] == {"ListKeys": 1, "ListAliases": 1, "GetResources": 1,
                                    "DescribeKey": 7}
    assert fleet.kms.calls() == summary["kms_calls"]


def test_list_fields_of_keys_known_by_tags(fleet):
    f = fleet.tags
    keys = {key["key_id"]: key for key in fleet.json("keys", "list")[0]["keys"]}
    live = keys[f.live_unaliased]
    assert (live["trust_domain"], live["server_id"], live["spire_key_id"], live["alias"]) == (
        "example_org", f.live_server, "JWT-Signer-A", None)  # the description's trust domain
    assert live["tags"]["spire-server-td"] == "example.org"
    assert live["tags"]["spire-active"] == "true"
    assert int(live["tags"]["spire-last-update"]) > fleet.kms.now() - 3600
    # known only by its tags: the tag's trust domain as written, dots kept
    other = keys[f.other_td]
    assert (other["trust_domain"], other["spire_key_id"], other["alias"]) == (
        "example.org2", "x509-CA-A", None)
    assert other["created"].endswith("Z") and other["state"] == "Enabled"
    stale = keys[f.live_stale_alias]
    assert stale["alias"] == f.alias(f.live_server, "x509-CA-A")
    assert stale["server_id"] == f.live_server
    assert keys[f.malformed]["tags"]["spire-last-update"] == "yesterday"


def test_list_one_trust_domain_asks_for_its_tags_only(fleet):
    f = fleet.tags
    listing, _ = fleet.json("keys", "list", "--trust-domain", TD)
    assert f.other_td not in verdicts(listing)
    assert len(listing["keys"]) == 8 and listing["summary"]["tagged_keys"] == 8
    listing, _ = fleet.json("keys", "list", "--trust-domain", "example.org2")
    assert verdicts(listing) == {f.other_td: "orphan"}


def test_list_table_shows_the_tag_age(fleet):
    f = fleet.tags
    result = fleet.run("keys", "list")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[1]: line for line in result.stdout.splitlines()[1:10]}
    assert "20d ago" in rows[f.dead_unaliased]
    assert "undated" in rows[f.dead_undated] and "inactive" in rows[f.dead_inactive]
    assert "malformed" in rows[f.malformed]
    assert "malformed-tags 1" in result.stdout


def plan_of(prune):
    return [(a["action"], a.get("alias") or a.get("key_id")) for a in prune["actions"]]


def test_prune_plans_only_the_dead_servers_keys(fleet):
    f = fleet.tags
    before = fleet.kms.state()
    prune, _ = fleet.json("keys", "prune", "--trust-domain", TD)
    plan = plan_of(prune)
    assert plan[:2] == [("delete-alias", f.alias(f.dead_server, "x509-CA-A")),
                        ("schedule-key-deletion", f.dead_aliased)]
    assert sorted(plan[2:]) == sorted(("schedule-key-deletion", key)
                                      for key in (f.dead_unaliased, f.dead_undated,
                                                  f.dead_inactive))
    reasons = {a.get("key_id") or a["alias"]: a["reason"] for a in prune["actions"]}
    assert "spire-last-update 20.0 days ago (stale after 14.0)" in reasons[f.dead_unaliased]
    assert "without spire-last-update, created 40.0 days ago" in reasons[f.dead_undated]
    assert "tagged spire-active=false but not pending deletion" in reasons[f.dead_inactive]
    for key in (f.dead_aliased, f.dead_unaliased, f.dead_undated):
        assert "tagged spire-active=false first" in reasons[key]
    assert fleet.kms.state() == before


def test_prune_yes_tags_inactive_then_schedules(fleet):
    f = fleet.tags
    aliases_before = alias_names(fleet.kms)
    states_before = key_states(fleet.kms)
    prune, _ = fleet.json("keys", "prune", "--trust-domain", TD, "--yes")
    assert {a["result"] for a in prune["actions"]} == {"done"}
    details = {a.get("key_id"): a["detail"] for a in prune["actions"]}
    assert details[f.dead_unaliased] == ("tagged spire-active=false, then scheduled for deletion "
                                         "in 7 days")
    assert details[f.dead_inactive] == "scheduled for deletion in 7 days"
    states = key_states(fleet.kms)
    assert {k for k in states if states[k] != states_before[k]} == f.dead_keys()
    for key in f.dead_keys():
        # KMS refuses tags on a key pending deletion: inactive, so tagged first
        assert states[key] == "PendingDeletion"
        assert key_tags(fleet.kms, key)["spire-active"] == "false"
    assert aliases_before - alias_names(fleet.kms) == {f.alias(f.dead_server, "x509-CA-A")}
    assert f.alias(f.live_server, "x509-CA-A") in alias_names(fleet.kms)  # fresh tags keep it
    for key in (f.live_stale_alias, f.live_unaliased, f.young_undated, f.malformed, f.other_td):
        assert key_tags(fleet.kms, key)["spire-active"] == "true"
    again, _ = fleet.json("keys", "prune", "--trust-domain", TD, "--yes")
    assert again["actions"] == []


def test_prune_without_tag_resource_never_schedules_an_active_key(fleet):
    """kms:TagResource denied: a key tagged active is not scheduled untagged
    (as in tag mode); keys already tagged inactive are scheduled. Exit 1."""
    f = fleet.tags
    fleet.kms.inject("TagResource", "access_denied", count=10)
    prune, _ = fleet.json("keys", "prune", "--trust-domain", TD, "--yes", expect=1)
    results = {a.get("key_id"): a for a in prune["actions"]
               if a["action"] == "schedule-key-deletion"}
    assert results[f.dead_unaliased]["result"] == "failed"
    assert "grant kms:TagResource" in results[f.dead_unaliased]["detail"]
    assert results[f.dead_inactive]["result"] == "done"
    states = key_states(fleet.kms)
    assert states[f.dead_unaliased] == "Enabled" and states[f.dead_inactive] == "PendingDeletion"


def test_tags_are_read_again_before_each_deletion(fleet):
    """A dead server comes back after the plan was made: its refreshed
    spire-last-update keeps the key. Here the listing cannot see the tags
    (tag:GetResources denied, so the key is planned as an orphan by its
    description); the step reads them again (ListResourceTags) and keeps it."""
    f = fleet.tags
    kms = fleet.kms
    prune, _ = fleet.json("keys", "prune", "--trust-domain", TD)
    assert ("schedule-key-deletion", f.dead_unaliased) in plan_of(prune)
    from emulator.fixtures import boto3_client
    boto3_client("kms", kms).tag_resource(
        KeyId=f.dead_unaliased,
        Tags=[{"TagKey": "spire-last-update", "TagValue": str(int(kms.now()))}])
    kms.inject("GetResources", "access_denied", count=1)
    prune, stderr = fleet.json("keys", "prune", "--trust-domain", TD, "--yes")
    result = next(a for a in prune["actions"] if a.get("key_id") == f.dead_unaliased)
    assert result["result"] == "skipped"
    assert "its tags show a server keeping it alive" in result["detail"]
    assert key_states(kms)[f.dead_unaliased] == "Enabled"
    # the live server's stale alias is planned too (its tags unseen), and kept: the step
    # reads its key's tags before DeleteAlias, as the dispose-aliases task does
    live_alias = f.alias(f.live_server, "x509-CA-A")
    result = next(a for a in prune["actions"] if a.get("alias") == live_alias)
    assert result["result"] == "skipped"
    assert "its key's tags show a server keeping it alive" in result["detail"]
    assert live_alias in alias_names(kms)
    assert "tag:GetResources denied" in stderr


def test_get_resources_denied_is_a_warning(fleet):
    """Without tag:GetResources the listing goes on with aliases and
    descriptions: exit 0, a warning on stderr and in the summary; keys known
    only by their tags are missing, the others judged as without tags."""
    f = fleet.tags
    fleet.kms.inject("GetResources", "access_denied", count=1)
    listing, stderr = fleet.json("keys", "list")
    assert "warning: the keys' spire-* tags were not read (tag:GetResources denied: " in stderr
    assert "grant tag:GetResources in an identity-based IAM policy" in stderr
    summary = listing["summary"]
    assert summary["tags"].startswith("not read: tag:GetResources denied: AccessDeniedException")
    assert summary["tagged_keys"] == 0
    found = verdicts(listing)
    assert f.other_td not in found and f.malformed not in found  # known only by their tags
    assert found[f.live_stale_alias] == "stale-alias"  # its tags could not say otherwise
    assert found[f.dead_aliased] == "stale-alias"
    assert found[f.live_unaliased] == "young-orphan"  # created minutes ago, by description
    assert all(key["tags"] is None for key in listing["keys"])
    text = run_cli(fleet.binary, "keys", "list", env=fleet.env)  # allowed again: no warning
    assert text.returncode == 0 and text.stderr == ""
