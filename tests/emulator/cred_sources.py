"""The emulator's credentials: the table of access keys it accepts, and the
three places a client can get temporary credentials from: STS (query
protocol, XML), EC2 IMDSv2 and the ECS/EKS container credentials endpoint.
Every temporary credential it hands out is added to the table with its
expiry (real clock: the client checks expiry against its own clock)."""
import json
import secrets
import string
import threading
import time
import uuid
from xml.sax.saxutils import escape

try:
    from .model_check import ApiError, validate
except ImportError:  # run as a script
    from model_check import ApiError, validate

STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
DEFAULT_TEMP_SECONDS = 3600
IMDS_TOKEN_MAX_TTL = 21600


def _random_text(alphabet, length):
    return "".join(secrets.choice(alphabet) for _ in range(length))


def iso8601(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class CredentialTable:
    """akid -> {secret, session_token, expiration, arn, user_id}."""

    def __init__(self, account):
        self.account = account
        self._entries = {}
        self._lock = threading.Lock()

    def add(self, akid, secret, session_token=None, expiration=None, arn=None, user_id=None):
        entry = {"secret": secret, "session_token": session_token, "expiration": expiration,
                 "arn": arn or f"arn:aws:iam::{self.account}:user/emulator",
                 "user_id": user_id or akid}
        with self._lock:
            self._entries[akid] = entry
        return entry

    def get(self, akid):
        with self._lock:
            return self._entries.get(akid)

    def issue_temporary(self, lifetime_seconds, role_name, session_name):
        """New ASIA... credentials valid for lifetime_seconds (real clock)."""
        akid = "ASIA" + _random_text(string.ascii_uppercase + string.digits, 16)
        secret = _random_text(string.ascii_letters + string.digits + "+/", 40)
        token = "IQoJb3JpZ2luX2VtdWxhdG9y" + secrets.token_urlsafe(180)
        expiration = int(time.time()) + int(lifetime_seconds)
        role_id = "AROA" + _random_text(string.ascii_uppercase + string.digits, 17)
        arn = f"arn:aws:sts::{self.account}:assumed-role/{role_name}/{session_name}"
        self.add(akid, secret, token, expiration, arn, f"{role_id}:{session_name}")
        return {"AccessKeyId": akid, "SecretAccessKey": secret, "SessionToken": token,
                "Expiration": expiration, "AssumedRoleArn": arn,
                "AssumedRoleId": f"{role_id}:{session_name}"}


def _xml(tag, children):
    """<tag>children</tag>; children is a string (escaped) or a list of (tag, children)."""
    if isinstance(children, list):
        inner = "".join(_xml(t, c) for t, c in children)
    else:
        inner = escape(str(children))
    return f"<{tag}>{inner}</{tag}>"


def sts_result_xml(action, result_children, request_id):
    body = (f'<{action}Response xmlns="{STS_NAMESPACE}">'
            + _xml(f"{action}Result", result_children)
            + _xml("ResponseMetadata", [("RequestId", request_id)])
            + f"</{action}Response>")
    return body.encode()


def sts_error_xml(code, message, request_id, sender=True):
    body = (f'<ErrorResponse xmlns="{STS_NAMESPACE}">'
            + _xml("Error", [("Type", "Sender" if sender else "Receiver"), ("Code", code),
                             ("Message", message)])
            + _xml("RequestId", request_id) + "</ErrorResponse>")
    return body.encode()


def sts_params(params):
    """Query-protocol strings -> typed values, then the model check."""
    action = params.get("Action", "")
    typed = {k: v for k, v in params.items() if k not in ("Action", "Version") and "." not in k}
    if "DurationSeconds" in typed:
        try:
            typed["DurationSeconds"] = int(typed["DurationSeconds"])
        except ValueError:
            raise ApiError("ValidationError", "DurationSeconds must be an integer") from None
    try:
        return validate("sts", action, typed, reject_unknown=False)
    except ApiError as error:
        code = "ValidationError" if error.code == "ValidationException" else error.code
        raise ApiError(code, error.message) from None


def role_name_of(role_arn):
    return role_arn.rsplit("/", 1)[-1] if "/" in role_arn else role_arn


def credentials_children(issued):
    return [("AccessKeyId", issued["AccessKeyId"]),
            ("SecretAccessKey", issued["SecretAccessKey"]),
            ("SessionToken", issued["SessionToken"]),
            ("Expiration", iso8601(issued["Expiration"]))]


def assumed_role_children(issued, params, web_identity):
    children = []
    if web_identity:
        children += [("SubjectFromWebIdentityToken", "system:serviceaccount:emulator:spire"),
                     ("Audience", "sts.amazonaws.com")]
    children += [("AssumedRoleUser", [("AssumedRoleId", issued["AssumedRoleId"]),
                                      ("Arn", issued["AssumedRoleArn"])]),
                 ("Credentials", credentials_children(issued))]
    if web_identity:
        children.append(("Provider", "emulator"))
    return children


class ImdsTokens:
    """IMDSv2 session tokens with their real-clock expiry."""

    def __init__(self):
        self._tokens = {}
        self._lock = threading.Lock()

    def issue(self, ttl_header):
        try:
            ttl = int(ttl_header)
        except (TypeError, ValueError):
            return None
        if not 1 <= ttl <= IMDS_TOKEN_MAX_TTL:
            return None
        token = "AQAEAEmu" + secrets.token_urlsafe(40)
        with self._lock:
            self._tokens[token] = time.time() + ttl
        return token, ttl

    def valid(self, token):
        with self._lock:
            expiry = self._tokens.get(token or "")
        return expiry is not None and time.time() < expiry


def imds_credentials_json(issued):
    return json.dumps({
        "Code": "Success", "LastUpdated": iso8601(time.time()), "Type": "AWS-HMAC",
        "AccessKeyId": issued["AccessKeyId"], "SecretAccessKey": issued["SecretAccessKey"],
        "Token": issued["SessionToken"], "Expiration": iso8601(issued["Expiration"]),
    }).encode()


def container_credentials_json(issued, role_arn):
    return json.dumps({
        "AccessKeyId": issued["AccessKeyId"], "SecretAccessKey": issued["SecretAccessKey"],
        "Token": issued["SessionToken"], "Expiration": iso8601(issued["Expiration"]),
        "RoleArn": role_arn,
    }).encode()


def new_request_id():
    return str(uuid.uuid4())

