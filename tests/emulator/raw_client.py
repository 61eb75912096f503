"""Test helper: sends hand-built, SigV4-signed requests (botocore's signer,
any timestamp, region or service) to the emulator over http.client, so tests
can send what an SDK never would."""
import http.client
import json
import time
import urllib.parse

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def sign(request, akid, secret, token=None, region="us-east-2", service="kms", when=None):
    """Adds X-Amz-Date, X-Amz-Security-Token (if token) and Authorization."""
    signer = SigV4Auth(Credentials(akid, secret, token), service, region)
    stamp = time.gmtime(time.time() if when is None else when)
    request.context["timestamp"] = time.strftime("%Y%m%dT%H%M%SZ", stamp)
    signer._modify_request_before_signing(request)
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    signer._inject_signature_to_request(request, signature)
    return request


def send(url, request_or_parts):
    """Sends an AWSRequest (or a (method, path, headers, body) tuple);
    returns (status, headers dict with lower-case names, body bytes)."""
    if isinstance(request_or_parts, AWSRequest):
        method, path = request_or_parts.method, urllib.parse.urlsplit(request_or_parts.url).path
        headers, body = dict(request_or_parts.headers.items()), request_or_parts.body
    else:
        method, path, headers, body = request_or_parts
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request(method, path or "/", body=body, headers=headers)
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


def kms_request(url, operation, body, content_type="application/x-amz-json-1.1"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"X-Amz-Target": f"TrentService.{operation}", "Content-Type": content_type}
    return AWSRequest(method="POST", url=url + "/", data=data, headers=headers)


def raw_kms_call(emulator, operation, body, akid=None, secret=None, **sign_options):
    """Signed KMS call with the default credentials; returns (status, JSON or None)."""
    request = kms_request(emulator.url, operation, body)
    sign(request, akid or emulator.access_key_id, secret or emulator.secret_access_key,
         **sign_options)
    status, _, data = send(emulator.url, request)
    return status, (json.loads(data) if data else None)
