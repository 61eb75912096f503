"""`spire-aws-kms keys list` and `keys prune` through the real binary against
the emulator, on an account with a live and a dead server (made by the real
plugin), old and young orphans, a key pending deletion, a disabled key,
another trust domain and keys that are not SPIRE's: the verdicts, JSON and
table, the KMS calls a listing costs, a dry run that changes nothing, --yes
doing exactly the plan, answers lost while pruning reported as KMS shows
them, live keys never touched, and the access errors."""
import json
import os
import pty
import subprocess

import pytest

from cli_helpers import (DAY, HOUR, TD, alias_names, build_account, cli_env, key_states,
                         run_cli)
from keymanager_helpers import wait_until


@pytest.fixture
def world(plugin_binary, start_plugin, kms, tmp_path):
    home = tmp_path / "home"
    home.mkdir()

    class World:
        binary = plugin_binary
        account = build_account(start_plugin, kms, tmp_path)
        env = cli_env(kms, home)

        def __init__(self):
            self.kms = kms

        def run(self, *args, **extra_env):
            env = dict(self.env)
            env.update(extra_env)
            return run_cli(self.binary, *args, env=env)

        def json(self, *args, expect=0):
            result = self.run(*args, "--json")
            assert result.returncode == expect, result.stderr
            return json.loads(result.stdout)

    kms.reset_calls()
    return World()


def verdicts(listing):
    return {key["key_id"]: key["verdict"] for key in listing["keys"]}


# --- keys list ------------------------------------------------------------------------------


def test_list_gives_every_spire_key_its_verdict(world):
    a = world.account
    listing = world.json("keys", "list")
    assert verdicts(listing) == {
        a.live_keys["x509-CA-A"]: "live", a.live_keys["JWT-Signer-A"]: "live",
        a.dead_keys["x509-CA-A"]: "stale-alias", a.dead_keys["JWT-Signer-A"]: "stale-alias",
        a.old_orphan: "orphan", a.young_orphan: "young-orphan",
        a.pending: "pending-deletion", a.disabled: "disabled",
        a.other_td_stale: "stale-alias", a.other_td_orphan: "orphan"}
    assert a.unrelated not in verdicts(listing) and a.unrelated_aliased not in verdicts(listing)
    summary = listing["summary"]
    assert (summary["keys"], summary["prunable"]) == (10, 5)
    assert summary["monthly_cost_usd"] == 9.0  # the key pending deletion costs nothing
    assert summary["prunable_monthly_cost_usd"] == 5.0
    assert summary["by_verdict"] == {"live": 2, "stale-alias": 3, "orphan": 2,
                                     "young-orphan": 1, "pending-deletion": 1, "disabled": 1,
                                     "malformed-tags": 0}
    assert (summary["account_keys"], summary["undescribed_keys"]) == (12, 0)
    assert (summary["tags"], summary["tagged_keys"]) == ("read", 0)  # alias mode: no spire-* tags


def test_list_json_fields(world):
    a = world.account
    keys = {key["key_id"]: key for key in world.json("keys", "list")["keys"]}
    dead = keys[a.dead_keys["x509-CA-A"]]
    assert set(dead) == {"key_id", "arn", "trust_domain", "server_id", "spire_key_id", "alias",
                         "alias_last_updated", "key_spec", "state", "created", "tags",
                         "verdict"}
    assert dead["tags"] is None  # made in alias mode: no spire-* tags
    assert dead["arn"].endswith(":key/" + a.dead_keys["x509-CA-A"])
    assert (dead["trust_domain"], dead["server_id"], dead["spire_key_id"]) == (
        "example_org", a.dead_server, "x509-CA-A")
    assert dead["alias"] == a.dead_alias("x509-CA-A")
    assert dead["alias_last_updated"].endswith("Z")
    assert (dead["key_spec"], dead["state"], dead["created"]) == (None, None, None)
    orphan = keys[a.old_orphan]
    assert (orphan["alias"], orphan["server_id"], orphan["spire_key_id"]) == (
        None, None, "x509-CA-B")
    assert (orphan["key_spec"], orphan["state"]) == ("ECC_NIST_P256", "Enabled")
    assert orphan["created"].endswith("Z")
    assert keys[a.disabled]["state"] == "Disabled"


def test_list_one_trust_domain_and_price(world):
    a = world.account
    listing = world.json("keys", "list", "--trust-domain", TD, "--price", "0.5")
    assert a.other_td_stale not in verdicts(listing)
    assert a.other_td_orphan not in verdicts(listing)
    assert listing["summary"]["keys"] == 8
    assert listing["summary"]["monthly_cost_usd"] == 3.5
    assert listing["summary"]["prunable_monthly_cost_usd"] == 1.5


