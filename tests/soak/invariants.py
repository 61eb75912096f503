"""What the soak asserts, as pure functions of KMS's truth (the emulator's
state(): keys with their state and public key fingerprint, aliases with their
targets), the plugins' answers and the emulator's fault log:

  * every alias of a live server targets an Enabled key;
  * each plugin's public key for an id is its alias's target (after its next
    refresh), and that key is Enabled;
  * a SignData fails only when a fault hit its own calls: its Sign, or, when
    KMS refused the key and the plugin followed the alias, the follow's
    DescribeKey/GetPublicKey (or a replica changed the key's type, so the
    caller's hash no longer fits: SPIRE reloads); a GenerateKey fails only
    when a fault hit one of its calls; a signature verifies with the key the
    answer names, a key some caller was given;
  * at the end: no Enabled unaliased key of the trust domain older than
    orphan_key_age, and a server stopped for good has no alias left and none
    of its keys Enabled;
  * lost keys (a key a live server's alias targets, or a live plugin holds
    after its refresh, found PendingDeletion, disabled or deleted): 0.
"""
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

ALIAS_PREFIX = "alias/SPIRE_SERVER/example_org/"
KEY_DESCRIPTION_PREFIX = "SPIRE_SERVER_KEY/example_org/"
SIGN_PATH = ("Sign",)
FOLLOW_PATH = ("DescribeKey", "GetPublicKey")
GENERATE_PATH = ("CreateKey", "GetPublicKey", "CreateAlias", "UpdateAlias", "DescribeKey")
WINDOW_SLACK_S = 0.05  # the fault log's and our clocks are the same host's; answers take time


@dataclass(frozen=True)
class Violation:
    step: int
    what: str
    detail: str

    def __str__(self):
        return f"step {self.step}: {self.what}: {self.detail}"


# -- KMS's truth --------------------------------------------------------------

def spire_aliases(state):
    """{alias name: target key id} of our trust domain."""
    return {a["name"]: a["key_id"] for a in state["aliases"] if a["name"].startswith(ALIAS_PREFIX)}


def alias_server(alias_name):
    return alias_name[len(ALIAS_PREFIX):].split("/", 1)[0]


def keys_by_id(state):
    return {k["id"]: k for k in state["keys"]}


def keys_by_fingerprint(state):
    return {k["public_key_sha256"]: k for k in state["keys"]}


def spire_keys(state):
    return [k for k in state["keys"] if k["description"].startswith(KEY_DESCRIPTION_PREFIX)]


def live_alias_problems(state, live_server_ids):
    """[(alias, key id, what KMS shows)] for each alias of a live server whose
    target is not an Enabled key."""
    keys = keys_by_id(state)
    problems = []
    for name, key_id in sorted(spire_aliases(state).items()):
        if alias_server(name) not in live_server_ids:
            continue
        key = keys.get(key_id)
        if key is None or key["state"] != "Enabled":
            problems.append((name, key_id, key["state"] if key else "deleted"))
    return problems


def plugin_view_problems(state, server_id, view):
    """view: {SPIRE key id: fingerprint} a plugin holds (GetPublicKeys).
    [(SPIRE key id, problem, lost key or None)]: the key it holds is not
    Enabled in KMS (lost), its alias is gone, or targets another key."""
    aliases = spire_aliases(state)
    by_fingerprint = keys_by_fingerprint(state)
    problems = []
    for key_id, fingerprint in sorted(view.items()):
        held = by_fingerprint.get(fingerprint)
        target = aliases.get(f"{ALIAS_PREFIX}{server_id}/{key_id}")
        if held is None or held["state"] != "Enabled":
            shows = held["state"] if held else "deleted"
            lost = held["id"] if held else f"fingerprint {fingerprint[:16]}"
            problems.append((key_id, f"the key it holds is {shows} in KMS", lost))
        elif target is None:
            problems.append((key_id, "KMS has no alias for it", None))
        elif target != held["id"]:
            problems.append((key_id, f"it holds key {held['id']}, its alias targets {target}",
                             None))
    return problems


