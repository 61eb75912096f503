"""The Resource Groups Tagging API of the emulator through boto3's
resourcegroupstaggingapi client: which keys GetResources lists, AWS's tag
filter semantics, resource types, paging and token expiry, parameter and
SigV4 checks, injected faults, and KMS's key-state rules for TagResource,
UntagResource and ListResourceTags on a key pending deletion."""
import json

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from emulator.fixtures import boto3_client
from emulator.kms_emulator import Emulator
from emulator.raw_client import send, sign
from botocore.awsrequest import AWSRequest

TARGET = "ResourceGroupsTaggingAPI_20170126.GetResources"


@pytest.fixture
def tagging(kms):
    return boto3_client("resourcegroupstaggingapi", kms)


@pytest.fixture
def tagging_unchecked(kms):
    return boto3_client("resourcegroupstaggingapi", kms, parameter_validation=False)


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def make_key(kms_client, **tags):
    extra = {"Tags": [{"TagKey": k, "TagValue": v} for k, v in tags.items()]} if tags else {}
    return kms_client.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY",
                                 **extra)["KeyMetadata"]


def listed(tagging, **params):
    """{arn: {tag: value}} over every page."""
    found = {}
    for page in tagging.get_paginator("get_resources").paginate(**params):
        for item in page["ResourceTagMappingList"]:
            found[item["ResourceARN"]] = {t["Key"]: t["Value"] for t in item["Tags"]}
    return found


def td_filters(trust_domain, *more):
    return [{"Key": "spire-server-td", "Values": [trust_domain]}, *more]


# --- which keys ----------------------------------------------------------------------

def test_lists_tagged_keys_with_their_tags(kms_client, tagging):
    a = make_key(kms_client, **{"spire-server-td": "example.org", "spire-active": "true"})
    kms_client.tag_resource(KeyId=a["KeyId"], Tags=[{"TagKey": "team", "TagValue": ""}])
    never_tagged = make_key(kms_client)
    found = listed(tagging, ResourceTypeFilters=["kms:key"])
    assert found == {a["Arn"]: {"spire-server-td": "example.org", "spire-active": "true",
                                "team": ""}}
    assert never_tagged["Arn"] not in found


def test_untagged_key_that_had_tags_is_listed_with_an_empty_set(kms_client, tagging):
    key = make_key(kms_client, team="pki")
    kms_client.untag_resource(KeyId=key["KeyId"], TagKeys=["team", "not-there"])
    assert listed(tagging) == {key["Arn"]: {}}
    assert listed(tagging, TagFilters=[{"Key": "team"}]) == {}


def test_keys_pending_deletion_stay_listed_until_deleted(kms, kms_client, tagging):
    key = make_key(kms_client, **{"spire-active": "true"})
    kms_client.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert key["Arn"] in listed(tagging, TagFilters=[{"Key": "spire-active", "Values": ["true"]}])
    kms.advance_clock(7 * 86400 + 1)
    assert listed(tagging) == {}


def test_control_create_key_with_tags(kms, tagging):
    key_id = kms.create_key("ECC_NIST_P384", tags={"spire-last-update": "1000"})
    [arn] = listed(tagging, TagFilters=[{"Key": "spire-last-update", "Values": ["1000"]}])
    assert arn.endswith(key_id)


# --- filters -------------------------------------------------------------------------

def test_tag_filters_and_across_or_within(kms_client, tagging):
    ours = make_key(kms_client, **{"spire-server-td": "example.org", "spire-server-id": "s1",
                                   "spire-active": "true"})
    other_server = make_key(kms_client, **{"spire-server-td": "example.org",
                                           "spire-server-id": "s2", "spire-active": "true"})
    inactive = make_key(kms_client, **{"spire-server-td": "example.org", "spire-server-id": "s2",
                                       "spire-active": "false"})
    active = {"Key": "spire-active", "Values": ["true"]}
    assert set(listed(tagging, TagFilters=td_filters("example.org", active))) == {
        ours["Arn"], other_server["Arn"]}
    server = {"Key": "spire-server-id", "Values": ["s1"]}
    assert set(listed(tagging, TagFilters=td_filters("example.org", server, active))) == {
        ours["Arn"]}
    either = {"Key": "spire-active", "Values": ["true", "false"]}
    assert set(listed(tagging, TagFilters=td_filters("example.org", either))) == {
        ours["Arn"], other_server["Arn"], inactive["Arn"]}


def test_filter_without_values_matches_any_value_even_empty(kms_client, tagging):
    empty = make_key(kms_client, **{"spire-last-update": ""})
    set_ = make_key(kms_client, **{"spire-last-update": "1767225600"})
    make_key(kms_client, other="x")
    for filters in ([{"Key": "spire-last-update"}], [{"Key": "spire-last-update", "Values": []}]):
        assert set(listed(tagging, TagFilters=filters)) == {empty["Arn"], set_["Arn"]}


