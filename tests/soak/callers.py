"""The soak's SPIRE-like callers: each uses its server's KeyManager as a SPIRE
server's CA manager does. Keys come in three families of two slots
(x509-CA-A/B, JWT-Signer-A/B, WIT-Signer-A/B): one slot is active and signs,
the other is prepared (GenerateKey) and later activated, and the next
preparation rotates the key of the slot that was active before. A family's
key type is the server's setting (ca_key_type, jwt_key_type) and sometimes
changes, e.g. ec-p256 to ec-p384, as when an operator edits it during a
rolling restart. Each call is recorded as an Outcome (with its wall-clock
window) for the checker (invariants.py); every public key a caller is given
goes into the shared Keyring, by fingerprint. Callers act in parallel (one
thread each), as SPIRE servers do."""
import hashlib
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import grpc

from spire.plugin.server.keymanager.v1 import keymanager_pb2 as km_pb2

FAMILIES = ("x509-CA", "JWT-Signer", "WIT-Signer")
KEY_TYPES = {"x509-CA": ("EC_P256", "EC_P384", "RSA_2048"),
             "JWT-Signer": ("EC_P256", "EC_P384"), "WIT-Signer": ("EC_P256", "EC_P384")}
HASH_FOR = {"EC_P256": "SHA256", "EC_P384": "SHA384", "RSA_2048": "SHA256", "RSA_4096": "SHA256"}
TYPE_CHANGE_SHARE = 0.15  # of preparations (and restarts) that change the family's key type


@dataclass
class Outcome:
    kind: str  # GenerateKey, SignData, GetPublicKeys
    server: str
    key_id: str
    started: float  # time.time() before the call
    ended: float
    error: str = ""  # "" when the call worked
    code: str = ""  # gRPC status code name
    key_type: str = ""  # the key type the caller used (its view)
    fingerprint: str = ""  # SignData: the key the answer says signed; GenerateKey: the new key
    expected: str = ""  # SignData: the fingerprint of the key the caller holds for key_id
    current: str = ""  # SignData: the plugin's key for key_id right after the call
    current_type: str = ""
    digest: bytes = b""
    signature: bytes = b""
    hash: str = ""
    pss: bool = False

    @property
    def ok(self):
        return not self.error


class ClockGate:
    """Keeps the emulator's clock moves out of GenerateKey calls. A GenerateKey
    lasts seconds and the fleet judges keys by ages of a day or more: a move
    in the middle of one would age its new key by a day before its alias
    exists, which no real fleet sees."""

    def __init__(self):
        self._cond = threading.Condition()
        self._generating = 0
        self._moving = False

    @contextmanager
    def generating(self):
        with self._cond:
            self._cond.wait_for(lambda: not self._moving)
            self._generating += 1
        try:
            yield
        finally:
            with self._cond:
                self._generating -= 1
                self._cond.notify_all()

    @contextmanager
    def moving(self):
        with self._cond:
            self._moving = True
            self._cond.wait_for(lambda: self._generating == 0)
        try:
            yield
        finally:
            with self._cond:
                self._moving = False
                self._cond.notify_all()


class Keyring:
    """Every public key any caller was given: fingerprint -> (pkix, type)."""

    def __init__(self):
        self.keys = {}

    def add(self, public_key):
        self.keys[public_key.fingerprint] = (public_key.pkix_data, type_name(public_key))

    def get(self, fingerprint):
        return self.keys.get(fingerprint)


def type_name(public_key):
    return km_pb2.KeyType.Name(public_key.type)


def rpc_failure(error):
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else str(error)
    return (code.name if code is not None else "UNKNOWN"), details or str(error)


