"""The emulator's KMS: asymmetric signing keys held with python3-cryptography,
aliases, the key state machine (Enabled, Disabled, PendingDeletion, deleted
when the window ends on the emulator clock) and AWS's rules and error codes
for each operation. Requests reach it already validated against the model."""
import base64
import hashlib
import json
import re
import subprocess
import threading
import uuid

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

try:
    from .model_check import ApiError
except ImportError:  # run as a script
    from model_check import ApiError

EC_CURVES = {"ECC_NIST_P256": ec.SECP256R1, "ECC_NIST_P384": ec.SECP384R1}
RSA_BITS = {"RSA_2048": 2048, "RSA_4096": 4096}
RSA_ALGORITHMS = ["RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384",
                  "RSASSA_PKCS1_V1_5_SHA_512", "RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384",
                  "RSASSA_PSS_SHA_512"]
SIGNING_ALGORITHMS = {"ECC_NIST_P256": ["ECDSA_SHA_256"], "ECC_NIST_P384": ["ECDSA_SHA_384"],
                      "RSA_2048": RSA_ALGORITHMS, "RSA_4096": RSA_ALGORITHMS}
HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
AWS_MANAGED_ALIASES = ["alias/aws/acm", "alias/aws/dynamodb", "alias/aws/ebs",
                       "alias/aws/elasticfilesystem", "alias/aws/lambda", "alias/aws/rds",
                       "alias/aws/redshift", "alias/aws/s3", "alias/aws/secretsmanager",
                       "alias/aws/ssm"]
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DAY = 86400.0


class RsaPool:
    """Pre-generated RSA keys (generation takes 0.1 s to seconds), filled by a
    background thread (running the openssl tool at low priority) so RSA
    CreateKey answers fast. Shared by all emulators of the process. A caller
    finding the pool empty waits for the filler, which serves waiters first."""

    TARGET = {2048: 3, 4096: 1}

    def __init__(self):
        self._keys = {bits: [] for bits in self.TARGET}
        self._waiting = {bits: 0 for bits in self.TARGET}
        self._cond = threading.Condition()
        self._thread = None

    def ensure_started(self):
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._fill, name="kms-emulator-rsa-pool",
                                                daemon=True)
                self._thread.start()

    def take(self, bits):
        self.ensure_started()
        with self._cond:
            self._waiting[bits] += 1
            self._cond.notify_all()
            while not self._keys[bits]:
                self._cond.wait()
            self._waiting[bits] -= 1
            key = self._keys[bits].pop()
            self._cond.notify_all()
            return key

    def wait_ready(self, bits, timeout):
        """True once the pool holds its target of bits-sized keys (for tests)."""
        self.ensure_started()
        with self._cond:
            return self._cond.wait_for(lambda: len(self._keys[bits]) >= self.TARGET[bits],
                                       timeout)

    def public_moduli(self, bits):
        with self._cond:
            return {key.public_key().public_numbers().n for key in self._keys[bits]}

    def _next_size(self):
        for bits in self.TARGET:
            if self._waiting[bits] > len(self._keys[bits]):
                return bits
        for bits, target in self.TARGET.items():
            if len(self._keys[bits]) < target:
                return bits
        return None

    def _fill(self):
        while True:
            with self._cond:
                bits = self._next_size()
                while bits is None:
                    self._cond.wait()
                    bits = self._next_size()
            key = _generate_rsa(bits)
            with self._cond:
                self._keys[bits].append(key)
                self._cond.notify_all()


