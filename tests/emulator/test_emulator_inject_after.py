"""inject(..., after=N): the first N matching requests pass untouched, then
the fault applies to the next `count` ones (so a test can hit the step that
follows a listing instead of the listing)."""
import pytest
from botocore.exceptions import ClientError


def test_after_lets_the_first_requests_through(kms, kms_client):
    kms.inject("ListKeys", "access_denied", count=1, after=2)
    kms_client.list_keys()
    kms_client.list_keys()
    with pytest.raises(ClientError) as caught:
        kms_client.list_keys()
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    kms_client.list_keys()
    assert kms.calls("ListKeys") == 4


def test_after_counts_only_matching_operations(kms, kms_client):
    kms.inject("ListAliases", "500", count=1, after=1)
    kms_client.list_keys()
    kms_client.list_aliases()
    with pytest.raises(ClientError) as caught:
        kms_client.list_aliases()
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
