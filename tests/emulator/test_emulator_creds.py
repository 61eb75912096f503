"""Credential sources served by the emulator: STS (boto3), IMDSv2 and the
container endpoint (urllib and botocore's own fetchers); the temporary
credentials they issue work for KMS until they expire."""
import json
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError
from botocore.utils import ContainerMetadataFetcher, InstanceMetadataFetcher

from emulator.fixtures import boto3_client
from emulator.raw_client import send

ROLE_ARN = "arn:aws:iam::111122223333:role/spire-server"


def kms_with(kms, akid, secret, token):
    return boto3_client("kms", kms, aws_access_key_id=akid, aws_secret_access_key=secret,
                        aws_session_token=token)


def test_get_caller_identity(kms):
    identity = boto3_client("sts", kms).get_caller_identity()
    assert identity["Account"] == "111122223333"
    assert identity["UserId"] == "AKIDEMULATOR"
    assert identity["Arn"] == "arn:aws:iam::111122223333:user/emulator"
    assert kms.calls("GetCallerIdentity") == 1


def test_get_caller_identity_must_be_signed_for_sts(kms):
    with pytest.raises(ClientError) as excinfo:
        boto3_client("sts", kms, aws_secret_access_key="wrong").get_caller_identity()
    assert excinfo.value.response["Error"]["Code"] == "InvalidSignatureException"
    status, _, body = send(kms.sts_url, ("POST", "/", {
        "Content-Type": "application/x-www-form-urlencoded"},
        b"Action=GetCallerIdentity&Version=2011-06-15"))
    assert status == 400 and b"<Code>MissingAuthenticationTokenException</Code>" in body


def test_assume_role_with_web_identity(kms):
    kms.configure(temp_credential_seconds=900)
    sts = boto3_client("sts", kms, aws_access_key_id=None, aws_secret_access_key=None)
    before = time.time()
    answer = sts.assume_role_with_web_identity(RoleArn=ROLE_ARN, RoleSessionName="spire",
                                               WebIdentityToken="eyJ.projected.token",
                                               DurationSeconds=3600)
    issued = answer["Credentials"]
    assert issued["AccessKeyId"].startswith("ASIA") and len(issued["AccessKeyId"]) == 20
    assert abs(issued["Expiration"].timestamp() - (before + 900)) < 5
    assert answer["AssumedRoleUser"]["Arn"] == (
        "arn:aws:sts::111122223333:assumed-role/spire-server/spire")
    assert kms.web_identity_tokens() == ["eyJ.projected.token"]
    assert kms.calls("AssumeRoleWithWebIdentity") == 1
    client = kms_with(kms, issued["AccessKeyId"], issued["SecretAccessKey"],
                      issued["SessionToken"])
    assert client.list_keys()["Keys"] == []
    identity = boto3_client("sts", kms, aws_access_key_id=issued["AccessKeyId"],
                            aws_secret_access_key=issued["SecretAccessKey"],
                            aws_session_token=issued["SessionToken"]).get_caller_identity()
    assert identity["Arn"].endswith("assumed-role/spire-server/spire")


def test_web_identity_rejections(kms):
    sts = boto3_client("sts", kms, parameter_validation=False)
    kms.configure(expected_web_identity_token="the-right-token")
    with pytest.raises(ClientError) as excinfo:
        sts.assume_role_with_web_identity(RoleArn=ROLE_ARN, RoleSessionName="s1",
                                          WebIdentityToken="the-wrong-token")
    assert excinfo.value.response["Error"]["Code"] == "InvalidIdentityToken"
    assert "wrong-token" not in str(excinfo.value)
    with pytest.raises(ClientError) as excinfo:
        sts.assume_role_with_web_identity(RoleArn=ROLE_ARN, RoleSessionName="s1",
                                          WebIdentityToken="the-right-token",
                                          DurationSeconds=60)
    assert excinfo.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(ClientError) as excinfo:
        sts.assume_role_with_web_identity(RoleArn=ROLE_ARN, RoleSessionName="s1")
    assert excinfo.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(ClientError) as excinfo:
        sts.assume_role_with_web_identity(RoleArn=ROLE_ARN, RoleSessionName="s1",
                                          WebIdentityToken="abc")
    assert excinfo.value.response["Error"]["Code"] == "ValidationError"
    assert "webIdentityToken" in str(excinfo.value) and "abc" not in str(excinfo.value)


