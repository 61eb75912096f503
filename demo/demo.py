"""The aws_kms KeyManager plugin, end to end, in a few seconds.

Starts the KMS emulator (a separate process on 127.0.0.1) and the plugin the
way SPIRE server does (go-plugin handshake, gRPC over a unix socket), then:
generates the six keys a current SPIRE server (>= 1.14.3) uses in KMS (X.509
CA keys x509-CA-A/B, ec-p256; JWT signing keys JWT-Signer-A/B, rsa-2048; WIT
signing keys WIT-Signer-A/B, ec-p256), self-signs a CA certificate and signs
an X509-SVID through SignData (checked with `openssl verify`), makes and
checks a JWT-SVID (RS256), rotates the CA key, lists the aliases KMS holds,
and shuts down. With --tag-mode the plugin runs with
enable_tag_based_key_discovery = true and the demo shows a key's spire-* tags.

    /usr/bin/python3 demo/demo.py --build-dir build [--tag-mode]
"""
import argparse
import base64
import datetime
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRUST_DOMAIN = "example.org"
REGION = "us-east-2"
# The key ids and types of a current SPIRE server (ca_key_type ec-p256,
# jwt_key_type rsa-2048 here; WIT keys follow jwt_key_type in SPIRE, ec-p256 here
# to show both).
SPIRE_KEYS = (("x509-CA-A", "EC_P256"), ("x509-CA-B", "EC_P256"),
              ("JWT-Signer-A", "RSA_2048"), ("JWT-Signer-B", "RSA_2048"),
              ("WIT-Signer-A", "EC_P256"), ("WIT-Signer-B", "EC_P256"))


def set_up_imports(build_dir):
    for path in (os.path.join(build_dir, "py"), os.path.join(REPO_DIR, "tests")):
        if path not in sys.path:
            sys.path.insert(0, path)


# --- output ------------------------------------------------------------------------

def step(title):
    print(f"\n== {title}")


def say(text):
    print(f"   {text}")


# --- certificates signed through SignData -------------------------------------------

def der_element(data, offset):
    """(start, end) of the DER element at offset (tag, length, contents)."""
    length = data[offset + 1]
    header = 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[offset + 2:offset + 2 + count], "big")
        header += count
    return offset, offset + header + length


def der_header(tag, length):
    if length < 0x80:
        return bytes([tag, length])
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big")


