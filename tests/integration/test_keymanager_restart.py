"""Server identity and key loading across restarts: the metadata file
(created 0600 with a UUID, corrupt -> Configure fails naming the character
and the file stays, a FIFO or directory there -> a clear error, never a hang,
servers starting together on one new file agree on one id),
restart keeps keys, a lost file gives a new server id and new keys, a
disabled key behind our alias is skipped (not fatal) and re-pointed by the
next GenerateKey, reconfigure keeps keys, other servers' aliases are ignored."""
import os
import re
import threading
import uuid

import grpc
import pytest

from keymanager_helpers import (file_mode, hcl, key_state, our_aliases, plugin_env,
                                read_server_id, sign, start_configured, verify, wait_until)

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_metadata_file_created_0600_with_uuid(start_plugin, kms, tmp_path):
    _, metadata = start_configured(start_plugin, kms, tmp_path)
    assert UUID_RE.match(read_server_id(metadata))
    assert file_mode(metadata) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["key_metadata"]


def test_relative_metadata_path_resolves_against_working_dir(start_plugin, kms, tmp_path):
    host = start_plugin(extra_env=plugin_env(kms), cwd=str(tmp_path))
    host.init()
    host.configure(hcl(kms, "./rel_metadata"))
    assert UUID_RE.match(read_server_id(tmp_path / "rel_metadata"))


@pytest.mark.parametrize("content", ["garbage\n", "", "0f8fad5b-d9cb-469f-a165-70867728950"])
def test_corrupt_metadata_file_fails_configure_and_is_kept(start_plugin, kms, tmp_path, content):
    metadata = tmp_path / "key_metadata"
    metadata.write_text(content)
    host = start_plugin(extra_env=plugin_env(kms), cwd=str(tmp_path))
    host.init()
    with pytest.raises(grpc.RpcError) as caught:
        host.configure(hcl(kms, str(metadata)))
    assert str(metadata) in caught.value.details()
    assert "UUID" in caught.value.details()
    assert metadata.read_text() == content
    assert host.health() == 1  # still serving


def test_metadata_file_naming_a_server_path_is_refused_with_the_character(start_plugin, kms,
                                                                        tmp_path):
    metadata = tmp_path / "key_metadata"
    metadata.write_text("prod/server-1\n")
    host = start_plugin(extra_env=plugin_env(kms), cwd=str(tmp_path))
    host.init()
    with pytest.raises(grpc.RpcError) as caught:
        host.configure(hcl(kms, str(metadata)))
    assert caught.value.details() == (
        f"server id file {metadata} does not hold a UUID: character 'p' at position 1 is not a "
        "hexadecimal digit or '-' (fix or remove it; removing it gives this server a new id and "
        "new keys)")


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_metadata_path_that_is_not_a_regular_file_is_an_error(start_plugin, kms, tmp_path, kind):
    """A FIFO nobody writes to would block a plain open/read forever."""
    metadata = tmp_path / "key_metadata"
    if kind == "fifo":
        os.mkfifo(metadata, 0o600)
    else:
        metadata.mkdir()
    host = start_plugin(extra_env=plugin_env(kms), cwd=str(tmp_path))
    host.init()
    with pytest.raises(grpc.RpcError) as caught:
        host.configure(hcl(kms, str(metadata)), timeout=20)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    what = "a FIFO" if kind == "fifo" else "a directory"
    assert caught.value.details() == f"server id file {metadata} is {what}, not a regular file"
    assert host.health() == 1  # still serving


def test_servers_starting_together_agree_on_one_id(start_plugin, kms, tmp_path):
    """Two plugin processes configured at once on one new metadata file: one
    creates it, the other reads the winner's id; both then manage the same
    alias."""
    metadata = str(tmp_path / "key_metadata")
    hosts = [start_plugin(extra_env=plugin_env(kms), cwd=str(tmp_path)) for _ in range(4)]
    for host in hosts:
        host.init()
    start = threading.Barrier(len(hosts))
    errors = []

    def configure(host):
        start.wait()
        try:
            host.configure(hcl(kms, metadata))
        except grpc.RpcError as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=configure, args=(host,)) for host in hosts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    server_id = read_server_id(metadata)
    assert UUID_RE.match(server_id)
    assert sorted(os.listdir(tmp_path)) == ["key_metadata"]
    for host in hosts:
        configured = wait_until(lambda h=host: [r for r in h.log_records() if isinstance(r, dict)
                                                and r.get("@message") == "Configured"],
                                what="the Configured log line")
        assert [r["server_id"] for r in configured] == [server_id]
    key = hosts[0].generate_key("x509-CA-A", "EC_P256")
    for host in hosts[1:]:
        host.configure(hcl(kms, metadata))  # reloads: the same server id, the same alias
        assert host.get_public_key("x509-CA-A") == key