def test_trust_domain_values_match_exactly(kms_client, tagging):
    keys = {td: make_key(kms_client, **{"spire-server-td": td})["Arn"]
            for td in ("example.org", "example.org2", "example.org.uk", "Example.org")}
    assert list(listed(tagging, TagFilters=td_filters("example.org"))) == [keys["example.org"]]


@pytest.mark.parametrize("types,expected", [
    (["kms:key"], True), (["kms"], True), (["ec2:instance", "kms:key"], True),
    (["ec2:instance"], False), (["kms:alias"], False), ([], True),
])
def test_resource_type_filters(kms_client, tagging, types, expected):
    key = make_key(kms_client, team="pki")
    assert (key["Arn"] in listed(tagging, ResourceTypeFilters=types)) is expected


def test_resource_arn_list(kms_client, tagging):
    a = make_key(kms_client, team="a")
    b = make_key(kms_client, team="b")
    missing = a["Arn"][:-12] + "000000000000"
    answer = tagging.get_resources(ResourceARNList=[b["Arn"], missing])
    assert [m["ResourceARN"] for m in answer["ResourceTagMappingList"]] == [b["Arn"]]
    with pytest.raises(ClientError) as excinfo:
        tagging.get_resources(ResourceARNList=[a["Arn"]], ResourcesPerPage=10)
    assert error_code(excinfo) == "InvalidParameterException"


# --- paging --------------------------------------------------------------------------

def test_pages_follow_resources_per_page(kms_client, tagging):
    arns = [make_key(kms_client, n=str(i))["Arn"] for i in range(5)]
    first = tagging.get_resources(ResourcesPerPage=2)
    assert [m["ResourceARN"] for m in first["ResourceTagMappingList"]] == arns[:2]
    assert first["PaginationToken"] != ""
    second = tagging.get_resources(ResourcesPerPage=2, PaginationToken=first["PaginationToken"])
    third = tagging.get_resources(ResourcesPerPage=2, PaginationToken=second["PaginationToken"])
    assert [m["ResourceARN"] for m in third["ResourceTagMappingList"]] == arns[4:]
    assert third["PaginationToken"] == ""
    pages = list(tagging.get_paginator("get_resources").paginate(ResourcesPerPage=2))
    assert len(pages) == 3


def test_default_page_size_is_fifty(kms, tagging):
    for i in range(51):
        kms.create_key("ECC_NIST_P256", tags={"n": str(i)})
    first = tagging.get_resources()
    assert len(first["ResourceTagMappingList"]) == 50 and first["PaginationToken"]


def test_tags_per_page_never_splits_a_resource(kms_client, tagging):
    tags = {f"t{i}": "v" for i in range(40)}
    arns = [make_key(kms_client, **tags)["Arn"] for _ in range(4)]
    first = tagging.get_resources(TagsPerPage=100)
    assert [m["ResourceARN"] for m in first["ResourceTagMappingList"]] == arns[:2]
    assert all(len(m["Tags"]) == 40 for m in first["ResourceTagMappingList"])
    rest = tagging.get_resources(TagsPerPage=100, PaginationToken=first["PaginationToken"])
    assert [m["ResourceARN"] for m in rest["ResourceTagMappingList"]] == arns[2:]


def test_tokens_expire_after_fifteen_minutes(kms, kms_client, tagging):
    for i in range(3):
        make_key(kms_client, n=str(i))
    token = tagging.get_resources(ResourcesPerPage=1)["PaginationToken"]
    kms.advance_clock(14 * 60)
    fresh = tagging.get_resources(ResourcesPerPage=1, PaginationToken=token)
    kms.advance_clock(16 * 60)
    with pytest.raises(ClientError) as excinfo:
        tagging.get_resources(ResourcesPerPage=1, PaginationToken=fresh["PaginationToken"])
    assert error_code(excinfo) == "PaginationTokenExpiredException"


def test_foreign_and_garbage_tokens(kms_client, tagging):
    for i in range(3):
        make_key(kms_client, n=str(i))
    token = tagging.get_resources(ResourcesPerPage=1, TagFilters=[{"Key": "n"}])[
        "PaginationToken"]
    for bad in ({"PaginationToken": token}, {"PaginationToken": "not-a-token"}):
        with pytest.raises(ClientError) as excinfo:
            tagging.get_resources(ResourcesPerPage=1, **bad)
        assert error_code(excinfo) == "InvalidParameterException"


# --- parameters, signature -----------------------------------------------------------

@pytest.mark.parametrize("params,fragment", [
    ({"ResourcesPerPage": 0}, "ResourcesPerPage 0"),
    ({"ResourcesPerPage": 101}, "ResourcesPerPage 101"),
    ({"TagsPerPage": 99}, "TagsPerPage 99"),
    ({"TagFilters": [{"Key": "k", "Values": [str(i) for i in range(21)]}]},
     "Member must have length less than or equal to 20"),
    ({"TagFilters": [{"Values": ["v"]}]}, "Each TagFilter needs a Key"),
    ({"IncludeComplianceDetails": True}, "tag policies"),
])
def test_invalid_parameters(tagging_unchecked, params, fragment):
    with pytest.raises(ClientError) as excinfo:
        tagging_unchecked.get_resources(**params)
    assert error_code(excinfo) == "InvalidParameterException"
    assert fragment in excinfo.value.response["Error"]["Message"]


