"""Rotation under load: SignData calls running while GenerateKey rotates the
same key id never fail, and each signature verifies with the key whose
fingerprint the response names; concurrent GenerateKey calls for one id
serialise (one alias, every replaced key queued for deletion); a replica
sharing the server id follows a rotation made by the other."""
import threading

from spire.plugin.server.keymanager.v1 import keymanager_pb2

from keymanager_helpers import (digest_of, key_state, our_aliases, plugin_env, read_server_id,
                                sign, start_configured, verify, wait_until)


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
