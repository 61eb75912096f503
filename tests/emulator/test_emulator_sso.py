"""The emulator's SSO portal (GetRoleCredentials), driven by botocore's own
"sso" client: granted tokens get working temporary credentials, unknown and
expired tokens get UnauthorizedException, roles not granted get "No access",
and injected faults apply."""
import time

import pytest
from botocore.exceptions import ClientError

from emulator.fixtures import boto3_client

ACCOUNT = "111122223333"
ROLE = "SpireOperator"


def sso_client(kms):
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    return boto3.client("sso", region_name="us-east-2", endpoint_url=kms.url,
                        config=Config(signature_version=UNSIGNED,
                                      retries={"total_max_attempts": 1, "mode": "standard"}))


def test_granted_token_gets_working_credentials(kms):
    kms.sso_grant("token-1", ACCOUNT, ROLE, expiration=time.time() + 600)
    answer = sso_client(kms).get_role_credentials(roleName=ROLE, accountId=ACCOUNT,
                                                  accessToken="token-1")
    role = answer["roleCredentials"]
    assert role["accessKeyId"].startswith("ASIA")
    assert role["expiration"] > time.time() * 1000
    client = boto3_client("kms", kms, aws_access_key_id=role["accessKeyId"],
                          aws_secret_access_key=role["secretAccessKey"],
                          aws_session_token=role["sessionToken"])
    assert "Keys" in client.list_keys()
    assert kms.calls("GetRoleCredentials") == 1


@pytest.mark.parametrize("token, expiration", [("unknown", None), ("old", -5)])
def test_unknown_or_expired_token_is_unauthorized(kms, token, expiration):
    if token == "old":
        kms.sso_grant("old", ACCOUNT, ROLE, expiration=time.time() + expiration)
    with pytest.raises(ClientError) as caught:
        sso_client(kms).get_role_credentials(roleName=ROLE, accountId=ACCOUNT, accessToken=token)
    assert caught.value.response["Error"]["Code"] == "UnauthorizedException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401


def test_role_not_granted_is_no_access(kms):
    kms.sso_grant("token-2", ACCOUNT, ROLE)
    with pytest.raises(ClientError) as caught:
        sso_client(kms).get_role_credentials(roleName="Admin", accountId=ACCOUNT,
                                             accessToken="token-2")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert caught.value.response["Error"]["Message"] == "No access"


def test_missing_token_is_invalid_request(kms):
    import urllib.request
    from urllib.error import HTTPError

    url = f"{kms.url}/federation/credentials?account_id={ACCOUNT}&role_name={ROLE}"
    with pytest.raises(HTTPError) as caught:
        urllib.request.urlopen(url, timeout=10)
    assert caught.value.code == 400
    assert b"InvalidRequestException" in caught.value.read()


def test_injected_fault(kms):
    kms.sso_grant("token-3", ACCOUNT, ROLE)
    kms.inject("GetRoleCredentials", "503")
    with pytest.raises(ClientError) as caught:
        sso_client(kms).get_role_credentials(roleName=ROLE, accountId=ACCOUNT,
                                             accessToken="token-3")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    answer = sso_client(kms).get_role_credentials(roleName=ROLE, accountId=ACCOUNT,
                                                  accessToken="token-3")
    assert answer["roleCredentials"]["sessionToken"]