def test_list_thresholds_within_the_plugins_bounds(world):
    a = world.account
    listing = world.json("keys", "list", "--orphan-key-age", "24h", "--stale-alias-age", "504h")
    assert verdicts(listing)[a.dead_keys["x509-CA-A"]] == "live"  # 20 days < 21 days
    result = world.run("keys", "list", "--stale-alias-age", "24h")
    assert result.returncode == 2
    assert "--stale-alias-age must be at least 168h" in result.stderr


def test_list_costs_one_page_per_1000_keys_and_100_aliases(world):
    listing = world.json("keys", "list")
    # 12 keys, 6 aliases of ours + 10 AWS-managed, no tagged key: one page each; one
    # DescribeKey per key without an alias (orphans, pending, disabled, the bare unrelated key)
    calls = {"ListKeys": 1, "ListAliases": 1, "GetResources": 1, "DescribeKey": 6}
    assert world.kms.calls() == calls
    assert listing["summary"]["kms_calls"] == calls


def test_list_describe_aliased_fills_the_key_fields(world):
    a = world.account
    listing = world.json("keys", "list", "--describe-aliased")
    # one more DescribeKey per key a SPIRE alias targets (2 live, 2 dead, 1 other domain);
    # the key behind alias/payments is not SPIRE's and stays undescribed
    assert world.kms.calls() == {"ListKeys": 1, "ListAliases": 1, "GetResources": 1,
                                 "DescribeKey": 11}
    keys = {key["key_id"]: key for key in listing["keys"]}
    live = keys[a.live_keys["x509-CA-A"]]
    assert (live["key_spec"], live["state"], live["verdict"]) == ("ECC_NIST_P256", "Enabled",
                                                                  "live")
    assert live["created"].endswith("Z")
    assert verdicts(listing) == verdicts(world.json("keys", "list"))


def test_list_cost_at_scale(plugin_binary, kms, tmp_path):
    """1500 keys, 210 aliases, 250 keys tagged by tag-mode servers: 2 ListKeys
    pages, 3 ListAliases pages (220 with AWS's), 3 GetResources pages, one
    DescribeKey per unaliased key and per aliased key tagged active without
    spire-last-update (5 here), nothing else."""
    now = kms.now()
    fresh = {"spire-server-td": "example.org", "spire-server-id": "tag-peer",
             "spire-active": "true", "spire-key-id": "x509-CA-A",
             "spire-last-update": str(int(now - HOUR))}
    undated = {k: v for k, v in fresh.items() if k != "spire-last-update"}
    keys = [kms.create_key("ECC_NIST_P256", f"SPIRE_SERVER_KEY/example_org/k{i}", now - 9 * DAY,
                           tags=fresh if 200 <= i < 450 else (undated if i < 5 else None))
            for i in range(1500)]
    for i in range(210):
        kms.create_alias(f"alias/SPIRE_SERVER/example_org/{'a' * 8}-0000-4000-8000-"
                         f"{i:012d}/x509-CA-A", keys[i], now - HOUR)
    kms.reset_calls()
    result = run_cli(plugin_binary, "keys", "list", "--json", env=cli_env(kms, tmp_path))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)["summary"]
    assert kms.calls() == {"ListKeys": 2, "ListAliases": 3, "GetResources": 3,
                           "DescribeKey": 1290 + 5}
    assert summary["tagged_keys"] == 255
    # the 240 unaliased keys with fresh tags are live: a tag-mode server keeps them
    assert summary["by_verdict"]["live"] == 210 + 240
    assert summary["by_verdict"]["orphan"] == 1290 - 240


def test_list_table(world):
    a = world.account
    result = world.run("keys", "list", "--trust-domain", TD)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["VERDICT", "KEY", "ID", "TRUST", "DOMAIN", "SERVER", "ID",
                                "SPIRE", "KEY", "ID", "CREATED", "ALIAS", "UPDATED", "TAG",
                                "UPDATED", "$/MONTH"]
    rows = {line.split()[1]: line.split() for line in lines[1:9]}
    assert rows[a.dead_keys["x509-CA-A"]][0] == "stale-alias"
    assert rows[a.dead_keys["x509-CA-A"]][-1] == "$1.00"
    assert rows[a.pending][0] == "pending-deletion" and rows[a.pending][-1] == "$0.00"
    assert "20d ago" in " ".join(rows[a.dead_keys["JWT-Signer-A"]])
    assert "8 SPIRE keys of example.org in us-east-2" in result.stdout
    assert "monthly cost $7.00; prunable 3 keys, $3.00 a month" in result.stdout
    assert result.stderr == ""  # no progress line when stderr is not a terminal