def test_assume_role_is_signed(kms):
    answer = boto3_client("sts", kms).assume_role(RoleArn=ROLE_ARN, RoleSessionName="ops")
    assert answer["Credentials"]["SessionToken"]
    with pytest.raises(ClientError):
        boto3_client("sts", kms, aws_access_key_id="AKIDUNKNOWN").assume_role(
            RoleArn=ROLE_ARN, RoleSessionName="ops")


def test_expired_temporary_credentials_are_refused(kms):
    kms.configure(temp_credential_seconds=0)  # expired as soon as issued
    issued = boto3_client("sts", kms).assume_role(RoleArn=ROLE_ARN,
                                                  RoleSessionName="short")["Credentials"]
    client = kms_with(kms, issued["AccessKeyId"], issued["SecretAccessKey"],
                      issued["SessionToken"])
    with pytest.raises(ClientError) as excinfo:
        client.list_keys()
    assert excinfo.value.response["Error"]["Code"] == "ExpiredTokenException"


def http(url, method="GET", headers=None):
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_imds_v2_flow(kms):
    base = kms.imds_url + "/latest"
    status, _ = http(base + "/meta-data/iam/security-credentials/")
    assert status == 401
    status, _ = http(base + "/api/token", "PUT")
    assert status == 400
    status, token = http(base + "/api/token", "PUT",
                         {"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    assert status == 200
    header = {"X-aws-ec2-metadata-token": token.decode()}
    status, role = http(base + "/meta-data/iam/security-credentials/", headers=header)
    assert (status, role) == (200, b"spire-server-role")
    status, body = http(base + "/meta-data/iam/security-credentials/spire-server-role",
                        headers=header)
    document = json.loads(body)
    assert status == 200 and document["Code"] == "Success"
    expiration = datetime.strptime(document["Expiration"], "%Y-%m-%dT%H:%M:%SZ")
    assert expiration.replace(tzinfo=timezone.utc).timestamp() > time.time() + 3000
    client = kms_with(kms, document["AccessKeyId"], document["SecretAccessKey"],
                      document["Token"])
    assert client.list_keys()["Truncated"] is False
    status, _ = http(base + "/meta-data/iam/security-credentials/other-role", headers=header)
    assert status == 404
    assert kms.calls("imds_token") == 2 and kms.calls("imds_credentials") == 2


def test_botocore_instance_metadata_fetcher_accepts_imds(kms):
    kms.configure(temp_credential_seconds=1800)
    fetched = InstanceMetadataFetcher(base_url=kms.imds_url).retrieve_iam_role_credentials()
    assert fetched["role_name"] == "spire-server-role"
    assert fetched["access_key"].startswith("ASIA") and fetched["token"]
    assert kms.calls("imds_credentials") == 1


def test_container_endpoint(kms):
    status, body = http(kms.container_url)
    assert status == 401 and b"emulator-container-token" not in body
    status, body = http(kms.container_url, headers={"Authorization": "wrong"})
    assert status == 401
    fetcher = ContainerMetadataFetcher()
    fetched = fetcher.retrieve_full_uri(kms.container_url,
                                        headers={"Authorization": "emulator-container-token"})
    assert fetched["AccessKeyId"].startswith("ASIA") and fetched["Token"]
    client = kms_with(kms, fetched["AccessKeyId"], fetched["SecretAccessKey"], fetched["Token"])
    assert client.list_keys()["Keys"] == []
    assert kms.calls("container_credentials") == 3


def test_credential_sources_honour_faults(kms):
    kms.inject("container_credentials", "503", count=1)
    kms.inject("imds_token", "drop", count=1)
    status, _ = http(kms.container_url, headers={"Authorization": "emulator-container-token"})
    assert status == 503
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        urllib.request.urlopen(urllib.request.Request(
            kms.imds_url + "/latest/api/token", method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}), timeout=10)
    status, _ = http(kms.container_url, headers={"Authorization": "emulator-container-token"})
    assert status == 200
    kms.inject("AssumeRoleWithWebIdentity", "throttle", count=1)
    with pytest.raises(ClientError) as excinfo:
        boto3_client("sts", kms).assume_role_with_web_identity(
            RoleArn=ROLE_ARN, RoleSessionName="s1", WebIdentityToken="tokn")
    assert excinfo.value.response["Error"]["Code"] == "Throttling"
