"""Integration tests of the C tagging client (src/aws/tagging.h) and KMS's
UntagResource / ListResourceTags through tests/tools/aws_probe against the
emulator, which verifies SigV4 (service "tagging") and validates every
GetResources request against botocore's resourcegroupstaggingapi model:
filters and paging as AWS documents them, the endpoint rules, retries and
faults, and KMS's key-state rules on keys pending deletion."""
import pytest

from aws_probe_helpers import probe, probe_binary  # noqa: F401 (pytest fixtures)

TD = "example.org"


def tagging_env(kms):
    return {"AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API": kms.url}


def spire_key(kms, server_id, trust_domain=TD, active="true", **extra):
    """A key tagged as tag mode tags them; returns its ARN."""
    tags = {"spire-server-td": trust_domain, "spire-server-id": server_id,
            "spire-active": active, **extra}
    key_id = kms.create_key("ECC_NIST_P256", tags=tags)
    return f"arn:aws:kms:{kms.region}:{kms.account}:key/{key_id}"


def resources(probe, kms, *filters, options=(), **kwargs):
    return probe.ok("get-resources", *filters, env=tagging_env(kms),
                    options=["--resource-type", "kms:key", *options], **kwargs)


def test_filters_select_exactly_our_keys(probe, kms):
    ours = spire_key(kms, "s1", **{"spire-key-id": "x509-CA-A"})
    peer = spire_key(kms, "s2")
    spire_key(kms, "s1", active="false")
    spire_key(kms, "s1", trust_domain="example.org2")
    spire_key(kms, "s1", trust_domain="example.org.uk")
    kms.create_key("ECC_NIST_P256")  # never tagged
    result = resources(probe, kms, f"spire-server-td={TD}", "spire-server-id=s1",
                       "spire-active=true")
    assert [r["arn"] for r in result["resources"]] == [ours]
    assert result["resources"][0]["tags"] == {"spire-server-td": TD, "spire-server-id": "s1",
                                              "spire-active": "true",
                                              "spire-key-id": "x509-CA-A"}
    assert result["next_token"] == "" and result["pages"] == 1
    either = resources(probe, kms, f"spire-server-td={TD}", "spire-server-id=s1,s2",
                       "spire-active")
    assert len(either["resources"]) == 3 and peer in [r["arn"] for r in either["resources"]]
    assert kms.calls("GetResources") == 2


def test_paging_with_resources_per_page(probe, kms):
    arns = [spire_key(kms, f"s{i}") for i in range(5)]
    first = resources(probe, kms, f"spire-server-td={TD}", options=["--per-page", "2"])
    assert [r["arn"] for r in first["resources"]] == arns[:2] and first["next_token"]
    rest = resources(probe, kms, f"spire-server-td={TD}",
                     options=["--per-page", "2", "--token", first["next_token"], "--all"])
    assert [r["arn"] for r in rest["resources"]] == arns[2:]
    assert rest["pages"] == 2 and rest["next_token"] == ""
    assert kms.calls("GetResources") == 3


def test_expired_token_is_a_client_error_not_retried(probe, kms):
    for i in range(3):
        spire_key(kms, f"s{i}")
    token = resources(probe, kms, options=["--per-page", "1"])["next_token"]
    kms.advance_clock(16 * 60)
    kms.reset_calls()
    out = probe.error("get-resources", env=tagging_env(kms),
                      options=["--resource-type", "kms:key", "--per-page", "1", "--token", token])
    assert out["error"]["code"] == "PaginationTokenExpiredException"
    assert out["error"]["status"] == "ClientError" and out["error"]["attempts"] == 1
    assert kms.calls("GetResources") == 1


def test_access_denied_names_the_permission(probe, kms):
    kms.inject("GetResources", "access_denied")
    out = probe.error("get-resources", env=tagging_env(kms))
    assert out["error"]["status"] == "AccessDenied"
    assert out["error"]["code"] == "AccessDeniedException"
    assert "tag:GetResources" in out["error"]["message"] and out["error"]["attempts"] == 1


@pytest.mark.parametrize("fault", ["throttle", "500", "503", "drop", "lost", "lost_503"])
def test_transient_faults_are_retried(probe, kms, fault):
    key = spire_key(kms, "s1")
    kms.inject("GetResources", fault, count=2)
    out = probe.run("get-resources", env=tagging_env(kms))
    assert out["ok"] and out["attempts"] == 3, out
    assert [r["arn"] for r in out["result"]["resources"]] == [key]
    assert kms.calls("GetResources") == 3


def test_throttling_drains_the_bucket_kms_calls_share(probe, kms):
    """max_attempts bounds GetResources like KMS calls (AWS_MAX_ATTEMPTS here)."""
    kms.inject("GetResources", "throttle", count=5)
    out = probe.error("get-resources", env=dict(tagging_env(kms), AWS_MAX_ATTEMPTS="2"))
    assert out["error"]["status"] == "Throttled" and out["error"]["attempts"] == 2
    assert kms.calls("GetResources") == 2


def test_endpoint_rules(probe, kms):
    info = probe.ok("client-info")
    assert info["kms_endpoint"] == kms.url
    assert info["tagging_endpoint"] == "https://tagging.us-east-2.amazonaws.com"
    assert info["sts_endpoint"] == "https://sts.us-east-2.amazonaws.com"
    generic = probe.ok("client-info", env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert generic["tagging_endpoint"] == "http://127.0.0.1:9"
    assert generic["kms_endpoint"] == kms.url  # the configured KMS endpoint wins
    fips = probe.ok("client-info", endpoint=False, region="cn-north-1",
                    env={"AWS_USE_FIPS_ENDPOINT": "true"})
    assert fips["tagging_endpoint"] == "https://tagging-fips.cn-north-1.amazonaws.com.cn"
    assert fips["kms_endpoint"] == "https://kms-fips.cn-north-1.amazonaws.com.cn"
    # AWS_ENDPOINT_URL alone reaches the emulator for both services
    spire_key(kms, "s1")
    out = probe.ok("get-resources", endpoint=False, env={"AWS_ENDPOINT_URL": kms.url})
    assert len(out["resources"]) == 1
    assert kms.calls("GetResources") == 1


def test_untag_and_list_tags(probe, kms):
    key = spire_key(kms, "s1", **{"spire-last-update": "100"})
    probe.ok("untag-resource", key, "spire-last-update", "not-there")
    tags = probe.ok("list-resource-tags", key, options=["--limit", "2", "--all"])
    assert tags["tags"] == {"spire-server-td": TD, "spire-server-id": "s1",
                            "spire-active": "true"}
    assert tags["pages"] == 2 and kms.calls("ListResourceTags") == 2


def test_key_pending_deletion_refuses_tag_changes_but_lists_them(probe, kms):
    key = spire_key(kms, "s2")
    probe.ok("schedule-key-deletion", key, 7)
    for op, args in (("tag-resource", ["spire-active", "false"]),
                     ("untag-resource", ["spire-active"])):
        out = probe.error(op, key, *args)
        assert out["error"]["status"] == "InvalidState"
        assert out["error"]["code"] == "KMSInvalidStateException"
        assert out["error"]["attempts"] == 1
    assert probe.ok("list-resource-tags", key)["tags"]["spire-active"] == "true"
    still = resources(probe, kms, "spire-active=true")
    assert [r["arn"] for r in still["resources"]] == [key]
