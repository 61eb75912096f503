"""Tag-based key discovery at Configure, through the real binary against the
emulator (issue 11): the tags new keys carry; switching alias mode -> tag mode
(migration tagging) and back; a key found by its tags whose alias was deleted
(the alias restored); a migration whose tagging fails (not fatal); AccessDenied
on GetResources (FAILED_PRECONDITION naming tag:GetResources); a second key
tagged active for a SPIRE key id (retired); trust domains matched exactly;
key_tags capped at 45 in tag mode."""
import time

import grpc
import pytest

from keymanager_helpers import check_public_key, key_state, sign, verify, wait_until
from tag_mode_helpers import (SIX_KEYS, Server, active_keys, alias_target, aliases,
                              configured_record, messages, mode_hcl, pend, tagged_key, tags)


def rpc_error(call):
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def generate_six(host):
    return {key_id: host.generate_key(key_id, "EC_P256") for key_id in SIX_KEYS}


def test_new_keys_carry_spire_tags_with_the_operators(start_plugin, kms, tmp_path):
    server = Server(start_plugin, kms, tmp_path).configure(
        extra='key_tags {\n  team = "pki"\n  env = "prod"\n}')
    before = time.time()
    public_key = server.host.generate_key("x509-CA-A", "EC_P256")
    check_public_key(public_key, "x509-CA-A", "EC_P256")
    key_id = alias_target(kms, server.alias("x509-CA-A"))
    key_tags = tags(kms, key_id)
    assert {k: v for k, v in key_tags.items() if k != "spire-last-update"} == {
        "spire-server-td": "example.org", "spire-server-id": server.server_id,
        "spire-active": "true", "spire-key-id": "x509-CA-A", "team": "pki", "env": "prod"}
    assert int(before) - 1 <= int(key_tags["spire-last-update"]) <= time.time() + 1
    record = configured_record(server.host)
    assert record["key_discovery"] == "tags and aliases"


def test_switch_alias_mode_to_tag_mode_and_back(start_plugin, kms, tmp_path):
    server = Server(start_plugin, kms, tmp_path).configure(tag_mode=False)
    generated = generate_six(server.host)
    targets = {key_id: alias_target(kms, server.alias(key_id)) for key_id in SIX_KEYS}
    for key_id in targets.values():
        assert tags(kms, key_id) == {}  # alias mode writes no spire-* tags
    assert kms.calls("GetResources") == 0

    # alias -> tag mode (reconfigure): every aliased key is tagged (migration)
    kms.reset_calls()
    server.configure(tag_mode=True)
    assert kms.calls("GetResources") == 1
    assert kms.calls("TagResource") == 6
    for spire_id, key_id in targets.items():
        assert tags(kms, key_id)["spire-key-id"] == spire_id
        assert tags(kms, key_id)["spire-active"] == "true"
        assert tags(kms, key_id)["spire-server-id"] == server.server_id
    assert {k.id: k for k in server.host.get_public_keys()} == generated

    # a restart in tag mode: found by tags and alias; nothing to migrate
    server.host.close()
    restarted = Server(start_plugin, kms, tmp_path)
    kms.reset_calls()
    restarted.configure(tag_mode=True)
    assert kms.calls("TagResource") == 0 and kms.calls("CreateAlias") == 0
    # found twice (tags and alias), described once
    assert kms.calls("DescribeKey") == 6 and kms.calls("GetPublicKey") == 6
    assert {k.id: k for k in restarted.host.get_public_keys()} == generated
    response = sign(restarted.host, "x509-CA-A", "SHA256")
    verify(generated["x509-CA-A"].pkix_data, response.signature, "SHA256")

    # rotation in tag mode, then back to alias mode: the same keys, no GetResources
    rotated = restarted.host.generate_key("JWT-Signer-A", "EC_P256")
    wait_until(lambda: key_state(kms, targets["JWT-Signer-A"]) == "PendingDeletion",
               what="the rotated-out key deleted")
    assert tags(kms, targets["JWT-Signer-A"])["spire-active"] == "false"
    kms.reset_calls()
    restarted.configure(tag_mode=False)
    assert kms.calls("GetResources") == 0
    assert kms.calls("ListResourceTags") == 6  # which of our keys carry spire-* tags
    listed = {k.id: k for k in restarted.host.get_public_keys()}
    assert listed["JWT-Signer-A"] == rotated
    assert {k: v for k, v in listed.items() if k != "JWT-Signer-A"} == {
        k: v for k, v in generated.items() if k != "JWT-Signer-A"}


