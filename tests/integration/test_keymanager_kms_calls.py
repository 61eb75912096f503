"""Exact KMS calls per KeyManager RPC, counted by the emulator: GenerateKey is
CreateKey + GetPublicKey + CreateAlias; rotation is CreateKey + GetPublicKey
+ UpdateAlias, then the queue's ListAliases (KMS must show no alias targets
the old key) and ScheduleKeyDeletion of the old key; SignData
is one Sign (MessageType DIGEST); GetPublicKey(s) make no call."""
from keymanager_helpers import (key_state, our_aliases, read_server_id, sign, start_configured,
                                wait_until)

KMS_OPS = ("CreateKey", "GetPublicKey", "CreateAlias", "UpdateAlias", "Sign", "DescribeKey",
           "ListAliases", "ScheduleKeyDeletion", "DeleteAlias", "ListKeys", "GetCallerIdentity")


def kms_calls(kms):
    calls = kms.calls()
    return {op: calls[op] for op in KMS_OPS if calls.get(op)}


def test_calls_per_rpc(start_plugin, kms, tmp_path):
    host, metadata = start_configured(start_plugin, kms, tmp_path,
                                      extra_hcl='refresh_aliases_interval = "42h"\n\n'
                                                'dispose_aliases_interval = "1000h"\n\n'
                                                'dispose_keys_interval = "1000h"')
    server_id = read_server_id(metadata)
    kms.reset_calls()

    first = host.generate_key("x509-CA-A", "EC_P256")
    # The first GenerateKey also asks STS once who we are (for the key policy).
    assert kms_calls(kms) == {"CreateKey": 1, "GetPublicKey": 1, "CreateAlias": 1,
                              "GetCallerIdentity": 1}
    kms.reset_calls()

    host.generate_key("JWT-Signer-A", "RSA_2048")
    assert kms_calls(kms) == {"CreateKey": 1, "GetPublicKey": 1, "CreateAlias": 1}
    kms.reset_calls()

    response = sign(host, "x509-CA-A", "SHA256")
    assert response.key_fingerprint == first.fingerprint
    assert kms_calls(kms) == {"Sign": 1}
    kms.reset_calls()

    host.get_public_key("x509-CA-A")
    host.get_public_keys()
    assert kms_calls(kms) == {}

    old_key = our_aliases(kms, server_id)["x509-CA-A"]
    second = host.generate_key("x509-CA-A", "EC_P256")
    assert second.fingerprint != first.fingerprint
    wait_until(lambda: key_state(kms, old_key) == "PendingDeletion", what="old key deletion")
    assert kms_calls(kms) == {"CreateKey": 1, "GetPublicKey": 1, "UpdateAlias": 1,
                              "ListAliases": 1, "ScheduleKeyDeletion": 1}
    new_key = our_aliases(kms, server_id)["x509-CA-A"]
    assert new_key != old_key and key_state(kms, new_key) == "Enabled"


def test_keys_carry_upstream_description_and_configured_tags(start_plugin, kms, tmp_path):
    host, metadata = start_configured(start_plugin, kms, tmp_path,
                                      extra_hcl='key_tags {\n  team = "identity"\n}')
    host.generate_key("x509-CA-A", "EC_P256")
    key_id = our_aliases(kms, read_server_id(metadata))["x509-CA-A"]
    key = next(k for k in kms.state()["keys"] if k["id"] == key_id)
    assert key["description"] == "SPIRE_SERVER_KEY/example_org/x509-CA-A"
    assert key["tags"] in ({"team": "identity"}, [{"TagKey": "team", "TagValue": "identity"}])


ROLE_POLICY = """
{
	"Version": "2012-10-17",
	"Statement": [
		{
			"Sid": "Allow full access to the SPIRE Server role",
			"Effect": "Allow",
			"Principal": {
				"AWS": "arn:aws:iam::111122223333:role/spire-server"
			},
			"Action": "kms:*",
			"Resource": "*"
		},
		{
			"Sid": "Allow KMS console to display the key and policy",
			"Effect": "Allow",
			"Principal": {
			    "AWS": "arn:aws:iam::111122223333:root"
			},
			"Action": [
				"kms:Describe*",
				"kms:List*",
				"kms:Get*"
			],
			"Resource": "*"
		}
	]
}"""


def key_policy(kms, metadata, key_id):
    kms_key_id = our_aliases(kms, read_server_id(metadata))[key_id]
    return kms.store.keys[kms_key_id].policy


def test_assumed_role_gets_upstream_default_policy(start_plugin, kms, tmp_path):
    issued = kms.credentials.issue_temporary(3600, "spire-server", "i-0001")
    env = {"AWS_ACCESS_KEY_ID": issued["AccessKeyId"],
           "AWS_SECRET_ACCESS_KEY": issued["SecretAccessKey"],
           "AWS_SESSION_TOKEN": issued["SessionToken"]}
    host, metadata = start_configured(start_plugin, kms, tmp_path, extra_env=env)
    host.generate_key("x509-CA-A", "EC_P256")
    host.generate_key("JWT-Signer-A", "EC_P256")
    assert key_policy(kms, metadata, "x509-CA-A") == ROLE_POLICY
    assert key_policy(kms, metadata, "JWT-Signer-A") == ROLE_POLICY
    assert kms.calls("GetCallerIdentity") == 1


def test_plain_user_gets_kms_default_policy(start_plugin, kms, tmp_path):
    host, metadata = start_configured(start_plugin, kms, tmp_path)
    host.generate_key("x509-CA-A", "EC_P256")
    assert key_policy(kms, metadata, "x509-CA-A") is None


def test_key_policy_file_is_used_verbatim(start_plugin, kms, tmp_path):
    policy = '{"Version": "2012-10-17", "Statement": []}\n'
    (tmp_path / "policy.json").write_text(policy)
    host, metadata = start_configured(start_plugin, kms, tmp_path,
                                      extra_hcl=f'key_policy_file = "{tmp_path}/policy.json"')
    host.generate_key("x509-CA-A", "EC_P256")
    assert key_policy(kms, metadata, "x509-CA-A") == policy
    assert kms.calls("GetCallerIdentity") == 0