def old_orphans(state, now_s, orphan_age_s):
    """Enabled keys of our trust domain no alias targets, older than orphan_age_s."""
    targets = {a["key_id"] for a in state["aliases"]}
    return [k for k in spire_keys(state) if k["state"] == "Enabled" and k["id"] not in targets
            and k["creation_date"] <= now_s - orphan_age_s]


def dead_server_leftovers(state, server_id, its_keys):
    """What a server stopped for good still has: aliases, and which of its_keys
    (its alias targets when it stopped) are still Enabled."""
    aliases = [n for n in spire_aliases(state) if alias_server(n) == server_id]
    keys = keys_by_id(state)
    enabled = [k for k in its_keys if k in keys and keys[k]["state"] == "Enabled"]
    return aliases, enabled


class Ledger:
    """Keys of the trust domain seen over the run: created, deleted (seen
    PendingDeletion, or gone from KMS), lost."""

    def __init__(self):
        self.seen = set()
        self.deleted = set()
        self.lost = set()

    def observe(self, state):
        present = set()
        for key in spire_keys(state):
            present.add(key["id"])
            self.seen.add(key["id"])
            if key["state"] == "PendingDeletion":
                self.deleted.add(key["id"])
        self.deleted |= self.seen - present


# -- the callers' answers -----------------------------------------------------

def faults_in_window(fault_log, akid, started, ended, operations):
    return [f for f in fault_log if f["akid"] == akid and f["operation"] in operations
            and started - WINDOW_SLACK_S <= f["at"] <= ended + WINDOW_SLACK_S]


def verify_signature(pkix, signature, digest, hash_name, pss):
    """True when signature is a valid signature of digest by pkix's key."""
    key = serialization.load_der_public_key(pkix)
    hash_class = getattr(hashes, hash_name)
    prehashed = utils.Prehashed(hash_class())
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, digest, ec.ECDSA(prehashed))
        elif pss:
            key.verify(signature, digest, padding.PSS(mgf=padding.MGF1(hash_class()),
                                                      salt_length=hash_class.digest_size),
                       prehashed)
        else:
            key.verify(signature, digest, padding.PKCS1v15(), prehashed)
        return True
    except (InvalidSignature, ValueError):
        return False


def judge_sign(outcome, keyring, fault_log, akid, follow_failures, shares_identity):
    """(category, problem): problem is None unless a rule is broken.
    follow_failures: the plugin's "Could not follow" log records in the call's
    window; shares_identity: another live server shares its server id."""
    if outcome.ok:
        known = keyring.get(outcome.fingerprint)
        if known is None:
            return "signed", f"{outcome.key_id}: signed by key {outcome.fingerprint[:16]}, " \
                             "which no caller was given"
        if not verify_signature(known[0], outcome.signature, outcome.digest, outcome.hash,
                                outcome.pss):
            return "signed", f"{outcome.key_id}: the signature does not verify with key " \
                             f"{outcome.fingerprint[:16]} the answer names"
        if outcome.fingerprint != outcome.expected:
            return "signed by the key its alias moved to", None
        return "signed", None
    window = (akid, outcome.started, outcome.ended)
    if faults_in_window(fault_log, *window, SIGN_PATH):
        return "failed: a fault hit its Sign", None
    if follow_failures and faults_in_window(fault_log, *window, FOLLOW_PATH):
        return "failed: a fault hit the alias follow", None
    if shares_identity and outcome.current_type and outcome.current_type != outcome.key_type:
        return "failed: a replica changed the key type", None
    return "failed", f"{outcome.key_id}: {outcome.code}: {outcome.error} (no fault hit its " \
                     f"Sign; caller's key {outcome.expected[:16]} {outcome.key_type}, plugin's " \
                     f"now {outcome.current[:16]} {outcome.current_type})"


def judge_generate(outcome, fault_log, akid):
    """(category, problem) of a GenerateKey answer."""
    if outcome.ok:
        return "generated", None
    if faults_in_window(fault_log, akid, outcome.started, outcome.ended, GENERATE_PATH):
        return "failed: a fault hit its calls", None
    return "failed", f"{outcome.key_id} ({outcome.key_type}): {outcome.code}: {outcome.error} " \
                     "(no fault hit its calls)"