def test_a_key_whose_alias_was_deleted_is_found_by_its_tags(start_plugin, kms, kms_client,
                                                           tmp_path):
    server = Server(start_plugin, kms, tmp_path).configure()
    generated = generate_six(server.host)
    name = server.alias("WIT-Signer-B")
    key_id = alias_target(kms, name)
    server.host.close()
    kms_client.delete_alias(AliasName=name)

    restarted = Server(start_plugin, kms, tmp_path).configure()
    assert restarted.host.get_public_key("WIT-Signer-B") == generated["WIT-Signer-B"]
    response = sign(restarted.host, "WIT-Signer-B", "SHA256")
    verify(generated["WIT-Signer-B"].pkix_data, response.signature, "SHA256")
    # the alias is restored on the same key, so alias-mode peers see it live
    assert alias_target(kms, name) == key_id
    assert "Restored the alias of a key found by its tags" in messages(restarted.host)
    # and a rotation works (UpdateAlias on the restored alias)
    rotated = restarted.host.generate_key("WIT-Signer-B", "EC_P256")
    assert rotated != generated["WIT-Signer-B"]
    wait_until(lambda: key_state(kms, key_id) == "PendingDeletion", what="old key deleted")


def test_a_tagged_key_whose_alias_targets_a_pending_key_gets_the_alias(start_plugin, kms,
                                                                      tmp_path):
    """Our alias targets a key pending deletion; a usable key tagged for the same
    SPIRE key id exists: it is used and the alias re-pointed at it."""
    server = Server(start_plugin, kms, tmp_path).configure()
    server_id = server.server_id
    server.host.close()
    doomed = kms.create_key("ECC_NIST_P256", "SPIRE_SERVER_KEY/example_org/x509-CA-A")
    kms.create_alias(server.alias("x509-CA-A"), doomed)
    pend(kms, doomed)
    tagged = tagged_key(kms, server_id, "x509-CA-A", age_s=3600)

    restarted = Server(start_plugin, kms, tmp_path).configure()
    assert restarted.host.get_public_key("x509-CA-A").pkix_data == kms.store.keys[tagged].public_der
    assert alias_target(kms, server.alias("x509-CA-A")) == tagged


def test_migration_tagging_failure_is_logged_not_fatal(start_plugin, kms, tmp_path):
    server = Server(start_plugin, kms, tmp_path).configure(tag_mode=False)
    generated = generate_six(server.host)
    kms.inject("TagResource", "access_denied", count=100)
    server.configure(tag_mode=True)
    assert {k.id: k for k in server.host.get_public_keys()} == generated
    warnings = [r for r in server.host.log_records() if isinstance(r, dict)
                and r.get("@message", "").startswith("Could not tag a key found by its alias")]
    assert len(warnings) == 6 and warnings[0]["error_code"] == "AccessDeniedException"
    kms.clear_faults()
    # the next Configure migrates them
    server.configure(tag_mode=True)
    for key_id in SIX_KEYS:
        assert tags(kms, alias_target(kms, server.alias(key_id)))["spire-active"] == "true"


def test_access_denied_on_get_resources_fails_configure(start_plugin, kms, tmp_path):
    server = Server(start_plugin, kms, tmp_path)
    kms.inject("GetResources", "access_denied", count=5)
    error = rpc_error(lambda: server.configure())
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert '"tag:GetResources" permission' in error.details()
    assert "identity-based IAM policy" in error.details()
    assert "enable_tag_based_key_discovery" in error.details()
    assert "AccessDeniedException" in error.details()
    assert kms.calls("GetResources") == 1  # not retried: a permission, not an outage
    kms.clear_faults()
    server.configure()
    assert server.host.get_public_keys() == []


