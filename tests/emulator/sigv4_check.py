"""Verifies AWS Signature Version 4 on received requests, as AWS does: parses
the Authorization header, checks the credential scope, the clock skew and the
session token, then recomputes the signature with botocore's own SigV4 signer
over exactly the signed headers and compares. Errors carry AWS's codes."""
import calendar
import hashlib
import hmac
import time

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

try:
    from .model_check import ApiError
except ImportError:  # run as a script
    from model_check import ApiError

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW_SECONDS = 300
BAD_SIGNATURE = ("The request signature we calculated does not match the signature you "
                 "provided. Check your AWS Secret Access Key and signing method. Consult "
                 "the service documentation for details.")
INVALID_TOKEN = "The security token included in the request is invalid."


class _ReceivedRequestSigner(SigV4Auth):
    """botocore's SigV4 signer, told which headers the client signed (botocore
    would otherwise pick its own set, e.g. leaving out User-Agent)."""

    def __init__(self, credentials, service, region, signed_names):
        super().__init__(credentials, service, region)
        self._signed_names = signed_names

    def headers_to_sign(self, request):
        header_map = HTTPHeaders()
        for name in self._signed_names:
            for value in request.headers.get_all(name) or []:
                header_map[name] = value
        return header_map


def parse_authorization(value):
    """'AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...' ->
    dict with akid, date, region, service, signed_headers (list), signature."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise ApiError("IncompleteSignatureException",
                       f"Unsupported Authorization algorithm (expected {ALGORITHM})")
    fields = {}
    for part in rest.split(","):
        name, sep, field_value = part.strip().partition("=")
        if sep:
            fields[name] = field_value
    for required in ("Credential", "SignedHeaders", "Signature"):
        if not fields.get(required):
            raise ApiError("IncompleteSignatureException",
                           f"Authorization header requires '{required}' parameter.")
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise ApiError("IncompleteSignatureException",
                       "Credential must have the form AKID/YYYYMMDD/REGION/SERVICE/aws4_request")
    return {
        "akid": scope[0], "date": scope[1], "region": scope[2], "service": scope[3],
        "signed_headers": fields["SignedHeaders"].split(";"),
        "signature": fields["Signature"],
    }


def _amz_date_epoch(amz_date):
    try:
        return calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        raise ApiError("IncompleteSignatureException",
                       f"X-Amz-Date '{amz_date}' is not in the form YYYYMMDD'T'HHMMSS'Z'") from None


def _check_clock(amz_date, now):
    signed_at = _amz_date_epoch(amz_date)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    if signed_at < now - MAX_SKEW_SECONDS:
        earliest = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now - MAX_SKEW_SECONDS))
        raise ApiError("InvalidSignatureException",
                       f"Signature expired: {amz_date} is now earlier than {earliest} "
                       f"({stamp} - 5 min.)")
    if signed_at > now + MAX_SKEW_SECONDS:
        latest = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now + MAX_SKEW_SECONDS))
        raise ApiError("InvalidSignatureException",
                       f"Signature not yet current: {amz_date} is still later than {latest} "
                       f"({stamp} + 5 min.)")


def _check_scope(auth, amz_date, service, region):
    if auth["service"] != service:
        raise ApiError("InvalidSignatureException",
                       f"Credential should be scoped to correct service: '{service}'. ")
    if auth["region"] != region:
        raise ApiError("InvalidSignatureException",
                       f"Credential should be scoped to a valid region, not '{auth['region']}'. ")
    if auth["date"] != amz_date[:8]:
        raise ApiError("InvalidSignatureException",
                       "Date in Credential scope does not match YYYYMMDD from ISO-8601 version "
                       f"of date from HTTP: '{auth['date']}' != '{amz_date[:8]}', from "
                       f"'{amz_date}'.")


def _check_token(entry, headers, signed):
    token = headers.get("X-Amz-Security-Token")
    expected = entry.get("session_token")
    if expected is None:
        if token is not None:
            raise ApiError("UnrecognizedClientException", INVALID_TOKEN)
        return
    if token is None or not hmac.compare_digest(token.encode(), expected.encode()):
        raise ApiError("UnrecognizedClientException", INVALID_TOKEN)
    if "x-amz-security-token" not in signed:
        raise ApiError("IncompleteSignatureException",
                       "X-Amz-Security-Token must be among the SignedHeaders")
    expiration = entry.get("expiration")
    if expiration is not None and time.time() >= expiration:
        raise ApiError("ExpiredTokenException",
                       "The security token included in the request is expired")


def _check_body_hash(headers, body):
    declared = headers.get("X-Amz-Content-SHA256")
    if declared is not None and declared != hashlib.sha256(body).hexdigest():
        raise ApiError("InvalidSignatureException",
                       "The provided 'x-amz-content-sha256' header does not match what was "
                       "computed.")


def compute_signature(auth, secret, method, path, headers, body):
    """Recomputes the signature with botocore.auth.SigV4Auth (no clock read)."""
    request = AWSRequest(method=method, url="http://" + headers.get("Host", "") + path,
                         data=body)
    for name in auth["signed_headers"]:
        for value in headers.get_all(name) or []:
            request.headers[name] = value
    request.context["timestamp"] = headers["X-Amz-Date"]
    signer = _ReceivedRequestSigner(Credentials(auth["akid"], secret), auth["service"],
                                    auth["region"], auth["signed_headers"])
    canonical = signer.canonical_request(request)
    return signer.signature(signer.string_to_sign(request, canonical), request)


def verify(method, path, headers, body, service, region, lookup_credentials, now=None):
    """Checks the request's SigV4 signature. headers is an email.message-like
    object (http.server's). lookup_credentials(akid) returns a dict with
    secret, session_token (or None), expiration (epoch or None), or None.
    now: the service's clock (epoch seconds) the signing time must be within
    5 minutes of; None: the real clock. Returns (akid, entry). Raises
    ApiError as AWS would answer."""
    authorization = headers.get("Authorization")
    if not authorization:
        raise ApiError("MissingAuthenticationTokenException", "Missing Authentication Token")
    auth = parse_authorization(authorization)
    amz_date = headers.get("X-Amz-Date")
    if not amz_date:
        raise ApiError("IncompleteSignatureException",
                       "Authorization header requires existence of either a 'X-Amz-Date' or "
                       "a 'Date' header.")
    signed = set(auth["signed_headers"])
    for needed in ("host", "x-amz-date"):
        if needed not in signed:
            raise ApiError("IncompleteSignatureException",
                           f"'{needed}' must be a 'SignedHeader' in the AWS Authorization.")
    for name in signed:
        if headers.get(name) is None:
            raise ApiError("IncompleteSignatureException",
                           f"Signed header '{name}' is missing from the request.")
    _check_scope(auth, amz_date, service, region)
    entry = lookup_credentials(auth["akid"])
    if entry is None:
        raise ApiError("UnrecognizedClientException", INVALID_TOKEN)
    _check_token(entry, headers, signed)
    _check_clock(amz_date, time.time() if now is None else now)
    _check_body_hash(headers, body)
    expected = compute_signature(auth, entry["secret"], method, path, headers, body)
    if not hmac.compare_digest(expected, auth["signature"]):
        raise ApiError("InvalidSignatureException", BAD_SIGNATURE)
    return auth["akid"], entry