def test_list_progress_line_on_a_terminal(world):
    main, secondary = pty.openpty()
    try:
        result = run_cli(world.binary, "keys", "list", "--json", env=world.env, stderr=secondary)
        os.close(secondary)
        secondary = None
        seen = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # EIO: the other side is closed and drained
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if secondary is not None:
            os.close(secondary)
        os.close(main)
    assert result.returncode == 0
    assert b"listing: 12 keys" in seen
    assert seen.endswith(b"\r\x1b[K")  # the line is cleared at the end
    assert json.loads(result.stdout)["summary"]["keys"] == 10  # stdout stays clean


# --- keys prune -----------------------------------------------------------------------------


def plan_of(prune):
    return [(a["action"], a.get("alias") or a.get("key_id")) for a in prune["actions"]]


def expected_plan(a):
    return [("delete-alias", a.dead_alias("JWT-Signer-A")),
            ("schedule-key-deletion", a.dead_keys["JWT-Signer-A"]),
            ("delete-alias", a.dead_alias("x509-CA-A")),
            ("schedule-key-deletion", a.dead_keys["x509-CA-A"]),
            ("schedule-key-deletion", a.old_orphan)]


def test_prune_dry_run_changes_nothing(world):
    a = world.account
    before = world.kms.state()
    world.kms.reset_calls()
    prune = world.json("keys", "prune", "--trust-domain", TD)
    assert prune["dry_run"] is True
    assert plan_of(prune) == expected_plan(a)
    assert {action["result"] for action in prune["actions"]} == {"planned"}
    assert prune["summary"]["monthly_cost_to_free_usd"] == 3.0
    assert world.kms.state() == before
    assert set(world.kms.calls()) == {"ListKeys", "ListAliases", "GetResources", "DescribeKey"}
    text = world.run("keys", "prune", "--trust-domain", TD)
    assert "Dry run: nothing was changed" in text.stdout
    assert "5 actions: 2 alias deletions, 3 key deletions (frees $3.00 a month)" in text.stdout


def test_prune_yes_does_exactly_the_plan(world):
    a = world.account
    aliases_before = alias_names(world.kms)
    states_before = key_states(world.kms)
    prune = world.json("keys", "prune", "--trust-domain", TD, "--yes",
                       "--pending-window-days", "9")
    assert plan_of(prune) == expected_plan(a)
    assert {action["result"] for action in prune["actions"]} == {"done"}
    assert prune["summary"]["monthly_cost_freed_usd"] == 3.0
    deleted = {a.dead_keys["x509-CA-A"], a.dead_keys["JWT-Signer-A"], a.old_orphan}
    states = key_states(world.kms)
    assert {k for k in states if states[k] != states_before[k]} == deleted
    assert all(states[k] == "PendingDeletion" for k in deleted)
    assert aliases_before - alias_names(world.kms) == {a.dead_alias("x509-CA-A"),
                                                       a.dead_alias("JWT-Signer-A")}
    pending = {k["id"]: k["deletion_date"] for k in world.kms.state()["keys"]}
    assert pending[a.old_orphan] == pytest.approx(world.kms.now() + 9 * DAY, abs=60)
    # a second run has nothing left to do
    again = world.json("keys", "prune", "--trust-domain", TD, "--yes")
    assert again["actions"] == []


def test_prune_text_output(world):
    result = world.run("keys", "prune", "--trust-domain", TD, "--yes")
    assert result.returncode == 0, result.stderr
    assert "Pruned for trust domain example.org" in result.stdout
    assert "5 done, 0 already done, 0 skipped, 0 failed, 0 unknown; freed $3.00 a month" in (
        result.stdout)


def test_lost_answers_are_read_back(world):
    """DeleteAlias applied but its answer lost (the retry finds it gone), and
    ScheduleKeyDeletion applied but answered 500 (the retry is refused as
    already pending): both read back from KMS and reported done."""
    a = world.account
    world.kms.inject("DeleteAlias", "lost", count=1)
    world.kms.inject("ScheduleKeyDeletion", "lost_500", count=1)
    prune = world.json("keys", "prune", "--trust-domain", TD, "--yes")
    results = {(x["action"], x.get("alias") or x.get("key_id")): x for x in prune["actions"]}
    first_alias = results[("delete-alias", a.dead_alias("JWT-Signer-A"))]
    assert first_alias["result"] == "done"
    assert "read back: the alias is gone" in first_alias["detail"]
    first_key = results[("schedule-key-deletion", a.dead_keys["JWT-Signer-A"])]
    assert first_key["result"] == "done"
    assert "read back: the key is pending deletion" in first_key["detail"]
    states = key_states(world.kms)
    assert states[a.dead_keys["JWT-Signer-A"]] == "PendingDeletion"
    assert all(states[k] == "Enabled" for k in a.live_keys.values())
    assert {a.live_alias(k) for k in a.live_keys} <= alias_names(world.kms)