def test_get_resources_outage_is_retried_at_configure(start_plugin, kms, tmp_path):
    server = Server(start_plugin, kms, tmp_path)
    kms.inject("GetResources", "503", count=3)  # one whole call (3 attempts) fails
    server.configure()
    assert kms.calls("GetResources") == 4


def test_a_second_active_key_for_a_key_id_is_retired(start_plugin, kms, tmp_path):
    """Upstream's failed GenerateKey leaves a second key tagged active with the
    same spire-key-id; our alias decides, the other is tagged inactive and
    deleted. Without an alias, the newest tagged key is used."""
    server = Server(start_plugin, kms, tmp_path).configure()
    kept = server.host.generate_key("x509-CA-A", "EC_P256")
    kept_id = alias_target(kms, server.alias("x509-CA-A"))
    server_id = server.server_id
    leftover = tagged_key(kms, server_id, "x509-CA-A", age_s=60, created_age_s=60)
    old = tagged_key(kms, server_id, "JWT-Signer-A", age_s=7200, created_age_s=7200)
    new = tagged_key(kms, server_id, "JWT-Signer-A", age_s=3600, created_age_s=3600)
    server.host.close()

    restarted = Server(start_plugin, kms, tmp_path).configure()
    assert restarted.host.get_public_key("x509-CA-A") == kept
    assert (restarted.host.get_public_key("JWT-Signer-A").pkix_data
            == kms.store.keys[new].public_der)
    assert alias_target(kms, server.alias("JWT-Signer-A")) == new
    for retired in (leftover, old):
        wait_until(lambda r=retired: key_state(kms, r) == "PendingDeletion",
                   what="second active key deleted")
        assert tags(kms, retired)["spire-active"] == "false"
    assert active_keys(kms, server_id, "x509-CA-A") == [kept_id]
    assert active_keys(kms, server_id, "JWT-Signer-A") == [new]


def test_discovery_matches_trust_domain_and_server_exactly(start_plugin, kms, tmp_path):
    server = Server(start_plugin, kms, tmp_path).configure()
    server_id = server.server_id
    server.host.close()
    for trust_domain in ("example.org2", "example.org.uk", "org"):
        tagged_key(kms, server_id, "x509-CA-A", age_s=60, trust_domain=trust_domain)
    tagged_key(kms, server_id + "0", "x509-CA-A", age_s=60)
    tagged_key(kms, server_id, "x509-CA-B", age_s=60, active="false")
    pending = tagged_key(kms, server_id, "x509-CA-B", age_s=60)
    pend(kms, pending)  # upstream's rotated-out key keeps spire-active=true

    restarted = Server(start_plugin, kms, tmp_path).configure()
    assert restarted.host.get_public_keys() == []
    assert kms.calls("CreateAlias") == 0


def test_key_tags_capped_at_45_in_tag_mode(start_plugin, kms, tmp_path):
    server = Server(start_plugin, kms, tmp_path)
    body = "key_tags {\n" + "".join(f'  t{i} = "v"\n' for i in range(46)) + "}"
    valid, notes = server.host.validate(mode_hcl(kms, server.metadata, True, extra=body))
    assert not valid
    assert any("at most 45 tags are allowed with enable_tag_based_key_discovery = true, "
               "found 46" in note for note in notes)
    assert server.host.validate(mode_hcl(kms, server.metadata, False, extra=body))[0]
    # 45 operator tags + 5 spire-* tags: exactly the 50 AWS allows per key
    body = "key_tags {\n" + "".join(f'  t{i} = "v"\n' for i in range(45)) + "}"
    server.configure(extra=body)
    server.host.generate_key("x509-CA-A", "EC_P256")
    assert len(tags(kms, alias_target(kms, server.alias("x509-CA-A")))) == 50
    assert len(aliases(kms)) == 1
