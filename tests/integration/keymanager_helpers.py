"""Helpers for the KeyManager integration tests (tests/integration/test_keymanager_*.py):
plugin configuration against the emulator, signature checks with
python3-cryptography, and waiting on a condition with a deadline."""
import hashlib
import os
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

KEY_TYPES = ("EC_P256", "EC_P384", "RSA_2048", "RSA_4096")
HASHES = {"SHA224": hashes.SHA224, "SHA256": hashes.SHA256, "SHA384": hashes.SHA384,
          "SHA512": hashes.SHA512, "SHA3_224": hashes.SHA3_224, "SHA3_256": hashes.SHA3_256,
          "SHA3_384": hashes.SHA3_384, "SHA3_512": hashes.SHA3_512,
          "SHA512_224": hashes.SHA512_224, "SHA512_256": hashes.SHA512_256}
# (key type, signer option) pairs KMS can serve; option is a hash name or ("PSS", hash).
VALID = {
    "EC_P256": ["SHA256"],
    "EC_P384": ["SHA384"],
    "RSA_2048": ["SHA256", "SHA384", "SHA512", ("PSS", "SHA256"), ("PSS", "SHA384"),
                 ("PSS", "SHA512")],
    "RSA_4096": ["SHA256", "SHA384", "SHA512", ("PSS", "SHA256"), ("PSS", "SHA384"),
                 ("PSS", "SHA512")],
}
TRUST_DOMAIN = "example.org"
TD_PREFIX = "alias/SPIRE_SERVER/example_org/"
# SPIRE >= 1.14.3 always generates the A and B slots of its X.509 CA, JWT and
# WIT signing keys (ca_key_type for x509-CA-*, jwt_key_type for the others).
SPIRE_KEY_IDS = ("x509-CA-A", "x509-CA-B", "JWT-Signer-A", "JWT-Signer-B", "WIT-Signer-A",
                 "WIT-Signer-B")


def plugin_env(kms, **extra):
    """The plugin's environment for the emulator: credentials, STS at the
    emulator, a short start-up retry budget, no settle delay before the
    deletion queue's first check (KM_ALIAS_SETTLE_MS: tests that need one set
    it)."""
    env = dict(kms.plugin_env())
    env["AWS_ENDPOINT_URL_STS"] = kms.url
    env["KM_STARTUP_RETRY_MS"] = "10000"
    env["KM_ALIAS_SETTLE_MS"] = "0"
    env.update(extra)
    return env


def hcl(kms, metadata_file, extra=""):
    text = (f'region = "us-east-2"\n\nkey_metadata_file = "{metadata_file}"\n\n'
            f'endpoint = "{kms.url}"')
    return text + ("\n\n" + extra if extra else "")


def start_configured(start_plugin, kms, tmp_path, metadata_name="key_metadata", extra_env=None,
                     extra_hcl=""):
    """A started, initialised, configured plugin and its metadata file path."""
    metadata = str(tmp_path / metadata_name)
    host = start_plugin(extra_env=plugin_env(kms, **(extra_env or {})), cwd=str(tmp_path))
    host.init()
    host.configure(hcl(kms, metadata, extra_hcl))
    return host, metadata


def digest_of(option, message=b"the data SPIRE signs"):
    name = option[1] if isinstance(option, tuple) else option
    hash_class = HASHES[name]
    h = hashes.Hash(hash_class())
    h.update(message)
    return h.finalize(), hash_class


def sign(host, key_id, option, data=None, salt_length=-1):
    digest, _ = digest_of(option)
    data = digest if data is None else data
    if isinstance(option, tuple):
        return host.sign_data(key_id, data, pss=(salt_length, option[1]))
    return host.sign_data(key_id, data, hash_algorithm=option)


def verify(pkix, signature, option, message=b"the data SPIRE signs"):
    """Raises cryptography.exceptions.InvalidSignature when it does not verify."""
    digest, hash_class = digest_of(option, message)
    key = serialization.load_der_public_key(pkix)
    prehashed = utils.Prehashed(hash_class())
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, digest, ec.ECDSA(prehashed))
    elif isinstance(option, tuple):
        key.verify(signature, digest,
                   padding.PSS(mgf=padding.MGF1(hash_class()),
                               salt_length=hash_class.digest_size), prehashed)
    else:
        key.verify(signature, digest, padding.PKCS1v15(), prehashed)


def check_public_key(public_key, key_id, key_type):
    """pkix parses, matches the type; fingerprint is SHA-256 hex of pkix."""
    assert public_key.id == key_id
    assert public_key.fingerprint == hashlib.sha256(public_key.pkix_data).hexdigest()
    key = serialization.load_der_public_key(public_key.pkix_data)
    if key_type.startswith("EC"):
        assert isinstance(key, ec.EllipticCurvePublicKey)
        assert key.curve.key_size == int(key_type[-3:])
    else:
        assert isinstance(key, rsa.RSAPublicKey)
        assert key.key_size == int(key_type[-4:])


def wait_until(predicate, timeout=10.0, what="condition"):
    """Polls predicate until it returns a true value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def key_state(kms, key_ref):
    """The emulator's state of a key given by id or ARN."""
    key_id = key_ref.rsplit("/", 1)[-1]
    for key in kms.state()["keys"]:
        if key["id"] == key_id:
            return key["state"]
    return None


def our_aliases(kms, server_id):
    prefix = f"{TD_PREFIX}{server_id}/"
    return {a["name"][len(prefix):]: a["key_id"] for a in kms.state()["aliases"]
            if a["name"].startswith(prefix)}


def read_server_id(metadata):
    with open(metadata, encoding="utf-8") as f:
        return f.read().strip()


def file_mode(path):
    return os.stat(path).st_mode & 0o777
