"""Rotation under load: SignData calls running while GenerateKey rotates the
same key id never fail, and each signature verifies with the key whose
fingerprint the response names; concurrent GenerateKey calls for one id
serialise (one alias, every replaced key queued for deletion); a replica
sharing the server id follows a rotation made by the other, whatever the new
key's type, and says why whenever it cannot."""
import threading

from spire.plugin.server.keymanager.v1 import keymanager_pb2

from keymanager_helpers import (check_public_key, digest_of, key_state, our_aliases, plugin_env,
                                read_server_id, sign, start_configured, verify, wait_until)


def test_rotation_under_concurrent_sign(start_plugin, kms, tmp_path):
    host, _ = start_configured(start_plugin, kms, tmp_path)
    keys = {}
    first = host.generate_key("x509-CA-A", "EC_P256")
    keys[first.fingerprint] = first
    digest, _ = digest_of("SHA256")
    stop = threading.Event()
    results = []
    errors = []

    def signer():
        while not stop.is_set():
            futures = [host.call_future("SignData",
                                        host.sign_request("x509-CA-A", digest, "SHA256"))
                       for _ in range(4)]
            for future in futures:
                try:
                    results.append(future.result())
                except Exception as error:  # noqa: BLE001 (collected and asserted below)
                    errors.append(error)

    threads = [threading.Thread(target=signer) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(5):
            wait_until(lambda n=len(results): len(results) >= n + 8, what="signatures in flight")
            latest = host.generate_key("x509-CA-A", "EC_P256")
            keys[latest.fingerprint] = latest
        wait_until(lambda n=len(results): len(results) >= n + 8, what="signatures after rotation")
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert errors == []
    used = set()
    for response in results:
        verify(keys[response.key_fingerprint].pkix_data, response.signature, "SHA256")
        used.add(response.key_fingerprint)
    assert len(used) >= 2
    assert host.get_public_key("x509-CA-A") == latest


def test_concurrent_generate_for_one_id_serialises(start_plugin, kms, tmp_path):
    host, metadata = start_configured(start_plugin, kms, tmp_path)
    host.generate_key("x509-CA-A", "EC_P256")
    futures = [host.call_future("GenerateKey", host_request("x509-CA-A")) for _ in range(6)]
    answers = [future.result().public_key for future in futures]
    assert len({key.fingerprint for key in answers}) == 6
    current = host.get_public_key("x509-CA-A")
    assert current in answers
    server_id = read_server_id(metadata)
    live = our_aliases(kms, server_id)["x509-CA-A"]
    others = [k["id"] for k in kms.state()["keys"] if k["id"] != live]
    assert len(others) == 6
    for key_id in others:
        wait_until(lambda k=key_id: key_state(kms, k) == "PendingDeletion", what="replaced keys")
    assert key_state(kms, live) == "Enabled"


def host_request(key_id):
    return keymanager_pb2.GenerateKeyRequest(key_id=key_id, key_type=keymanager_pb2.EC_P256)


def test_replica_sharing_server_id_follows_rotation(start_plugin, kms, tmp_path):
    """Two servers with one key_identifier_value (HA replicas): when one
    rotates, the other's alias refresh sees the alias moved and follows it."""
    text = (f'region = "us-east-2"\n\nkey_identifier_value = "replicated"\n\n'
            f'endpoint = "{kms.url}"\n\nrefresh_aliases_interval = "1s"')
    first = start_plugin(extra_env=plugin_env(kms), cwd=str(tmp_path))
    first.init()
    first.configure(text)
    old = first.generate_key("x509-CA-A", "EC_P256")
    second = start_plugin(extra_env=plugin_env(kms), cwd=str(tmp_path))
    second.init()
    second.configure(text)
    assert second.get_public_key("x509-CA-A") == old
    new = first.generate_key("x509-CA-A", "EC_P256")
    wait_until(lambda: second.get_public_key("x509-CA-A") == new, timeout=15,
               what="the replica to follow the rotation")
    response = sign(second, "x509-CA-A", "SHA256")
    assert response.key_fingerprint == new.fingerprint
    verify(new.pkix_data, response.signature, "SHA256")


def test_replica_follows_a_rotation_that_changed_the_key_type(start_plugin, kms, tmp_path):
    """SPIRE changes ca_key_type during a rolling restart: one replica rotates
    x509-CA-A from ec-p256 to ec-p384. The other follows the alias whatever the
    new key's type, and signs with it (before issue 10 it logged an empty error
    and kept signing with the old key, which its peer then deleted)."""
    text = (f'region = "us-east-2"\n\nkey_identifier_value = "replicated"\n\n'
            f'endpoint = "{kms.url}"\n\nrefresh_aliases_interval = "1s"\n\nlog_level = "debug"')
    first = start_plugin(extra_env=plugin_env(kms), cwd=str(tmp_path))
    first.init()
    first.configure(text)
    old = first.generate_key("x509-CA-A", "EC_P256")
    second = start_plugin(extra_env=plugin_env(kms), cwd=str(tmp_path))
    second.init()
    second.configure(text)
    assert second.get_public_key("x509-CA-A") == old

    new = first.generate_key("x509-CA-A", "EC_P384")
    wait_until(lambda: second.get_public_key("x509-CA-A") == new, timeout=15,
               what="the replica to follow the rotation to another key type")
    check_public_key(second.get_public_key("x509-CA-A"), "x509-CA-A", "EC_P384")
    response = sign(second, "x509-CA-A", "SHA384")
    assert response.key_fingerprint == new.fingerprint
    verify(new.pkix_data, response.signature, "SHA384")
    followed = [r for r in second.log_records() if isinstance(r, dict)
                and r.get("@message") == "Following our alias to the key it now targets"]
    assert followed and followed[-1]["key_type"] == "EC_P384"
    assert followed[-1]["previous_key_type"] == "EC_P256"


def test_a_replica_that_cannot_follow_says_why(start_plugin, kms, kms_client, tmp_path):
    """The alias now targets a key the replica cannot use (disabled): the
    replica keeps its key and logs the reason, never an empty error."""
    text = (f'region = "us-east-2"\n\nkey_identifier_value = "replicated"\n\n'
            f'endpoint = "{kms.url}"\n\nrefresh_aliases_interval = "1s"')
    host = start_plugin(extra_env=plugin_env(kms), cwd=str(tmp_path))
    host.init()
    host.configure(text)
    old = host.generate_key("x509-CA-A", "EC_P256")
    other = kms.create_key("ECC_NIST_P384", "SPIRE_SERVER_KEY/example_org/x509-CA-A")
    kms_client.update_alias(AliasName="alias/SPIRE_SERVER/example_org/replicated/x509-CA-A",
                            TargetKeyId=other)
    kms.disable_key(other)

    def reasons():
        return [r.get("reason") for r in host.log_records() if isinstance(r, dict)
                and r.get("@message") == "Could not follow our alias to its new key"]
    wait_until(reasons, timeout=15, what="the replica to say why it cannot follow")
    assert reasons()[0] == "the key is Disabled"
    assert host.get_public_key("x509-CA-A") == old


def test_replica_absorbs_a_rotation_when_it_signs(start_plugin, kms, tmp_path):
    """The replica's next alias refresh is hours away when the other replica
    rotates and deletes the old key: its next SignData finds the old key
    pending deletion, follows the alias at once and signs with the new key."""
    text = (f'region = "us-east-2"\n\nkey_identifier_value = "replicated"\n\n'
            f'endpoint = "{kms.url}"\n\nrefresh_aliases_interval = "42h"')
    first = start_plugin(extra_env=plugin_env(kms), cwd=str(tmp_path))
    first.init()
    first.configure(text)
    first.generate_key("x509-CA-A", "EC_P256")
    old_key = our_aliases(kms, "replicated")["x509-CA-A"]
    second = start_plugin(extra_env=plugin_env(kms), cwd=str(tmp_path))
    second.init()
    second.configure(text)

    new = first.generate_key("x509-CA-A", "RSA_2048")
    wait_until(lambda: key_state(kms, old_key) == "PendingDeletion", what="the old key deleted")
    response = sign(second, "x509-CA-A", "SHA256")
    assert response.key_fingerprint == new.fingerprint
    verify(new.pkix_data, response.signature, "SHA256")
    assert second.get_public_key("x509-CA-A") == new