def raw_get_resources(kms, body, service="tagging"):
    request = AWSRequest(method="POST", url=kms.url + "/", data=json.dumps(body).encode(),
                         headers={"X-Amz-Target": TARGET,
                                  "Content-Type": "application/x-amz-json-1.1"})
    sign(request, kms.access_key_id, kms.secret_access_key, service=service)
    status, _, data = send(kms.url, request)
    return status, json.loads(data)


def test_signature_must_be_scoped_to_tagging(kms):
    assert raw_get_resources(kms, {})[0] == 200
    status, answer = raw_get_resources(kms, {}, service="kms")
    assert status == 400 and answer["__type"] == "InvalidSignatureException"
    assert "'tagging'" in answer["message"]


def test_unknown_members_are_refused(kms):
    status, answer = raw_get_resources(kms, {"TagFilter": []})
    assert status == 400 and answer["__type"] == "SerializationException"


# --- faults --------------------------------------------------------------------------

@pytest.mark.parametrize("fault,status,code", [
    ("throttle", 400, "ThrottledException"),
    ("500", 500, "InternalServiceException"),
    ("503", 503, "ServiceUnavailable"),
    ("access_denied", 400, "AccessDeniedException"),
])
def test_injected_errors(kms, tagging, fault, status, code):
    kms.inject("GetResources", fault, count=1)
    with pytest.raises(ClientError) as excinfo:
        tagging.get_resources()
    assert error_code(excinfo) == code
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    if fault == "access_denied":
        assert "tag:GetResources" in excinfo.value.response["Error"]["Message"]
    assert tagging.get_resources()["ResourceTagMappingList"] == []
    assert kms.calls("GetResources") == 2


def test_drop_and_lost_answers(kms, kms_client, tagging):
    make_key(kms_client, team="pki")
    kms.inject("GetResources", "drop")
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        tagging.get_resources()
    kms.inject("GetResources", "lost_503")
    with pytest.raises(ClientError) as excinfo:
        tagging.get_resources()
    assert error_code(excinfo) == "ServiceUnavailable"
    kms.inject("GetResources", "lost")
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        tagging.get_resources()
    assert kms.calls("GetResources") == 3


def test_lost_answer_of_a_bad_request_is_its_own_error(kms, tagging_unchecked):
    kms.inject("GetResources", "lost")
    with pytest.raises(ClientError) as excinfo:
        tagging_unchecked.get_resources(ResourcesPerPage=500)
    assert error_code(excinfo) == "InvalidParameterException"


def test_wildcard_and_limit_faults_leave_get_resources_alone(kms, tagging):
    kms.inject("*", "throttle", count=5)
    assert tagging.get_resources()["ResourceTagMappingList"] == []
    with pytest.raises(ValueError):
        kms.inject("GetResources", "limit")


# --- key states ----------------------------------------------------------------------

def test_tag_and_untag_refused_on_a_key_pending_deletion(kms_client):
    key = make_key(kms_client, **{"spire-active": "true"})
    kms_client.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    for call in (lambda: kms_client.tag_resource(
                     KeyId=key["KeyId"], Tags=[{"TagKey": "spire-active", "TagValue": "false"}]),
                 lambda: kms_client.untag_resource(KeyId=key["KeyId"], TagKeys=["spire-active"])):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_code(excinfo) == "KMSInvalidStateException"
        assert "is pending deletion" in excinfo.value.response["Error"]["Message"]
    tags = kms_client.list_resource_tags(KeyId=key["KeyId"])["Tags"]
    assert tags == [{"TagKey": "spire-active", "TagValue": "true"}]


def test_tag_and_untag_work_on_a_disabled_key(kms, kms_client):
    key = make_key(kms_client, team="pki")
    kms.disable_key(key["KeyId"])
    kms_client.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "x", "TagValue": "1"}])
    kms_client.untag_resource(KeyId=key["KeyId"], TagKeys=["team"])
    assert kms_client.list_resource_tags(KeyId=key["KeyId"])["Tags"] == [
        {"TagKey": "x", "TagValue": "1"}]


def test_untag_resource_takes_no_alias(kms_client):
    key = make_key(kms_client, team="pki")
    kms_client.create_alias(AliasName="alias/t", TargetKeyId=key["KeyId"])
    with pytest.raises(ClientError) as excinfo:
        kms_client.untag_resource(KeyId="alias/t", TagKeys=["team"])
    assert error_code(excinfo) == "NotFoundException"


def test_ever_tagged_survives_the_state_file(tmp_path):
    state = str(tmp_path / "state.json")
    with Emulator(state_file=state) as first:
        client = boto3_client("kms", first)
        key = make_key(client, team="pki")
        client.untag_resource(KeyId=key["KeyId"], TagKeys=["team"])
    with Emulator(state_file=state) as second:
        assert listed(boto3_client("resourcegroupstaggingapi", second)) == {key["Arn"]: {}}