class SpireCaller:
    """SPIRE's use of one server's KeyManager (see the module docstring)."""

    def __init__(self, server, rng, keyring, gate=None):
        self.server = server
        self.rng = rng  # this caller's own: callers act in parallel threads
        self.keyring = keyring
        self.gate = gate or ClockGate()
        self.types = dict.fromkeys(FAMILIES, "EC_P256")
        self.active = {}  # family -> slot letter
        self.prepared = {}
        self.known = {}  # key id -> PublicKey this caller was given

    @staticmethod
    def key_id(family, slot):
        return f"{family}-{slot}"

    def _learn(self, public_key):
        self.known[public_key.id] = public_key
        self.keyring.add(public_key)

    # -- start-up --------------------------------------------------------------
    def resync(self):
        """After (re)start: what the plugin holds (GetPublicKeys), and which slots
        are still usable (SPIRE's journal remembers the active one)."""
        started = time.time()
        keys = self.server.host.get_public_keys()
        self.known = {}
        for public_key in keys:
            self._learn(public_key)
        for family in FAMILIES:
            slots = [s for s in "AB" if self.key_id(family, s) in self.known]
            if self.active.get(family) not in slots:
                self.active.pop(family, None)
                if slots:
                    self.active[family] = slots[0]
            if self.prepared.get(family) not in slots or \
                    self.prepared.get(family) == self.active.get(family):
                self.prepared.pop(family, None)
        return Outcome("GetPublicKeys", self.server.name, "", started, time.time())

    def maybe_change_types(self):
        """A restart may come with a new ca_key_type / jwt_key_type."""
        for family in FAMILIES:
            if self.rng.random() < TYPE_CHANGE_SHARE:
                self.types[family] = self.rng.choice(KEY_TYPES[family])

    def ensure_keys(self):
        """A family without an active key gets one, as SPIRE at first start."""
        outcomes = []
        for family in FAMILIES:
            if family not in self.active:
                outcome = self._generate(family, "A")
                outcomes.append(outcome)
                if outcome.ok:
                    self.active[family] = "A"
        return outcomes

    # -- actions ---------------------------------------------------------------
    def act(self, action, family):
        """One action; returns its Outcomes (none when it had nothing to do)."""
        if action == "sign":
            return [self.sign(family)] if family in self.active else self.ensure_keys()
        if action == "prepare":
            return self.prepare(family)
        if action == "activate":
            if family in self.prepared:
                self.active[family] = self.prepared.pop(family)
            return []
        if action == "get_public_keys":
            return [self.resync()]
        raise ValueError(action)

    def prepare(self, family):
        if family not in self.active:
            return self.ensure_keys()
        if self.rng.random() < TYPE_CHANGE_SHARE:
            self.types[family] = self.rng.choice(KEY_TYPES[family])
        slot = "B" if self.active[family] == "A" else "A"
        outcome = self._generate(family, slot)
        if outcome.ok:
            self.prepared[family] = slot
        else:
            self.prepared.pop(family, None)
        return [outcome]

    def _generate(self, family, slot):
        key_id = self.key_id(family, slot)
        key_type = self.types[family]
        outcome = Outcome("GenerateKey", self.server.name, key_id, time.time(), 0.0,
                          key_type=key_type)
        try:
            with self.gate.generating():
                public_key = self.server.host.generate_key(key_id, key_type, timeout=120)
            self._learn(public_key)
            outcome.fingerprint = public_key.fingerprint
        except grpc.RpcError as error:
            outcome.code, outcome.error = rpc_failure(error)
            self.known.pop(key_id, None)  # the plugin's key for it is unknown now
        outcome.ended = time.time()
        return outcome

    def sign(self, family):
        key_id = self.key_id(family, self.active[family])
        held = self.known.get(key_id)
        key_type = type_name(held) if held is not None else self.types[family]
        hash_name = HASH_FOR[key_type]
        pss = key_type.startswith("RSA") and self.rng.random() < 0.5
        digest = hashlib.new(hash_name.lower(), os.urandom(32)).digest()
        outcome = Outcome("SignData", self.server.name, key_id, time.time(), 0.0,
                          key_type=key_type, expected=held.fingerprint if held else "",
                          digest=digest, hash=hash_name, pss=pss)
        try:
            if pss:
                answer = self.server.host.sign_data(key_id, digest, pss=(-1, hash_name),
                                                    timeout=120)
            else:
                answer = self.server.host.sign_data(key_id, digest, hash_algorithm=hash_name,
                                                    timeout=120)
            outcome.signature = answer.signature
            outcome.fingerprint = answer.key_fingerprint
        except grpc.RpcError as error:
            outcome.code, outcome.error = rpc_failure(error)
        outcome.ended = time.time()
        self._reload(key_id, outcome)
        return outcome

    def _reload(self, key_id, outcome):
        """After a failure, or an answer naming a key the caller was not given
        for key_id, SPIRE reloads the key (GetPublicKey): so do we."""
        if outcome.ok and outcome.fingerprint == outcome.expected:
            outcome.current = outcome.expected
            return
        try:
            current = self.server.host.get_public_key(key_id)
        except grpc.RpcError:
            current = None
        if current is not None:
            self._learn(current)
            outcome.current = current.fingerprint
            outcome.current_type = type_name(current)
