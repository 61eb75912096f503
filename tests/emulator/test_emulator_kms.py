"""KMS operations of the emulator through boto3: results, AWS error codes,
key states, pagination, and signatures checked with python3-cryptography."""
import base64
import hashlib
import json

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

from emulator.kms_store import RSA_POOL
from emulator.raw_client import raw_kms_call


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def make_key(client, spec="ECC_NIST_P256", **extra):
    return client.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY", **extra)["KeyMetadata"]


def public_key(client, key_id):
    der = client.get_public_key(KeyId=key_id)["PublicKey"]
    return serialization.load_der_public_key(der)


def test_create_key_answers_aws_metadata(kms, kms_client):
    meta = make_key(kms_client, Description="SPIRE_SERVER/example.org",
                    Tags=[{"TagKey": "team", "TagValue": "spire"}])
    key_id = meta["KeyId"]
    assert len(key_id) == 36 and key_id.count("-") == 4
    assert meta["Arn"] == f"arn:aws:kms:us-east-2:111122223333:key/{key_id}"
    assert meta["KeyState"] == "Enabled" and meta["Enabled"] is True
    assert meta["KeySpec"] == "ECC_NIST_P256" and meta["SigningAlgorithms"] == ["ECDSA_SHA_256"]
    assert meta["Description"] == "SPIRE_SERVER/example.org"
    assert abs(meta["CreationDate"].timestamp() - kms.now()) < 5
    tags = kms_client.list_resource_tags(KeyId=key_id)["Tags"]
    assert tags == [{"TagKey": "team", "TagValue": "spire"}]


@pytest.mark.parametrize("spec,algorithms", [
    ("ECC_NIST_P384", ["ECDSA_SHA_384"]),
    ("RSA_2048", ["RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384",
                  "RSASSA_PKCS1_V1_5_SHA_512", "RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384",
                  "RSASSA_PSS_SHA_512"]),
])
def test_create_key_other_specs(kms_client, spec, algorithms):
    meta = make_key(kms_client, spec)
    answer = kms_client.get_public_key(KeyId=meta["KeyId"])
    assert answer["KeySpec"] == spec and answer["SigningAlgorithms"] == algorithms
    assert answer["KeyId"] == meta["Arn"] and answer["KeyUsage"] == "SIGN_VERIFY"


def test_rsa_4096_key_has_4096_bits(kms_client):
    meta = make_key(kms_client, "RSA_4096")
    assert public_key(kms_client, meta["KeyId"]).key_size == 4096


