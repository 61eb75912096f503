"""The soak's checker (invariants.py) and plan (chaos.py) on made-up data: each
rule flags what breaks it and lets the rest through, so a soak that reports
no violation has looked."""
import hashlib
import random

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from soak import chaos, invariants as inv
from soak.callers import Outcome

PREFIX = inv.ALIAS_PREFIX
DAY = 86400.0
NOW = 1_900_000_000.0


def key(key_id, state="Enabled", created=NOW - 3 * DAY, td="example_org", fingerprint=None):
    return {"id": key_id, "state": state, "creation_date": created,
            "description": f"SPIRE_SERVER_KEY/{td}/x509-CA-A",
            "public_key_sha256": fingerprint or "f-" + key_id}


def alias(name, key_id):
    return {"name": name, "key_id": key_id}


def test_live_alias_on_a_dead_key_is_flagged_and_dead_servers_are_not():
    state = {"keys": [key("k1"), key("k2", "PendingDeletion"), key("k4", "Disabled")],
             "aliases": [alias(PREFIX + "live/x509-CA-A", "k1"),
                         alias(PREFIX + "live/JWT-Signer-A", "k2"),
                         alias(PREFIX + "live/WIT-Signer-A", "k3"),
                         alias(PREFIX + "live/x509-CA-B", "k4"),
                         alias(PREFIX + "dead/x509-CA-A", "k2"),
                         alias("alias/SPIRE_SERVER/other_org/live/x509-CA-A", "k2")]}
    assert inv.live_alias_problems(state, {"live"}) == [
        (PREFIX + "live/JWT-Signer-A", "k2", "PendingDeletion"),
        (PREFIX + "live/WIT-Signer-A", "k3", "deleted"),
        (PREFIX + "live/x509-CA-B", "k4", "Disabled")]
    assert inv.live_alias_problems(state, {"dead-not-listed"}) == []


def test_plugin_view_against_kms():
    state = {"keys": [key("k1"), key("k2"), key("k3", "PendingDeletion")],
             "aliases": [alias(PREFIX + "s/x509-CA-A", "k1"), alias(PREFIX + "s/x509-CA-B", "k1"),
                         alias(PREFIX + "s/JWT-Signer-A", "k3")]}
    view = {"x509-CA-A": "f-k1", "x509-CA-B": "f-k2", "JWT-Signer-A": "f-k3",
            "JWT-Signer-B": "f-gone", "WIT-Signer-A": "f-k2"}
    assert inv.plugin_view_problems(state, "s", {"x509-CA-A": "f-k1"}) == []
    assert inv.plugin_view_problems(state, "s", view) == [
        ("JWT-Signer-A", "the key it holds is PendingDeletion in KMS", "k3"),
        ("JWT-Signer-B", "the key it holds is deleted in KMS", "fingerprint f-gone"),
        ("WIT-Signer-A", "KMS has no alias for it", None),
        ("x509-CA-B", "it holds key k2, its alias targets k1", None)]


def test_old_orphans_are_enabled_unaliased_keys_of_the_trust_domain_past_the_age():
    state = {"keys": [key("old"), key("young", created=NOW - 0.5 * DAY), key("aliased"),
                      key("pending", "PendingDeletion"), key("other-td", td="other_org")],
             "aliases": [alias("alias/anything", "aliased")]}
    assert [k["id"] for k in inv.old_orphans(state, NOW, DAY)] == ["old"]


def test_dead_server_leftovers():
    state = {"keys": [key("k1"), key("k2", "PendingDeletion")],
             "aliases": [alias(PREFIX + "dead/x509-CA-A", "k1"), alias(PREFIX + "live/x", "k1")]}
    assert inv.dead_server_leftovers(state, "dead", ["k1", "k2", "k9"]) == (
        [PREFIX + "dead/x509-CA-A"], ["k1"])
    assert inv.dead_server_leftovers({"keys": [key("k2", "PendingDeletion")], "aliases": []},
                                     "dead", ["k1", "k2"]) == ([], [])


def test_ledger_counts_created_and_deleted_keys():
    ledger = inv.Ledger()
    ledger.observe({"keys": [key("a"), key("b"), key("x", td="other_org")], "aliases": []})
    ledger.observe({"keys": [key("a", "PendingDeletion"), key("c")], "aliases": []})
    assert ledger.seen == {"a", "b", "c"}
    assert ledger.deleted == {"a", "b"}


# -- answers ---------------------------------------------------------------------