def test_restart_with_same_metadata_keeps_keys(start_plugin, kms, tmp_path):
    host, metadata = start_configured(start_plugin, kms, tmp_path)
    keys = {key_id: host.generate_key(key_id, key_type)
            for key_id, key_type in (("x509-CA-A", "EC_P256"), ("JWT-Signer-A", "RSA_2048"),
                                     ("a.b+c", "EC_P384"))}
    host.close()
    kms.reset_calls()
    again, _ = start_configured(start_plugin, kms, tmp_path)
    assert {key.id: key for key in again.get_public_keys()} == keys
    assert kms.calls("CreateKey") == 0
    response = sign(again, "JWT-Signer-A", "SHA256")
    assert response.key_fingerprint == keys["JWT-Signer-A"].fingerprint
    verify(keys["JWT-Signer-A"].pkix_data, response.signature, "SHA256")


def test_reconfigure_same_settings_keeps_keys(start_plugin, kms, tmp_path):
    host, metadata = start_configured(start_plugin, kms, tmp_path)
    key = host.generate_key("x509-CA-A", "EC_P256")
    host.configure(hcl(kms, metadata))
    assert host.get_public_keys() == [key]
    assert sign(host, "x509-CA-A", "SHA256").key_fingerprint == key.fingerprint


def test_lost_metadata_file_gives_new_server_id_and_keys(start_plugin, kms, tmp_path):
    host, metadata = start_configured(start_plugin, kms, tmp_path)
    old_id = read_server_id(metadata)
    old = host.generate_key("x509-CA-A", "EC_P256")
    host.close()
    os.unlink(metadata)
    again, _ = start_configured(start_plugin, kms, tmp_path)
    new_id = read_server_id(metadata)
    assert new_id != old_id
    assert again.get_public_keys() == []
    fresh = again.generate_key("x509-CA-A", "EC_P256")
    assert set(our_aliases(kms, new_id)) == {"x509-CA-A"}
    assert set(our_aliases(kms, old_id)) == {"x509-CA-A"}  # the old server's alias is untouched
    assert fresh.pkix_data != old.pkix_data


def test_key_identifier_value_names_the_server(start_plugin, kms, tmp_path):
    host = start_plugin(extra_env=plugin_env(kms), cwd=str(tmp_path))
    host.init()
    host.configure(f'region = "us-east-2"\n\nkey_identifier_value = "fixed-server"\n\n'
                   f'endpoint = "{kms.url}"')
    host.generate_key("x509-CA-A", "EC_P256")
    assert set(our_aliases(kms, "fixed-server")) == {"x509-CA-A"}
    assert os.listdir(tmp_path) == []


def test_disabled_key_is_skipped_then_replaced(start_plugin, kms, tmp_path):
    host, metadata = start_configured(start_plugin, kms, tmp_path)
    host.generate_key("x509-CA-A", "EC_P256")
    jwt = host.generate_key("JWT-Signer-A", "RSA_2048")
    server_id = read_server_id(metadata)
    disabled = our_aliases(kms, server_id)["x509-CA-A"]
    kms.disable_key(disabled)
    host.close()

    again, _ = start_configured(start_plugin, kms, tmp_path)
    assert [key.id for key in again.get_public_keys()] == ["JWT-Signer-A"]
    assert again.get_public_key("JWT-Signer-A") == jwt
    warnings = [r for r in again.log_records() if isinstance(r, dict)
                and r.get("@level") == "warn" and r.get("alias_name", "").endswith("/x509-CA-A")]
    assert warnings
    kms.reset_calls()
    fresh = again.generate_key("x509-CA-A", "EC_P256")
    assert kms.calls("UpdateAlias") == 1 and kms.calls("CreateAlias") == 0
    assert our_aliases(kms, server_id)["x509-CA-A"] != disabled
    assert again.get_public_key("x509-CA-A") == fresh
    assert key_state(kms, disabled) == "Disabled"  # not ours to delete


def test_other_servers_and_trust_domains_are_ignored(start_plugin, kms, tmp_path):
    other_key = kms.create_key("ECC_NIST_P256", "SPIRE_SERVER_KEY/example_org/x509-CA-A")
    other_server = str(uuid.uuid4())
    kms.create_alias(f"alias/SPIRE_SERVER/example_org/{other_server}/x509-CA-A", other_key)
    kms.create_alias("alias/SPIRE_SERVER/example_org_other/x/x509-CA-A", other_key)
    host, metadata = start_configured(start_plugin, kms, tmp_path)
    assert host.get_public_keys() == []
    # The same key also under our own prefix is picked up (ids decoded).
    kms.create_alias(f"alias/SPIRE_SERVER/example_org/{read_server_id(metadata)}/a_2eb", other_key)
    host.configure(hcl(kms, metadata))
    assert [key.id for key in host.get_public_keys()] == ["a.b"]


def test_many_aliases_over_several_pages(start_plugin, kms, tmp_path):
    server_id = str(uuid.uuid4())
    (tmp_path / "key_metadata").write_text(server_id)
    key = kms.create_key("ECC_NIST_P256", "")
    for i in range(130):
        kms.create_alias(f"alias/SPIRE_SERVER/example_org/{server_id}/k{i:03d}", key)
    host, _ = start_configured(start_plugin, kms, tmp_path)
    assert len(host.get_public_keys()) == 130
    assert kms.calls("ListAliases") >= 2