def _generate_rsa(bits):
    """RSA key made by the openssl tool: a thread generating keys in-process
    would crash the interpreter if it were still inside OpenSSL at exit."""
    command = ["nice", "-n", "10", "openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
               f"rsa_keygen_bits:{bits}"]
    try:
        pem = subprocess.run(command, check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return serialization.load_pem_private_key(pem, None)


RSA_POOL = RsaPool()


def new_private_key(spec):
    if spec in EC_CURVES:
        return ec.generate_private_key(EC_CURVES[spec]())
    return RSA_POOL.take(RSA_BITS[spec])


def _padding_and_hash(algorithm):
    """KMS signing algorithm name -> (padding or None for ECDSA, hash class)."""
    hash_class = HASHES[algorithm[-3:]]
    if algorithm.startswith("RSASSA_PSS"):
        return padding.PSS(mgf=padding.MGF1(hash_class()),
                           salt_length=hash_class.digest_size), hash_class
    if algorithm.startswith("RSASSA_PKCS1"):
        return padding.PKCS1v15(), hash_class
    return None, hash_class


def _signing_hash(hash_class, message_type):
    return utils.Prehashed(hash_class()) if message_type == "DIGEST" else hash_class()


def sign_bytes(private_key, algorithm, message, message_type):
    pad, hash_class = _padding_and_hash(algorithm)
    chosen = _signing_hash(hash_class, message_type)
    if pad is None:
        return private_key.sign(message, ec.ECDSA(chosen))
    return private_key.sign(message, pad, chosen)


def verify_bytes(public_key, algorithm, message, message_type, signature):
    pad, hash_class = _padding_and_hash(algorithm)
    chosen = _signing_hash(hash_class, message_type)
    try:
        if pad is None:
            public_key.verify(signature, message, ec.ECDSA(chosen))
        else:
            public_key.verify(signature, message, pad, chosen)
        return True
    except InvalidSignature:
        return False


class Key:
    """One KMS key; private_key is a cryptography private key object."""

    def __init__(self, key_id, arn, spec, private_key, description, creation_date, seq):
        self.id = key_id
        self.arn = arn
        self.spec = spec
        self.private_key = private_key
        self.public_der = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.description = description
        self.creation_date = creation_date
        self.state = "Enabled"
        self.deletion_date = None
        self.tags = {}
        self.ever_tagged = False  # the tagging API lists keys that are or were tagged
        self.policy = None
        self.seq = seq


class Alias:
    def __init__(self, name, key_id, creation_date):
        self.name = name
        self.key_id = key_id
        self.creation_date = creation_date
        self.last_updated = creation_date


def _encode_marker(value):
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def _decode_marker(marker):
    try:
        return json.loads(base64.urlsafe_b64decode(marker.encode()))
    except (ValueError, TypeError):
        raise ApiError("InvalidMarkerException",
                       "The marker is not one this service returned") from None


def _page(items, start, limit, marker_of):
    """items from index start, at most limit; returns (page, truncated, next marker)."""
    page = items[start:start + limit]
    if start + limit < len(items):
        return page, True, marker_of(items[start + limit])
    return page, False, None


class KmsStore:
    """All KMS state of one emulator. clock() returns the emulator's epoch
    seconds; on_change() is called after every mutation (state file)."""

    def __init__(self, region, account, clock, on_change=lambda: None):
        self.region = region
        self.account = account
        self.clock = clock
        self.on_change = on_change
        self.lock = threading.RLock()
        self.keys = {}
        self.aliases = {}
        self._seq = 0

    # -- naming -----------------------------------------------------------
    def key_arn(self, key_id):
        return f"arn:aws:kms:{self.region}:{self.account}:key/{key_id}"

    def alias_arn(self, name):
        return f"arn:aws:kms:{self.region}:{self.account}:{name}"

    # -- direct helpers (control API) -------------------------------------
    def create_key(self, spec, description="", creation_date=None, key_id=None,
                   private_key=None, tags=None):
        if spec not in SIGNING_ALGORITHMS:
            raise ApiError("UnsupportedOperationException",
                           f"The KMS emulator does not emulate KeySpec {spec}; it emulates "
                           + ", ".join(SIGNING_ALGORITHMS))
        private_key = private_key or new_private_key(spec)
        with self.lock:
            key_id = key_id or str(uuid.uuid4())
            self._seq += 1
            key = Key(key_id, self.key_arn(key_id), spec, private_key, description,
                      self.clock() if creation_date is None else float(creation_date), self._seq)
            if tags:
                key.tags.update(tags)
                key.ever_tagged = True
            self.keys[key_id] = key
        return key

    def create_alias(self, name, key_id, last_updated=None):
        with self.lock:
            self.purge_deleted()
            if name in self.aliases or name in AWS_MANAGED_ALIASES:
                raise ApiError("AlreadyExistsException",
                               f"An alias with the name {self.alias_arn(name)} already exists")
            if key_id not in self.keys:
                raise ApiError("NotFoundException", f"Key '{self.key_arn(key_id)}' does not exist")
            alias = Alias(name, key_id, self.clock())
            if last_updated is not None:
                alias.last_updated = float(last_updated)
            self.aliases[name] = alias
        return alias

    def disable_key(self, key_id):
        with self.lock:
            self._key_by_id(key_id).state = "Disabled"

    def set_key_creation_date(self, key_id, epoch_seconds):
        with self.lock:
            self._key_by_id(key_id).creation_date = float(epoch_seconds)

    def set_alias_last_updated(self, name, epoch_seconds):
        with self.lock:
            alias = self.aliases.get(name)
            if alias is None:
                raise ApiError("NotFoundException", f"Alias {name} is not found.")
            alias.last_updated = float(epoch_seconds)

    def snapshot(self):
        """Plain-data view for tests: keys and aliases."""
        with self.lock:
            self.purge_deleted()
            keys = [{"id": k.id, "arn": k.arn, "spec": k.spec, "state": k.state,
                     "description": k.description, "creation_date": k.creation_date,
                     "deletion_date": k.deletion_date, "tags": dict(k.tags),
                     "public_key_sha256": hashlib.sha256(k.public_der).hexdigest()}
                    for k in sorted(self.keys.values(), key=lambda k: k.seq)]
            aliases = [{"name": a.name, "arn": self.alias_arn(a.name), "key_id": a.key_id,
                        "creation_date": a.creation_date, "last_updated": a.last_updated}
                       for a in sorted(self.aliases.values(), key=lambda a: a.name)]
        return {"keys": keys, "aliases": aliases}

    # -- key resolution ---------------------------------------------------
    def purge_deleted(self):
        now = self.clock()
        gone = [k.id for k in self.keys.values()
                if k.state == "PendingDeletion" and k.deletion_date <= now]
        for key_id in gone:
            del self.keys[key_id]
            for name in [a.name for a in self.aliases.values() if a.key_id == key_id]:
                del self.aliases[name]

    def _key_by_id(self, key_id):
        key = self.keys.get(key_id)
        if key is None:
            if UUID_RE.match(key_id):
                raise ApiError("NotFoundException", f"Key '{self.key_arn(key_id)}' does not exist")
            raise ApiError("NotFoundException", f"Invalid keyId '{key_id}'")
        return key

    def _key_by_alias(self, name):
        alias = self.aliases.get(name)
        if alias is None:
            if name in AWS_MANAGED_ALIASES:
                raise ApiError("NotFoundException",
                               f"Alias {self.alias_arn(name)} has no target key (the emulator "
                               "does not create AWS managed keys)")
            raise ApiError("NotFoundException", f"Alias {self.alias_arn(name)} is not found.")
        return self.keys[alias.key_id]

    def resolve(self, key_ref, allow_alias):
        """Key from a key id, key ARN, and (if allow_alias) alias name or ARN."""
        self.purge_deleted()
        resource = key_ref
        arn_prefix = f"arn:aws:kms:{self.region}:{self.account}:"
        if key_ref.startswith("arn:"):
            if not key_ref.startswith(arn_prefix):
                raise ApiError("NotFoundException",
                               f"Invalid arn {key_ref} (the emulator serves region "
                               f"{self.region}, account {self.account})")
            resource = key_ref[len(arn_prefix):]
            if resource.startswith("key/"):
                return self._key_by_id(resource[len("key/"):])
            if not resource.startswith("alias/"):
                raise ApiError("NotFoundException", f"Invalid arn {key_ref}")
        if resource.startswith("alias/"):
            if not allow_alias:
                raise ApiError("NotFoundException",
                               f"Invalid keyId '{key_ref}': this operation takes a key ID or "
                               "key ARN, not an alias")
            return self._key_by_alias(resource)
        return self._key_by_id(resource)

    def _usable_key(self, key_ref):
        """Resolved key that can sign or give its public key now."""
        key = self.resolve(key_ref, allow_alias=True)
        if key.state == "Disabled":
            raise ApiError("DisabledException", f"{key.arn} is disabled.")
        if key.state == "PendingDeletion":
            raise ApiError("KMSInvalidStateException", f"{key.arn} is pending deletion.")
        return key

    def _not_pending(self, key):
        if key.state == "PendingDeletion":
            raise ApiError("KMSInvalidStateException", f"{key.arn} is pending deletion.")

    # -- metadata ---------------------------------------------------------
    def metadata(self, key):
        meta = {
            "AWSAccountId": self.account, "KeyId": key.id, "Arn": key.arn,
            "CreationDate": key.creation_date, "Enabled": key.state == "Enabled",
            "Description": key.description, "KeyUsage": "SIGN_VERIFY", "KeyState": key.state,
            "Origin": "AWS_KMS", "KeyManager": "CUSTOMER", "CustomerMasterKeySpec": key.spec,
            "KeySpec": key.spec, "SigningAlgorithms": list(SIGNING_ALGORITHMS[key.spec]),
            "MultiRegion": False,
        }
        if key.deletion_date is not None:
            meta["DeletionDate"] = key.deletion_date
        return meta

    # -- operations (params validated against the model) -------------------
    def op_CreateKey(self, params):
        spec = self._requested_spec(params)
        if "Policy" in params:
            _check_policy(params["Policy"])
        tags = _tags_from_list(params.get("Tags", []))
        key = self.create_key(spec, params.get("Description", ""), tags=tags)
        with self.lock:
            key.policy = params.get("Policy")
        self.on_change()
        return {"KeyMetadata": self.metadata(key)}

    @staticmethod
    def _requested_spec(params):
        if "KeySpec" in params and "CustomerMasterKeySpec" in params:
            raise ApiError("ValidationException",
                           "You cannot specify KeySpec and CustomerMasterKeySpec in the same "
                           "request. CustomerMasterKeySpec is deprecated.")
        spec = params.get("KeySpec", params.get("CustomerMasterKeySpec", "SYMMETRIC_DEFAULT"))
        usage = params.get("KeyUsage", "ENCRYPT_DECRYPT")
        if spec.startswith("ECC_") and usage != "SIGN_VERIFY":
            raise ApiError("ValidationException",
                           f"KeyUsage {usage} is not compatible with KeySpec {spec}")
        if spec not in SIGNING_ALGORITHMS or usage != "SIGN_VERIFY":
            raise ApiError("UnsupportedOperationException",
                           f"The KMS emulator does not emulate KeySpec {spec} with KeyUsage "
                           f"{usage}; it emulates SIGN_VERIFY keys of spec "
                           + ", ".join(SIGNING_ALGORITHMS))
        if params.get("Origin", "AWS_KMS") != "AWS_KMS" or params.get("MultiRegion"):
            raise ApiError("UnsupportedOperationException",
                           "The KMS emulator emulates only single-Region AWS_KMS keys")
        return spec

    def op_DescribeKey(self, params):
        with self.lock:
            return {"KeyMetadata": self.metadata(self.resolve(params["KeyId"], True))}

    def op_GetPublicKey(self, params):
        with self.lock:
            key = self._usable_key(params["KeyId"])
            return {"KeyId": key.arn, "PublicKey": base64.b64encode(key.public_der).decode(),
                    "CustomerMasterKeySpec": key.spec, "KeySpec": key.spec,
                    "KeyUsage": "SIGN_VERIFY",
                    "SigningAlgorithms": list(SIGNING_ALGORITHMS[key.spec])}

    def _signing_input(self, params):
        with self.lock:
            key = self._usable_key(params["KeyId"])
        algorithm = params["SigningAlgorithm"]
        if algorithm not in SIGNING_ALGORITHMS[key.spec]:
            raise ApiError("InvalidKeyUsageException",
                           f"Signing algorithm {algorithm} is not supported for {key.arn} "
                           f"(KeySpec {key.spec}).")
        message = params["Message"]
        message_type = params.get("MessageType", "RAW")
        if message_type == "DIGEST":
            digest_size = HASHES[algorithm[-3:]].digest_size
            if len(message) != digest_size:
                raise ApiError("ValidationException",
                               f"Digest is invalid length for algorithm {algorithm}.")
        return key, algorithm, message, message_type

    def op_Sign(self, params):
        key, algorithm, message, message_type = self._signing_input(params)
        signature = sign_bytes(key.private_key, algorithm, message, message_type)
        return {"KeyId": key.arn, "Signature": base64.b64encode(signature).decode(),
                "SigningAlgorithm": algorithm}

    def op_Verify(self, params):
        key, algorithm, message, message_type = self._signing_input(params)
        if not verify_bytes(key.private_key.public_key(), algorithm, message, message_type,
                            params["Signature"]):
            raise ApiError("KMSInvalidSignatureException",
                           "The signature verification failed.")
        return {"KeyId": key.arn, "SignatureValid": True, "SigningAlgorithm": algorithm}

    def _check_alias_name(self, name):
        if not name.startswith("alias/"):
            raise ApiError("ValidationException",
                           'Alias must start with the prefix "alias/". Please see '
                           "https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html")
        if name.startswith("alias/aws/"):
            raise ApiError("NotAuthorizedException",
                           f"{name}: the alias/aws/ prefix is reserved for AWS managed keys.")
        if ":" in name:
            raise ApiError("ValidationException",
                           f"{name} contains invalid characters for an alias")

    def _target_key(self, target):
        if target.startswith("alias/") or target.startswith(
                f"arn:aws:kms:{self.region}:{self.account}:alias/"):
            raise ApiError("ValidationException", "Aliases must refer to keys. Not aliases")
        key = self.resolve(target, allow_alias=False)
        self._not_pending(key)
        return key

    def op_CreateAlias(self, params):
        name = params["AliasName"]
        self._check_alias_name(name)
        with self.lock:
            key = self._target_key(params["TargetKeyId"])
            if name in self.aliases:
                raise ApiError("AlreadyExistsException",
                               f"An alias with the name {self.alias_arn(name)} already exists")
            self.aliases[name] = Alias(name, key.id, self.clock())
        self.on_change()
        return None

    def op_UpdateAlias(self, params):
        name = params["AliasName"]
        self._check_alias_name(name)
        with self.lock:
            self.purge_deleted()
            alias = self.aliases.get(name)
            if alias is None:
                raise ApiError("NotFoundException", f"Alias {self.alias_arn(name)} is not found.")
            # AWS requires the new target to have the current one's key usage and
            # type; every emulated key is an asymmetric SIGN_VERIFY key, so it does.
            key = self._target_key(params["TargetKeyId"])
            alias.key_id = key.id
            alias.last_updated = self.clock()
        self.on_change()
        return None

    def op_DeleteAlias(self, params):
        name = params["AliasName"]
        self._check_alias_name(name)
        with self.lock:
            self.purge_deleted()
            if name not in self.aliases:
                raise ApiError("NotFoundException", f"Alias {self.alias_arn(name)} is not found.")
            del self.aliases[name]
        self.on_change()
        return None

    def op_ListAliases(self, params):
        with self.lock:
            self.purge_deleted()
            if "KeyId" in params:
                key = self.resolve(params["KeyId"], allow_alias=False)
                names = sorted(a.name for a in self.aliases.values() if a.key_id == key.id)
            else:
                names = sorted(set(self.aliases) | set(AWS_MANAGED_ALIASES))
            start = 0
            if "Marker" in params:
                after = _decode_marker(params["Marker"])
                if not isinstance(after, str):
                    raise ApiError("InvalidMarkerException", "Invalid marker")
                start = next((i for i, n in enumerate(names) if n >= after), len(names))
            page, truncated, marker = _page(names, start, params.get("Limit", 50),
                                            _encode_marker)
            answer = {"Aliases": [self._alias_entry(n) for n in page], "Truncated": truncated}
        if truncated:
            answer["NextMarker"] = marker
        return answer

    def _alias_entry(self, name):
        entry = {"AliasName": name, "AliasArn": self.alias_arn(name)}
        alias = self.aliases.get(name)
        if alias is not None:
            entry.update({"TargetKeyId": alias.key_id, "CreationDate": alias.creation_date,
                          "LastUpdatedDate": alias.last_updated})
        return entry

    def op_ListKeys(self, params):
        with self.lock:
            self.purge_deleted()
            keys = sorted(self.keys.values(), key=lambda k: k.seq)
            start = 0
            if "Marker" in params:
                after = _decode_marker(params["Marker"])
                if not isinstance(after, int):
                    raise ApiError("InvalidMarkerException", "Invalid marker")
                start = next((i for i, k in enumerate(keys) if k.seq >= after), len(keys))
            page, truncated, marker = _page(keys, start, params.get("Limit", 100),
                                            lambda k: _encode_marker(k.seq))
        answer = {"Keys": [{"KeyId": k.id, "KeyArn": k.arn} for k in page],
                  "Truncated": truncated}
        if truncated:
            answer["NextMarker"] = marker
        return answer

    def op_ScheduleKeyDeletion(self, params):
        days = params.get("PendingWindowInDays", 30)
        if not 7 <= days <= 30:
            raise ApiError("ValidationException",
                           f"PendingWindowInDays {days} is out of range: it must be between "
                           "7 and 30")
        with self.lock:
            key = self.resolve(params["KeyId"], allow_alias=False)
            self._not_pending(key)
            key.state = "PendingDeletion"
            key.deletion_date = self.clock() + days * DAY
        self.on_change()
        return {"KeyId": key.arn, "DeletionDate": key.deletion_date,
                "KeyState": "PendingDeletion", "PendingWindowInDays": days}

    def op_CancelKeyDeletion(self, params):
        with self.lock:
            key = self.resolve(params["KeyId"], allow_alias=False)
            if key.state != "PendingDeletion":
                raise ApiError("KMSInvalidStateException", f"{key.arn} is not pending deletion.")
            key.state = "Disabled"
            key.deletion_date = None
        self.on_change()
        return {"KeyId": key.arn}

    def op_DisableKey(self, params):
        with self.lock:
            key = self.resolve(params["KeyId"], allow_alias=False)
            self._not_pending(key)
            key.state = "Disabled"
        self.on_change()
        return None

    def op_EnableKey(self, params):
        with self.lock:
            key = self.resolve(params["KeyId"], allow_alias=False)
            self._not_pending(key)
            key.state = "Enabled"
        self.on_change()
        return None

    def op_TagResource(self, params):
        tags = _tags_from_list(params["Tags"])
        with self.lock:
            key = self.resolve(params["KeyId"], allow_alias=False)
            self._not_pending(key)  # KMS's key-state table: X for PendingDeletion
            key.tags.update(tags)
            key.ever_tagged = True
        self.on_change()
        return None

    def op_UntagResource(self, params):
        with self.lock:
            key = self.resolve(params["KeyId"], allow_alias=False)
            self._not_pending(key)  # KMS's key-state table: X for PendingDeletion
            for name in params["TagKeys"]:
                key.tags.pop(name, None)  # a tag the key does not carry is no error
        self.on_change()
        return None

    def op_ListResourceTags(self, params):  # allowed in every key state, as in KMS
        with self.lock:
            key = self.resolve(params["KeyId"], allow_alias=False)
            names = sorted(key.tags)
            start = 0
            if "Marker" in params:
                after = _decode_marker(params["Marker"])
                if not isinstance(after, str):
                    raise ApiError("InvalidMarkerException", "Invalid marker")
                start = next((i for i, n in enumerate(names) if n >= after), len(names))
            page, truncated, marker = _page(names, start, params.get("Limit", 50),
                                            _encode_marker)
            answer = {"Tags": [{"TagKey": n, "TagValue": key.tags[n]} for n in page],
                      "Truncated": truncated}
        if truncated:
            answer["NextMarker"] = marker
        return answer

    # -- persistence --------------------------------------------------------
    def to_dict(self):
        with self.lock:
            keys = []
            for key in sorted(self.keys.values(), key=lambda k: k.seq):
                pem = key.private_key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption()).decode()
                keys.append({"id": key.id, "spec": key.spec, "pem": pem,
                             "description": key.description,
                             "creation_date": key.creation_date, "state": key.state,
                             "deletion_date": key.deletion_date, "tags": key.tags,
                             "ever_tagged": key.ever_tagged, "policy": key.policy})
            aliases = [{"name": a.name, "key_id": a.key_id, "creation_date": a.creation_date,
                        "last_updated": a.last_updated} for a in self.aliases.values()]
        return {"keys": keys, "aliases": aliases}

    def load_dict(self, data):
        with self.lock:
            for item in data.get("keys", []):
                private_key = serialization.load_pem_private_key(item["pem"].encode(), None)
                key = self.create_key(item["spec"], item["description"], item["creation_date"],
                                      key_id=item["id"], private_key=private_key)
                key.state = item["state"]
                key.deletion_date = item["deletion_date"]
                key.tags = dict(item["tags"])
                key.ever_tagged = item.get("ever_tagged", bool(key.tags))
                key.policy = item.get("policy")
            for item in data.get("aliases", []):
                alias = Alias(item["name"], item["key_id"], item["creation_date"])
                alias.last_updated = item["last_updated"]
                self.aliases[alias.name] = alias


def _check_policy(policy):
    try:
        document = json.loads(policy)
    except ValueError:
        raise ApiError("MalformedPolicyDocumentException",
                       "The key policy is not a valid JSON document.") from None
    if not isinstance(document, dict):
        raise ApiError("MalformedPolicyDocumentException",
                       "The key policy must be a JSON object.")


def _tags_from_list(tags):
    result = {}
    for tag in tags:
        if tag["TagKey"].startswith("aws:"):
            raise ApiError("TagException", "Tag keys starting with 'aws:' are reserved.")
        result[tag["TagKey"]] = tag["TagValue"]
    return result