def test_unreadable_outcome_is_unknown_not_guessed(world):
    """DeleteAlias's answer is lost and KMS cannot be read back: "unknown",
    exit 1. The key is then scheduled only because a fresh ListAliases shows
    no alias on it."""
    a = world.account
    world.kms.inject("DeleteAlias", "lost", count=1)
    world.kms.inject("DescribeKey", "500", count=3, after=6)  # after the listing's describes
    prune = world.json("keys", "prune", "--trust-domain", TD, "--yes", expect=1)
    first = prune["actions"][0]
    assert (first["action"], first["alias"], first["result"]) == (
        "delete-alias", a.dead_alias("JWT-Signer-A"), "unknown")
    assert "could not be read back" in first["detail"]
    assert prune["summary"]["results"]["unknown"] == 1
    assert a.dead_alias("JWT-Signer-A") not in alias_names(world.kms)  # KMS had applied it


def test_unreadable_checks_keep_every_key(world):
    """The re-read before the first change fails (ListAliases 500 after the
    listing): that alias is skipped, and its key, still aliased, is kept."""
    a = world.account
    world.kms.inject("ListAliases", "500", count=3, after=1)
    prune = world.json("keys", "prune", "--trust-domain", TD, "--yes")
    first, second = prune["actions"][0], prune["actions"][1]
    assert first["result"] == "skipped" and "could not re-read the alias" in first["detail"]
    assert second["result"] == "skipped"
    assert f"alias {a.dead_alias('JWT-Signer-A')} targets it; kept" in second["detail"]
    assert key_states(world.kms)[a.dead_keys["JWT-Signer-A"]] == "Enabled"


def test_alias_refreshed_after_the_listing_is_kept(world):
    """The dead server comes back between the listing and the prune: its
    refreshed alias and its key are kept."""
    a = world.account
    kms = world.kms
    # the first re-read waits in the emulator until the test has refreshed the alias
    kms.inject("ListAliases", "latency", count=1, latency_ms=3000, after=1)
    process = subprocess.Popen([world.binary, "keys", "prune", "--trust-domain", TD, "--yes",
                                "--json"], env=world.env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    wait_until(lambda: kms.calls("ListAliases") >= 2, timeout=30,
               what="the prune's first re-read of the alias")
    kms.set_alias_last_updated(a.dead_alias("JWT-Signer-A"), kms.now())
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    actions = json.loads(out)["actions"]
    assert actions[0]["result"] == "skipped"
    assert "refreshed since the listing" in actions[0]["detail"]
    assert actions[1]["result"] == "skipped"
    assert key_states(kms)[a.dead_keys["JWT-Signer-A"]] == "Enabled"
    assert a.dead_alias("JWT-Signer-A") in alias_names(kms)


def test_prune_never_touches_other_trust_domains_or_unrelated_keys(world):
    a = world.account
    world.json("keys", "prune", "--trust-domain", TD, "--yes")
    states = key_states(world.kms)
    for key in (a.other_td_stale, a.other_td_orphan, a.unrelated, a.unrelated_aliased,
                a.young_orphan, a.disabled, *a.live_keys.values()):
        assert states[key] in ("Enabled", "Disabled"), key
    assert "alias/payments" in alias_names(world.kms)


def test_prune_needs_a_trust_domain(world):
    result = world.run("keys", "prune")
    assert result.returncode == 2
    assert "keys prune needs --trust-domain TD" in result.stderr


# --- access errors --------------------------------------------------------------------------


def test_wrong_secret_is_an_access_error(world):
    result = world.run("keys", "list", AWS_SECRET_ACCESS_KEY="not-the-secret")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "the AWS credentials were refused (InvalidSignatureException" in result.stderr
    assert "not-the-secret" not in result.stderr


def test_denied_listing_is_an_access_error(world):
    world.kms.inject("ListKeys", "access_denied", count=1)
    result = world.run("keys", "list")
    assert result.returncode == 2
    assert "was denied (AccessDeniedException" in result.stderr
    assert "spire-aws-kms doctor" in result.stderr


def test_no_region_is_a_usage_error(world):
    result = world.run("keys", "list", AWS_REGION="")
    assert result.returncode == 2
    assert "no AWS region: give --region" in result.stderr


def test_help_of_each_command(world):
    for words in (["keys", "list"], ["keys", "prune"], ["doctor"], ["keys"]):
        result = world.run(*words, "--help")
        assert result.returncode == 0
        assert result.stdout.startswith("usage: spire-aws-kms " + " ".join(words[:2]))