@pytest.mark.parametrize("arguments,code", [
    ({}, "UnsupportedOperationException"),  # SYMMETRIC_DEFAULT is not emulated
    ({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}, "UnsupportedOperationException"),
    ({"KeySpec": "ECC_NIST_P256", "KeyUsage": "ENCRYPT_DECRYPT"}, "ValidationException"),
    ({"KeySpec": "ECC_NIST_P999", "KeyUsage": "SIGN_VERIFY"}, "ValidationException"),
    ({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY", "Policy": "{not json"},
     "MalformedPolicyDocumentException"),
    ({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY",
      "Tags": [{"TagKey": "aws:x", "TagValue": "y"}]}, "TagException"),
])
def test_create_key_rejections(kms_unchecked_client, arguments, code):
    with pytest.raises(ClientError) as excinfo:
        kms_unchecked_client.create_key(**arguments)
    assert error_code(excinfo) == code


def test_create_key_accepts_a_json_policy(kms_client):
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    assert make_key(kms_client, Policy=policy)["KeyState"] == "Enabled"


def test_describe_key_by_every_identifier(kms_client):
    meta = make_key(kms_client)
    kms_client.create_alias(AliasName="alias/test/one", TargetKeyId=meta["KeyId"])
    alias_arn = "arn:aws:kms:us-east-2:111122223333:alias/test/one"
    for ref in (meta["KeyId"], meta["Arn"], "alias/test/one", alias_arn):
        assert kms_client.describe_key(KeyId=ref)["KeyMetadata"]["KeyId"] == meta["KeyId"]


@pytest.mark.parametrize("ref", [
    "11111111-2222-3333-4444-555555555555", "not-a-key", "alias/missing",
    "arn:aws:kms:us-west-1:111122223333:key/11111111-2222-3333-4444-555555555555",
    "alias/aws/ebs",
])
def test_describe_missing_key_is_not_found(kms_client, ref):
    with pytest.raises(ClientError) as excinfo:
        kms_client.describe_key(KeyId=ref)
    assert error_code(excinfo) == "NotFoundException"


def test_ec_signatures_verify_with_cryptography(kms_client):
    for spec, algorithm, hash_class, curve in (
            ("ECC_NIST_P256", "ECDSA_SHA_256", hashes.SHA256, "secp256r1"),
            ("ECC_NIST_P384", "ECDSA_SHA_384", hashes.SHA384, "secp384r1")):
        key_id = make_key(kms_client, spec)["KeyId"]
        pub = public_key(kms_client, key_id)
        assert pub.curve.name == curve
        digest = hashlib.new(hash_class.name, b"svid").digest()
        answer = kms_client.sign(KeyId=key_id, Message=digest, MessageType="DIGEST",
                                 SigningAlgorithm=algorithm)
        assert answer["SigningAlgorithm"] == algorithm
        pub.verify(answer["Signature"], digest, ec.ECDSA(utils.Prehashed(hash_class())))
        raw = kms_client.sign(KeyId=key_id, Message=b"svid", MessageType="RAW",
                              SigningAlgorithm=algorithm)["Signature"]
        pub.verify(raw, b"svid", ec.ECDSA(hash_class()))


@pytest.mark.parametrize("algorithm", ["RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PSS_SHA_256",
                                       "RSASSA_PSS_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512"])
def test_rsa_signatures_verify_with_cryptography(kms_client, algorithm):
    key_id = make_key(kms_client, "RSA_2048")["KeyId"]
    pub = public_key(kms_client, key_id)
    hash_class = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}[algorithm[-3:]]
    digest = hashlib.new(hash_class.name, b"svid").digest()
    signature = kms_client.sign(KeyId=key_id, Message=digest, MessageType="DIGEST",
                                SigningAlgorithm=algorithm)["Signature"]
    if "PSS" in algorithm:
        # KMS uses a salt as long as the digest: verify with exactly that length.
        pad = padding.PSS(mgf=padding.MGF1(hash_class()), salt_length=hash_class.digest_size)
    else:
        pad = padding.PKCS1v15()
    pub.verify(signature, digest, pad, utils.Prehashed(hash_class()))


def test_verify_operation(kms_client):
    key_id = make_key(kms_client)["KeyId"]
    digest = hashlib.sha256(b"x").digest()
    signature = kms_client.sign(KeyId=key_id, Message=digest, MessageType="DIGEST",
                                SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    good = kms_client.verify(KeyId=key_id, Message=digest, MessageType="DIGEST",
                             Signature=signature, SigningAlgorithm="ECDSA_SHA_256")
    assert good["SignatureValid"] is True
    with pytest.raises(ClientError) as excinfo:
        kms_client.verify(KeyId=key_id, Message=hashlib.sha256(b"y").digest(),
                          MessageType="DIGEST", Signature=signature,
                          SigningAlgorithm="ECDSA_SHA_256")
    assert error_code(excinfo) == "KMSInvalidSignatureException"


@pytest.mark.parametrize("message,algorithm,code", [
    (b"\x01" * 31, "ECDSA_SHA_256", "ValidationException"),
    (b"\x01" * 48, "ECDSA_SHA_256", "ValidationException"),
    (b"\x01" * 48, "ECDSA_SHA_384", "InvalidKeyUsageException"),
    (b"\x01" * 32, "RSASSA_PSS_SHA_256", "InvalidKeyUsageException"),
    (b"\x01" * 32, "NOT_AN_ALGORITHM", "ValidationException"),
])
def test_sign_rejections(kms_unchecked_client, message, algorithm, code):
    key_id = make_key(kms_unchecked_client)["KeyId"]
    with pytest.raises(ClientError) as excinfo:
        kms_unchecked_client.sign(KeyId=key_id, Message=message, MessageType="DIGEST",
                        SigningAlgorithm=algorithm)
    assert error_code(excinfo) == code


def test_key_state_machine(kms, kms_client):
    key_id = make_key(kms_client)["KeyId"]
    digest = b"\x02" * 32

    def sign():
        return kms_client.sign(KeyId=key_id, Message=digest, MessageType="DIGEST",
                               SigningAlgorithm="ECDSA_SHA_256")

    kms_client.disable_key(KeyId=key_id)
    for call in (sign, lambda: kms_client.get_public_key(KeyId=key_id)):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_code(excinfo) == "DisabledException"
    kms_client.enable_key(KeyId=key_id)
    sign()
    answer = kms_client.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert answer["KeyState"] == "PendingDeletion" and answer["PendingWindowInDays"] == 7
    assert abs(answer["DeletionDate"].timestamp() - (kms.now() + 7 * 86400)) < 5
    for call in (sign, lambda: kms_client.get_public_key(KeyId=key_id),
                 lambda: kms_client.enable_key(KeyId=key_id),
                 lambda: kms_client.schedule_key_deletion(KeyId=key_id)):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_code(excinfo) == "KMSInvalidStateException"
    assert kms_client.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    kms_client.cancel_key_deletion(KeyId=key_id)
    assert kms_client.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    with pytest.raises(ClientError) as excinfo:
        kms_client.cancel_key_deletion(KeyId=key_id)
    assert error_code(excinfo) == "KMSInvalidStateException"


def test_deletion_happens_when_the_window_ends_on_the_emulator_clock(kms, kms_client):
    key_id = make_key(kms_client)["KeyId"]
    kms_client.create_alias(AliasName="alias/doomed", TargetKeyId=key_id)
    answer = kms_client.schedule_key_deletion(KeyId=key_id)
    assert answer["PendingWindowInDays"] == 30
    kms.advance_clock(29 * 86400)
    assert kms_client.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    kms.advance_clock(2 * 86400)
    with pytest.raises(ClientError) as excinfo:
        kms_client.describe_key(KeyId=key_id)
    assert error_code(excinfo) == "NotFoundException"
    names = [a["AliasName"] for a in kms_client.list_aliases()["Aliases"]]
    assert "alias/doomed" not in names


@pytest.mark.parametrize("days,code", [(6, "ValidationException"), (31, "ValidationException"),
                                       (0, "ValidationException")])
def test_schedule_key_deletion_window_limits(kms_unchecked_client, days, code):
    key_id = make_key(kms_unchecked_client)["KeyId"]
    with pytest.raises(ClientError) as excinfo:
        kms_unchecked_client.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=days)
    assert error_code(excinfo) == code


def test_key_only_operations_refuse_aliases(kms_client):
    key_id = make_key(kms_client)["KeyId"]
    kms_client.create_alias(AliasName="alias/k", TargetKeyId=key_id)
    with pytest.raises(ClientError) as excinfo:
        kms_client.schedule_key_deletion(KeyId="alias/k")
    assert error_code(excinfo) == "NotFoundException"
    with pytest.raises(ClientError) as excinfo:
        kms_client.create_alias(AliasName="alias/k2", TargetKeyId="alias/k")
    assert error_code(excinfo) == "ValidationException"


def test_alias_lifecycle_and_dates(kms, kms_client):
    first = make_key(kms_client)["KeyId"]
    second = make_key(kms_client, "RSA_2048")["KeyId"]
    kms_client.create_alias(AliasName="alias/SPIRE_SERVER/td/id/k", TargetKeyId=first)
    created = kms_client.list_aliases(KeyId=first)["Aliases"]
    assert [a["AliasName"] for a in created] == ["alias/SPIRE_SERVER/td/id/k"]
    assert created[0]["TargetKeyId"] == first
    assert created[0]["AliasArn"] == ("arn:aws:kms:us-east-2:111122223333:"
                                      "alias/SPIRE_SERVER/td/id/k")
    kms.advance_clock(3600)
    kms_client.update_alias(AliasName="alias/SPIRE_SERVER/td/id/k", TargetKeyId=second)
    updated = kms_client.list_aliases(KeyId=second)["Aliases"][0]
    assert updated["LastUpdatedDate"].timestamp() - created[0]["CreationDate"].timestamp() >= 3600
    assert updated["CreationDate"] == created[0]["CreationDate"]
    assert kms_client.list_aliases(KeyId=first)["Aliases"] == []
    kms_client.delete_alias(AliasName="alias/SPIRE_SERVER/td/id/k")
    with pytest.raises(ClientError) as excinfo:
        kms_client.delete_alias(AliasName="alias/SPIRE_SERVER/td/id/k")
    assert error_code(excinfo) == "NotFoundException"


@pytest.mark.parametrize("name,code", [
    ("alias/aws/mine", "NotAuthorizedException"),
    ("noprefix", "ValidationException"),
    ("alias/has space", "ValidationException"),
    ("alias/colon:inside", "ValidationException"),
    ("alias/" + "x" * 251, "ValidationException"),
])
def test_create_alias_name_rules(kms_unchecked_client, name, code):
    key_id = make_key(kms_unchecked_client)["KeyId"]
    with pytest.raises(ClientError) as excinfo:
        kms_unchecked_client.create_alias(AliasName=name, TargetKeyId=key_id)
    assert error_code(excinfo) == code


def test_create_alias_conflicts_and_missing_targets(kms_client):
    key_id = make_key(kms_client)["KeyId"]
    kms_client.create_alias(AliasName="alias/taken", TargetKeyId=key_id)
    cases = [
        (lambda: kms_client.create_alias(AliasName="alias/taken", TargetKeyId=key_id),
         "AlreadyExistsException"),
        (lambda: kms_client.create_alias(AliasName="alias/new",
                                         TargetKeyId="11111111-2222-3333-4444-555555555555"),
         "NotFoundException"),
        (lambda: kms_client.update_alias(AliasName="alias/nope", TargetKeyId=key_id),
         "NotFoundException"),
        (lambda: kms_client.update_alias(AliasName="alias/taken",
                                         TargetKeyId="11111111-2222-3333-4444-555555555555"),
         "NotFoundException"),
        (lambda: kms_client.delete_alias(AliasName="alias/aws/ebs"), "NotAuthorizedException"),
    ]
    for call, code in cases:
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_code(excinfo) == code


def test_alias_to_pending_deletion_key_is_invalid_state(kms_client):
    key_id = make_key(kms_client)["KeyId"]
    kms_client.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    with pytest.raises(ClientError) as excinfo:
        kms_client.create_alias(AliasName="alias/late", TargetKeyId=key_id)
    assert error_code(excinfo) == "KMSInvalidStateException"


def test_list_aliases_pagination_includes_aws_managed(kms, kms_client):
    key_id = make_key(kms_client)["KeyId"]
    mine = [f"alias/p/{i:02d}" for i in range(7)]
    for name in mine:
        kms_client.create_alias(AliasName=name, TargetKeyId=key_id)
    seen, marker, pages = [], None, 0
    while True:
        arguments = {"Limit": 4}
        if marker:
            arguments["Marker"] = marker
        page = kms_client.list_aliases(**arguments)
        pages += 1
        assert len(page["Aliases"]) <= 4
        seen += page["Aliases"]
        if not page["Truncated"]:
            assert "NextMarker" not in page
            break
        marker = page["NextMarker"]
    names = [a["AliasName"] for a in seen]
    assert len(names) == len(set(names)) and pages == (len(names) + 3) // 4
    assert set(mine) <= set(names)
    ebs = next(a for a in seen if a["AliasName"] == "alias/aws/ebs")
    assert "TargetKeyId" not in ebs and ebs["AliasArn"].endswith(":alias/aws/ebs")
    paginated = kms_client.get_paginator("list_aliases").paginate(KeyId=key_id,
                                                                  PaginationConfig={"PageSize": 2})
    assert [a["AliasName"] for page in paginated for a in page["Aliases"]] == mine


def test_list_keys_pagination_and_bad_marker(kms_client):
    created = [make_key(kms_client)["KeyId"] for _ in range(5)]
    first = kms_client.list_keys(Limit=2)
    assert [k["KeyId"] for k in first["Keys"]] == created[:2] and first["Truncated"]
    rest = kms_client.list_keys(Limit=10, Marker=first["NextMarker"])
    assert [k["KeyId"] for k in rest["Keys"]] == created[2:] and not rest["Truncated"]
    assert rest["Keys"][0]["KeyArn"].endswith(created[2])
    with pytest.raises(ClientError) as excinfo:
        kms_client.list_keys(Marker="garbage!")
    assert error_code(excinfo) == "InvalidMarkerException"


def test_tag_resource(kms_client):
    key_id = make_key(kms_client)["KeyId"]
    kms_client.tag_resource(KeyId=key_id, Tags=[{"TagKey": "b", "TagValue": "2"},
                                                {"TagKey": "a", "TagValue": "1"}])
    kms_client.tag_resource(KeyId=key_id, Tags=[{"TagKey": "a", "TagValue": "3"}])
    page = kms_client.list_resource_tags(KeyId=key_id, Limit=1)
    assert page["Tags"] == [{"TagKey": "a", "TagValue": "3"}] and page["Truncated"]
    rest = kms_client.list_resource_tags(KeyId=key_id, Marker=page["NextMarker"])
    assert rest["Tags"] == [{"TagKey": "b", "TagValue": "2"}] and not rest["Truncated"]


def test_rsa_create_key_takes_a_pregenerated_key(kms_client):
    assert RSA_POOL.wait_ready(2048, timeout=60)
    pooled = RSA_POOL.public_moduli(2048)
    key_id = make_key(kms_client, "RSA_2048")["KeyId"]
    assert public_key(kms_client, key_id).public_numbers().n in pooled


def test_blob_must_be_base64(kms, kms_client):
    key_id = make_key(kms_client)["KeyId"]
    status, answer = raw_kms_call(kms, "Sign", {"KeyId": key_id, "Message": "***",
                                                "SigningAlgorithm": "ECDSA_SHA_256"})
    assert status == 400 and answer["__type"] == "SerializationException"
    good = base64.b64encode(b"\x00" * 32).decode()
    status, answer = raw_kms_call(kms, "Sign", {"KeyId": key_id, "Message": good,
                                                "MessageType": "DIGEST",
                                                "SigningAlgorithm": "ECDSA_SHA_256"})
    assert status == 200 and answer["KeyId"].endswith(key_id)
