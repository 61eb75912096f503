"""SPIRE's KeyManager conformance checks through the real plugin binary and
the KMS emulator, in both key discovery modes (aliases; tags, with
enable_tag_based_key_discovery): GenerateKey / GetPublicKey(s) / SignData for
all four key types, the six key ids a current SPIRE server uses, every valid
and invalid signing combination, exact error texts."""
import grpc
import pytest

from keymanager_helpers import (HASHES, KEY_TYPES, SPIRE_KEY_IDS, VALID, check_public_key, sign,
                                start_configured, verify)

MODES = {"aliases": "", "tags": "enable_tag_based_key_discovery = true"}


@pytest.fixture(params=sorted(MODES))
def plugin(request, start_plugin, kms, tmp_path):
    env = {"AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API": kms.url}
    host, _ = start_configured(start_plugin, kms, tmp_path, extra_env=env,
                               extra_hcl=MODES[request.param])
    return host


def rpc_error(call):
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def test_generate_key_requires_id_and_type(plugin):
    error = rpc_error(lambda: plugin.generate_key("", "EC_P256"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "key id is required" in error.details()
    error = rpc_error(lambda: plugin.generate_key("x509-CA-A", 0))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "key type is required" in error.details()
    error = rpc_error(lambda: plugin.generate_key("x509-CA-A", 42))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("key_id", ["has space", "x_2ey", "a//b", "k" * 200])
def test_generate_key_refuses_ids_kms_cannot_name(plugin, key_id):
    error = rpc_error(lambda: plugin.generate_key(key_id, "EC_P256"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details()


def test_generate_each_key_type_and_get_public_keys(plugin):
    generated = {}
    for index, key_type in enumerate(KEY_TYPES):
        key_id = f"key-{index}.{key_type}+x"
        public_key = plugin.generate_key(key_id, key_type)
        check_public_key(public_key, key_id, key_type)
        assert plugin.get_public_key(key_id) == public_key
        generated[key_id] = public_key
    listed = {key.id: key for key in plugin.get_public_keys()}
    assert listed == generated


def test_generate_key_replaces_existing_key(plugin):
    first = plugin.generate_key("x509-CA-A", "EC_P256")
    second = plugin.generate_key("x509-CA-A", "EC_P384")
    check_public_key(second, "x509-CA-A", "EC_P384")
    assert second.pkix_data != first.pkix_data
    assert plugin.get_public_key("x509-CA-A") == second
    assert [key.id for key in plugin.get_public_keys()] == ["x509-CA-A"]
    response = sign(plugin, "x509-CA-A", "SHA384")
    assert response.key_fingerprint == second.fingerprint
    verify(second.pkix_data, response.signature, "SHA384")


def test_the_six_keys_of_a_current_spire_server(plugin):
    """SPIRE >= 1.14.3 generates x509-CA-A/B, JWT-Signer-A/B and WIT-Signer-A/B
    (X.509 CA keys RSA here, signing keys EC: ca_key_type and jwt_key_type differ)."""
    types = {key_id: "RSA_2048" if key_id.startswith("x509") else "EC_P256"
             for key_id in SPIRE_KEY_IDS}
    generated = {key_id: plugin.generate_key(key_id, types[key_id]) for key_id in SPIRE_KEY_IDS}
    for key_id, public_key in generated.items():
        check_public_key(public_key, key_id, types[key_id])
        response = sign(plugin, key_id, "SHA256")
        assert response.key_fingerprint == public_key.fingerprint
        verify(public_key.pkix_data, response.signature, "SHA256")
    assert {key.id: key for key in plugin.get_public_keys()} == generated
    # SPIRE prepares the next key in the other slot, then activates it
    rotated = plugin.generate_key("WIT-Signer-B", "EC_P256")
    assert rotated.pkix_data != generated["WIT-Signer-B"].pkix_data
    assert plugin.get_public_key("WIT-Signer-A") == generated["WIT-Signer-A"]


def test_get_public_key_errors_exact_texts(plugin):
    error = rpc_error(lambda: plugin.get_public_key(""))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "key id is required"
    error = rpc_error(lambda: plugin.get_public_key("nope"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == 'key "nope" not found'
    assert plugin.get_public_keys() == []


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_sign_every_combination(plugin, key_type):
    public_key = plugin.generate_key("signer", key_type)
    options = list(HASHES) + [("PSS", name) for name in HASHES]
    for option in options:
        if option in VALID[key_type]:
            response = sign(plugin, "signer", option)
            assert response.key_fingerprint == public_key.fingerprint
            verify(public_key.pkix_data, response.signature, option)
        else:
            error = rpc_error(lambda opt=option: sign(plugin, "signer", opt))
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, option
            hash_name = option[1] if isinstance(option, tuple) else option
            assert key_type in error.details() and hash_name in error.details()


@pytest.mark.parametrize("salt_length", [-1, 0, 32])
def test_pss_salt_lengths_accepted(plugin, salt_length):
    public_key = plugin.generate_key("jwt", "RSA_2048")
    response = sign(plugin, "jwt", ("PSS", "SHA256"), salt_length=salt_length)
    verify(public_key.pkix_data, response.signature, ("PSS", "SHA256"))


@pytest.mark.parametrize("salt_length", [-2, 1, 20, 64])
def test_pss_other_salt_lengths_refused(plugin, salt_length):
    plugin.generate_key("jwt", "RSA_2048")
    error = rpc_error(lambda: sign(plugin, "jwt", ("PSS", "SHA256"), salt_length=salt_length))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "salt" in error.details()


def test_sign_argument_errors(plugin):
    plugin.generate_key("x509-CA-A", "EC_P256")
    error = rpc_error(lambda: plugin.sign_data("", b"\0" * 32, hash_algorithm="SHA256"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "key id is required"
    error = rpc_error(lambda: plugin.sign_data("nope", b"\0" * 32, hash_algorithm="SHA256"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == 'key "nope" not found'
    for data in (b"", b"\0" * 31, b"\0" * 48):
        error = rpc_error(lambda d=data: plugin.sign_data("x509-CA-A", d, hash_algorithm="SHA256"))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "digest" in error.details()
    error = rpc_error(lambda: plugin.sign_data("x509-CA-A", b"\0" * 32))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_calls_before_configure_fail_precondition(start_plugin, kms):
    host = start_plugin(extra_env=kms.plugin_env())
    host.init()
    for call in (lambda: host.generate_key("x509-CA-A", "EC_P256"),
                 lambda: host.get_public_key("x509-CA-A"), host.get_public_keys,
                 lambda: host.sign_data("x509-CA-A", b"\0" * 32, hash_algorithm="SHA256")):
        error = rpc_error(call)
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "not configured" in error.details()