PRIVATE = ec.generate_private_key(ec.SECP256R1())
PKIX = PRIVATE.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
FINGERPRINT = hashlib.sha256(PKIX).hexdigest()
DIGEST = hashlib.sha256(b"soak").digest()


class Ring:
    def __init__(self, keys):
        self.keys = keys

    def get(self, fingerprint):
        return self.keys.get(fingerprint)


RING = Ring({FINGERPRINT: (PKIX, "EC_P256")})


def signed(fingerprint=FINGERPRINT, expected=FINGERPRINT, digest=DIGEST):
    signature = PRIVATE.sign(DIGEST, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    return Outcome("SignData", "s", "x509-CA-A", 100.0, 101.0, key_type="EC_P256",
                   fingerprint=fingerprint, expected=expected, digest=digest,
                   signature=signature, hash="SHA256")


def failed(**fields):
    outcome = Outcome("SignData", "s", "x509-CA-A", 100.0, 101.0, error="boom", code="INTERNAL",
                      key_type="EC_P256", expected=FINGERPRINT, current=FINGERPRINT,
                      current_type="EC_P256", hash="SHA256")
    for name, value in fields.items():
        setattr(outcome, name, value)
    return outcome


def fault(operation, akid="AKID", at=100.5):
    return {"seq": 1, "operation": operation, "fault": "500", "akid": akid, "at": at}


def test_signatures_verify_with_the_key_the_answer_names():
    assert inv.judge_sign(signed(), RING, [], "AKID", [], False) == ("signed", None)
    assert inv.judge_sign(signed(expected="older"), RING, [], "AKID", [], True) == (
        "signed by the key its alias moved to", None)
    _, problem = inv.judge_sign(signed(digest=hashlib.sha256(b"other").digest()), RING, [],
                                "AKID", [], False)
    assert "does not verify" in problem
    _, problem = inv.judge_sign(signed(fingerprint="ab" * 32), RING, [], "AKID", [], False)
    assert "no caller was given" in problem


def test_a_failed_sign_needs_a_fault_on_its_own_calls():
    judge = inv.judge_sign
    assert judge(failed(), RING, [fault("Sign")], "AKID", [], False) == (
        "failed: a fault hit its Sign", None)
    for log in ([], [fault("Sign", akid="OTHER")], [fault("Sign", at=103.0)],
                [fault("ListKeys")], [fault("DescribeKey")]):
        category, problem = judge(failed(), RING, log, "AKID", [], False)
        assert category == "failed" and "no fault hit its Sign" in problem
    follow = [{"@message": "Could not follow our alias to its new key"}]
    assert judge(failed(), RING, [fault("DescribeKey")], "AKID", follow, True) == (
        "failed: a fault hit the alias follow", None)
    changed = failed(current="other", current_type="EC_P384")
    assert judge(changed, RING, [], "AKID", [], True) == (
        "failed: a replica changed the key type", None)
    assert judge(changed, RING, [], "AKID", [], False)[1] is not None


def test_a_failed_generate_key_needs_a_fault_on_its_calls():
    outcome = Outcome("GenerateKey", "s", "x509-CA-B", 100.0, 101.0, error="boom", code="INTERNAL")
    assert inv.judge_generate(outcome, [fault("UpdateAlias")], "AKID")[1] is None
    assert inv.judge_generate(outcome, [fault("ListKeys")], "AKID")[1] is not None
    assert inv.judge_generate(outcome, [], "AKID")[1] is not None
    outcome.error = ""
    assert inv.judge_generate(outcome, [], "AKID") == ("generated", None)


# -- the plan --------------------------------------------------------------------

def test_a_seed_replays_the_plan():
    first = [chaos.draw_step(random.Random(7), 3) for _ in range(5)]
    again = [chaos.draw_step(random.Random(7), 3) for _ in range(5)]
    assert first == again


def test_the_plan_draws_every_fault_kind_and_bounded_clock_moves():
    rng = random.Random(1)
    steps = [chaos.draw_step(rng, 3) for _ in range(400)]
    kinds = {f.fault for step in steps for f in step.faults}
    assert kinds == set(chaos.FAULT_WEIGHTS)
    assert {f.operation for step in steps for f in step.faults} == set(chaos.OPERATION_WEIGHTS)
    moves = {step.clock_move_h for step in steps}
    assert 0 in moves and max(moves) <= 168 / 4
    assert any(step.restart >= 0 for step in steps)
    assert any(not step.faults for step in steps)