def sign_certificate(builder, sign_digest):
    """The certificate builder describes, signed by a key held in KMS.

    cryptography signs only with keys it holds, so the builder first signs
    with a throwaway key of the same algorithm (ECDSA P-256 with SHA-256). That
    certificate's TBSCertificate and signatureAlgorithm are exactly what the
    real certificate needs: the TBS is hashed and signed through SignData and
    the certificate is reassembled around the KMS signature."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    throwaway = ec.generate_private_key(ec.SECP256R1())
    draft = builder.sign(throwaway, hashes.SHA256())
    der = draft.public_bytes(encoding=_der())
    outer_header = 2 + ((der[1] & 0x7F) if der[1] & 0x80 else 0)
    tbs_start, tbs_end = der_element(der, outer_header)
    alg_start, alg_end = der_element(der, tbs_end)
    tbs = der[tbs_start:tbs_end]
    assert tbs == draft.tbs_certificate_bytes
    signature = sign_digest(hashlib.sha256(tbs).digest())
    bit_string = der_header(0x03, len(signature) + 1) + b"\x00" + signature
    body = tbs + der[alg_start:alg_end] + bit_string
    return x509.load_der_x509_certificate(der_header(0x30, len(body)) + body)


def _der():
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.DER


def ca_builder(ca_public_key, now):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SPIFFE"),
                      x509.NameAttribute(NameOID.SERIAL_NUMBER, "1")])
    return (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(ca_public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(seconds=10))
            .not_valid_after(now + datetime.timedelta(hours=24))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_public_key),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(f"spiffe://{TRUST_DOMAIN}")]), critical=False))


def svid_builder(ca_cert, ca_public_key, workload_public_key, spiffe_id, now):
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                                     x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SPIRE")]))
            .issuer_name(ca_cert.subject)
            .public_key(workload_public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(seconds=10))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=True, data_encipherment=False,
                                         key_agreement=True, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public_key),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(spiffe_id)]), critical=False))


# --- JWT ------------------------------------------------------------------------------

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_jwt(host, key_id, kid, claims):
    header = {"alg": "RS256", "kid": kid, "typ": "JWT"}
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode()))
    digest = hashlib.sha256(signing_input.encode()).digest()
    signature = host.sign_data(key_id, digest, hash_algorithm="SHA256").signature
    return signing_input + "." + b64url(signature)


def check_jwt(token, public_key, audience):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    header_b64, claims_b64, signature_b64 = token.split(".")
    public_key.verify(b64url_decode(signature_b64), f"{header_b64}.{claims_b64}".encode(),
                      padding.PKCS1v15(), hashes.SHA256())
    claims = json.loads(b64url_decode(claims_b64))
    assert audience in claims["aud"] and claims["exp"] > time.time()
    return json.loads(b64url_decode(header_b64)), claims


# --- the demo ---------------------------------------------------------------------------

def run(build_dir, workdir, tag_mode=False):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from emulator.emulator_process import EmulatorProcess
    from pluginhost.host import PluginHost

    binary = os.path.join(build_dir, "spire-aws-kms")
    if not os.access(binary, os.X_OK):
        sys.exit(f"demo: {binary} not found; build first (make build)")

    step("Starting the KMS emulator")
    emulator = EmulatorProcess(region=REGION)
    say(f"KMS (emulated) at {emulator.url}")
    host = None
    try:
        step("Starting the plugin as SPIRE server does")
        env = {"AWS_ACCESS_KEY_ID": "AKIDEMULATOR", "AWS_SECRET_ACCESS_KEY": "emulator-secret",
               "AWS_ENDPOINT_URL_STS": emulator.url,
               "AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API": emulator.url}
        host = PluginHost(binary, extra_env=env, cwd=workdir)
        say(f"handshake: {host.handshake.strip()}")
        say("services: " + ", ".join(host.init()))
        metadata = os.path.join(workdir, "key_metadata")
        hcl = (f'region = "{REGION}"\n\nkey_metadata_file = "{metadata}"\n\n'
               f'endpoint = "{emulator.url}"')
        if tag_mode:
            hcl += "\n\nenable_tag_based_key_discovery = true"
        host.configure(hcl, trust_domain=TRUST_DOMAIN)
        with open(metadata, encoding="utf-8") as f:
            server_id = f.read().strip()
        say(f"configured for trust domain {TRUST_DOMAIN}; server id {server_id} "
            f"(in {metadata}, mode {oct(os.stat(metadata).st_mode & 0o777)}); key discovery "
            f"by {'tags and aliases' if tag_mode else 'aliases'}")

        step("Generating the six keys of a SPIRE server in KMS")
        keys = {key_id: host.generate_key(key_id, key_type) for key_id, key_type in SPIRE_KEYS}
        for key_id, key_type in SPIRE_KEYS:
            key = keys[key_id]
            say(f"{key.id:<13} {key_type:<9} fingerprint {key.fingerprint[:16]}…  "
                f"({len(key.pkix_data)}-byte SubjectPublicKeyInfo)")
        ca_key, jwt_key = keys["x509-CA-A"], keys["JWT-Signer-A"]
        if tag_mode:
            show_tags(emulator, server_id, "x509-CA-A")
        ca_public = serialization.load_der_public_key(ca_key.pkix_data)
        jwt_public = serialization.load_der_public_key(jwt_key.pkix_data)

        def sign_with_ca(digest):
            response = host.sign_data("x509-CA-A", digest, hash_algorithm="SHA256")
            assert response.key_fingerprint == ca_key.fingerprint
            return response.signature

        step("Self-signing the CA certificate through SignData")
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        ca_cert = sign_certificate(ca_builder(ca_public, now), sign_with_ca)
        ca_pem = os.path.join(workdir, "ca.pem")
        with open(ca_pem, "wb") as f:
            f.write(ca_cert.public_bytes(serialization.Encoding.PEM))
        ca_public.verify(ca_cert.signature, ca_cert.tbs_certificate_bytes,
                         ec.ECDSA(ca_cert.signature_hash_algorithm))
        say(f"CA: {ca_cert.subject.rfc4514_string()}  -> {ca_pem}")
        say("self-signature verified with the KMS public key")

        step("Signing an X509-SVID for spiffe://example.org/workload")
        workload_key = ec.generate_private_key(ec.SECP256R1())
        spiffe_id = f"spiffe://{TRUST_DOMAIN}/workload"
        svid = sign_certificate(svid_builder(ca_cert, ca_public, workload_key.public_key(),
                                             spiffe_id, now), sign_with_ca)
        svid_pem = os.path.join(workdir, "svid.pem")
        with open(svid_pem, "wb") as f:
            f.write(svid.public_bytes(serialization.Encoding.PEM))
        verdict = subprocess.run(["openssl", "verify", "-CAfile", ca_pem, svid_pem],
                                 capture_output=True, text=True, check=False)
        say(f"openssl verify -CAfile ca.pem svid.pem: {verdict.stdout.strip() or verdict.stderr}")
        if verdict.returncode != 0:
            raise SystemExit("demo: the X509-SVID did not verify")

        step("Making a JWT-SVID (RS256) through SignData")
        issued = int(time.time())
        claims = {"sub": spiffe_id, "aud": ["demo-audience"], "iat": issued,
                  "exp": issued + 300}
        token = make_jwt(host, "JWT-Signer-A", jwt_key.fingerprint[:32], claims)
        say(f"token: {token[:60]}…")
        header, checked = check_jwt(token, jwt_public, "demo-audience")
        say(f"verified with the JWT key: alg={header['alg']} sub={checked['sub']}")

        step("Rotating the CA key")
        old_fingerprint = ca_key.fingerprint
        ca_key = host.generate_key("x509-CA-A", "EC_P256")
        say(f"x509-CA-A    {old_fingerprint[:16]}…  ->  {ca_key.fingerprint[:16]}…")
        response = host.sign_data("x509-CA-A", hashlib.sha256(b"after rotation").digest(),
                                  hash_algorithm="SHA256")
        say(f"SignData now answers with fingerprint {response.key_fingerprint[:16]}…")

        step("Aliases in KMS (ListAliases)")
        show_aliases(emulator, server_id)

        step("Shutting down")
        host.shutdown()
        code = host.wait(10)
        host.close()
        host = None
        say(f"plugin exited with code {code}")
    finally:
        if host is not None:
            host.close()
        emulator.stop()
    print("\nDemo complete.")


def show_tags(emulator, server_id, key_id):
    alias = f"alias/SPIRE_SERVER/example_org/{server_id}/{key_id}"
    target = next(a["key_id"] for a in emulator.state()["aliases"] if a["name"] == alias)
    tags = next(k["tags"] for k in emulator.state()["keys"] if k["id"] == target)
    say(f"{key_id}'s tags (found by GetResources at the next start):")
    for name in sorted(tags):
        say(f"  {name} = {tags[name]}")


def show_aliases(emulator, server_id):
    import boto3

    client = boto3.client("kms", endpoint_url=emulator.url, region_name=REGION,
                          aws_access_key_id="AKIDEMULATOR",
                          aws_secret_access_key="emulator-secret")
    ours = f"alias/SPIRE_SERVER/example_org/{server_id}/"
    aliases = []
    for page in client.get_paginator("list_aliases").paginate():
        aliases += [a for a in page["Aliases"] if a["AliasName"].startswith("alias/SPIRE_SERVER/")]
    for alias in aliases:
        key = client.describe_key(KeyId=alias["TargetKeyId"])["KeyMetadata"]
        mark = "" if alias["AliasName"].startswith(ours) else "  (another server)"
        say(f"{alias['AliasName']}  ->  {alias['TargetKeyId']} [{key['KeyState']}]{mark}")
    # The rotated-out CA key: queued by the plugin, scheduled for deletion
    # (7-day window) once the settle delay after the rotation has passed.
    targets = {alias["TargetKeyId"] for alias in aliases}
    for key in emulator.state()["keys"]:
        if key["id"] not in targets and key["description"].startswith("SPIRE_SERVER_KEY/"):
            say(f"rotated-out key {key['id']} [{key['state']}]: queued; the plugin schedules its "
                "deletion 5 minutes after the rotation")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default="build")
    parser.add_argument("--tag-mode", action="store_true",
                        help="run with enable_tag_based_key_discovery = true")
    args = parser.parse_args()
    build_dir = os.path.abspath(os.path.join(REPO_DIR, args.build_dir))
    set_up_imports(build_dir)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="spire-aws-kms-demo-") as workdir:
        run(build_dir, workdir, args.tag_mode)
    print(f"({time.monotonic() - started:.1f} s)")


if __name__ == "__main__":
    main()
