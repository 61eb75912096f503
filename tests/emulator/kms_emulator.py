"""AWS KMS emulator for the plugin's tests, demo and benchmarks (loopback only).

One HTTP/1.1 keep-alive server on 127.0.0.1 (ephemeral port) serves:
  * KMS, JSON 1.1 (POST /, X-Amz-Target: TrentService.<Op>): CreateKey,
    DescribeKey, GetPublicKey, Sign, Verify, CreateAlias, UpdateAlias,
    DeleteAlias, ListAliases, ListKeys, ScheduleKeyDeletion, CancelKeyDeletion,
    DisableKey, EnableKey, TagResource, UntagResource, ListResourceTags. Every
    request is SigV4-verified (service "kms", the emulator's region) with
    botocore's signer and validated against botocore's KMS model. Stricter than
    AWS in two ways, to catch client bugs: unknown JSON members and an empty
    body are SerializationExceptions. Keys are SIGN_VERIFY RSA_2048, RSA_4096,
    ECC_NIST_P256, ECC_NIST_P384 (others: UnsupportedOperationException).
    As in AWS, DescribeKey/GetPublicKey/Sign/Verify accept a key id, key ARN,
    alias name or alias ARN; the other operations take a key id or key ARN.
    Key states follow KMS's key-state table: TagResource and UntagResource on
    a key pending deletion are KMSInvalidStateException ("... is pending
    deletion."); ListResourceTags and DescribeKey work in every state.
  * The Resource Groups Tagging API, JSON 1.1 (POST /, X-Amz-Target:
    ResourceGroupsTaggingAPI_20170126.GetResources), SigV4 service "tagging",
    validated against botocore's resourcegroupstaggingapi model; semantics
    (tag filters, resource types, paging, 15-minute tokens) in tagging_api.py.
    The same URL serves it: point AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API
    (or AWS_ENDPOINT_URL) at emu.url.
  * STS, query protocol (POST / form-encoded, Action=GetCallerIdentity |
    AssumeRole (both SigV4 "sts") | AssumeRoleWithWebIdentity (unsigned)).
  * IMDSv2 (PUT /latest/api/token, GET /latest/meta-data/iam/security-credentials/[ROLE])
    and the container endpoint (GET /container-credentials/<anything>, header
    Authorization must equal the configured container token).
  * The SSO portal's GetRoleCredentials (GET /federation/credentials?account_id=
    &role_name=, header x-amz-sso_bearer_token; unsigned, rest-json), checked
    against botocore's "sso" model, for tokens granted with sso_grant.
  * The control API: POST /_emulator/<method> with a JSON object of keyword
    arguments -> {"result": ...} (loopback clients only, no auth), for the
    methods listed in CONTROL_METHODS.

Python API (stable):
    emu = Emulator(region="us-east-2", account="111122223333", state_file=None).start()
    emu.url, emu.sts_url, emu.imds_url (the same base URL), emu.container_url
    emu.access_key_id, emu.secret_access_key  (default "AKIDEMULATOR"/"emulator-secret")
    emu.plugin_env() -> {"AWS_ACCESS_KEY_ID": ..., "AWS_SECRET_ACCESS_KEY": ...}
    emu.stop()  (also a context manager)
    add_credentials(akid, secret, session_token=None, expiration=None)
    sso_grant(access_token, account_id, role_name, expiration=None)
        lets GetRoleCredentials trade access_token (until expiration, epoch
        seconds on the real clock; None: no expiry) for temporary credentials
        of role_name in account_id. Unknown or expired token: 401
        UnauthorizedException; a role not granted to the token: 403
        ForbiddenException "No access" (as AWS answers; not in the model).
    inject(operation, fault, count=1, latency_ms=0, after=0); clear_faults()
        operation: a KMS op ("Sign"), "*" (any KMS op, not GetResources),
        "GetResources" (the tagging API), an STS Action, or "imds_token" /
        "imds_role" / "imds_credentials" / "container_credentials" /
        "GetRoleCredentials" (the SSO portal).
        fault: throttle | 500 | 503 | limit | access_denied | drop | latency
               | lost | lost_500 | lost_503.
        KMS answers ThrottlingException 400, KMSInternalException 500,
        ServiceUnavailableException 503, LimitExceededException 400,
        AccessDeniedException 400; GetResources ThrottledException 400,
        InternalServiceException 500, ServiceUnavailable 503,
        AccessDeniedException 400 (naming tag:GetResources), and no "limit"
        (the tagging API has no such error: inject refuses it); STS
        Throttling 400, InternalFailure 500, ServiceUnavailable 503,
        LimitExceeded 400, AccessDenied 403; IMDS and container plain
        429/500/503/429/403. drop closes the connection unanswered; latency
        (or latency_ms with any fault) delays first.
        "Applied, answer lost" (KMS operations and GetResources): the request
        is served as usual (authenticated, validated, applied to the store),
        then the answer is lost: lost closes the connection unanswered (after
        latency_ms, if given: a client timeout), lost_500 / lost_503 answer
        the service's 500 / 503 error above instead. A request that fails on
        its own merits is answered as usual. (GetResources changes nothing, so
        for it "lost" is a dropped answer after the work was done.)
        after=N lets the first N matching requests through untouched (to hit
        the step after a listing, not the listing).
    calls(operation=None) -> {label: count} (or one count); reset_calls()
        Counts every request, failed and injected ones included, under the
        labels above (unknown KMS or tagging targets: "UnknownOperation"). A
        fault is taken when the request is counted, before authentication.
    now(); advance_clock(seconds)   the emulator clock (CreationDate, alias
        dates, key deletion). By default answers' Date header and the SigV4
        time check (5 minutes either way) use the real clock, as does
        credential expiry. With Emulator(clock_follows_emulator=True) or
        configure(clock_follows_emulator=True), the Date header and the SigV4
        time check follow the emulator clock: after advance_clock(days) a
        client signing with the host's time is refused "Signature expired"
        and can learn the offset from the Date, as from a real KMS whose clock
        differs from the host's. Credential expiry, IMDS tokens and the
        Expiration of issued credentials stay on the real clock.
    fault_log(since=0) -> [{seq, operation, fault, akid, at}] every fault
        taken (seq counts from 1; entries with seq > since), with the access
        key id the request was signed with (None when unsigned) and the real
        time it was taken (epoch seconds): which client a fault hit.
    create_key(spec, description="", creation_date=None, tags=None) -> key id
        (tags: {key: value}, as if given to CreateKey)
    create_alias(name, key_id, last_updated=None); disable_key(key_id)
    set_alias_last_updated(alias_name, epoch_seconds); set_key_creation_date(key_id, epoch_seconds)
    state() -> {"keys": [{id, arn, spec, state, description, creation_date,
                          deletion_date, tags, public_key_sha256}], "aliases": [{name,
                          arn, key_id, creation_date, last_updated}]}
        (public_key_sha256: hex SHA-256 of the DER SubjectPublicKeyInfo, the
        fingerprint SPIRE's KeyManager gives for the key)
    configure(temp_credential_seconds=, container_token=, imds_role_name=,
              expected_web_identity_token=, clock_follows_emulator=)
        (also plain attributes)
    web_identity_tokens() -> tokens received by AssumeRoleWithWebIdentity

Process mode:
    /usr/bin/python3 tests/emulator/kms_emulator.py --port 0 [--region us-east-2] [--state-file F]
        [--clock-follows-emulator]
prints "KMS_EMULATOR_URL=http://127.0.0.1:PORT" and serves until SIGTERM.
"""
import argparse
import json
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from . import cred_sources as creds
    from .kms_store import RSA_POOL, KmsStore
    from .model_check import ApiError, operation_names, validate
    from .sigv4_check import verify as verify_sigv4
    from .tagging_api import TaggingApi
except ImportError:  # run as a script
    import cred_sources as creds
    from kms_store import RSA_POOL, KmsStore
    from model_check import ApiError, operation_names, validate
    from sigv4_check import verify as verify_sigv4
    from tagging_api import TaggingApi

DEFAULT_AKID = "AKIDEMULATOR"
DEFAULT_SECRET = "emulator-secret"
KMS_TARGET_PREFIX = "TrentService."
KMS_OPERATIONS = frozenset(name[3:] for name in dir(KmsStore) if name.startswith("op_"))
TAGGING_TARGET_PREFIX = "ResourceGroupsTaggingAPI_20170126."
TAGGING_OPERATIONS = frozenset({"GetResources"})
STS_ACTIONS = ("GetCallerIdentity", "AssumeRole", "AssumeRoleWithWebIdentity")
CREDENTIAL_LABELS = ("imds_token", "imds_role", "imds_credentials", "container_credentials",
                     "GetRoleCredentials")
FAULTS = ("throttle", "500", "503", "limit", "access_denied", "drop", "latency",
          "lost", "lost_500", "lost_503")
LOST_ANSWER_FAULTS = {"lost": None, "lost_500": "500", "lost_503": "503"}
CONTROL_METHODS = ("inject", "clear_faults", "fault_log", "calls", "reset_calls", "now",
                   "advance_clock",
                   "create_key", "create_alias", "disable_key", "set_alias_last_updated",
                   "set_key_creation_date", "state", "add_credentials", "configure",
                   "web_identity_tokens", "sso_grant")
TAGGING_FAULT_ERRORS = {
    "throttle": (400, "ThrottledException", "Rate exceeded"),
    "500": (500, "InternalServiceException", "Internal error (injected by the emulator)"),
    "503": (503, "ServiceUnavailable", "Service unavailable (injected by the emulator)"),
    "access_denied": (400, "AccessDeniedException",
                      "User: arn:aws:iam::111122223333:user/emulator is not authorized to "
                      "perform: tag:GetResources (injected by the emulator)"),
}
KMS_FAULT_ERRORS = {
    "throttle": (400, "ThrottlingException", "Rate exceeded"),
    "500": (500, "KMSInternalException", "KMS internal error (injected by the emulator)"),
    "503": (503, "ServiceUnavailableException", "Service unavailable (injected by the emulator)"),
    "limit": (400, "LimitExceededException", "Limit exceeded (injected by the emulator)"),
    "access_denied": (400, "AccessDeniedException",
                      "User is not authorized to perform this operation (injected by the "
                      "emulator)"),
}
STS_FAULT_ERRORS = {
    "throttle": (400, "Throttling", "Rate exceeded"),
    "500": (500, "InternalFailure", "Internal failure (injected by the emulator)"),
    "503": (503, "ServiceUnavailable", "Service unavailable (injected by the emulator)"),
    "limit": (400, "LimitExceeded", "Limit exceeded (injected by the emulator)"),
    "access_denied": (403, "AccessDenied", "Not authorized (injected by the emulator)"),
}
PLAIN_FAULT_STATUS = {"throttle": 429, "500": 500, "503": 503, "limit": 429,
                      "access_denied": 403}
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 411: "Length Required",
           429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


class _Answer:
    """One HTTP answer; drop=True closes the connection without answering."""

    def __init__(self, status=200, body=b"", content_type="application/json", drop=False):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.drop = drop


def _json_answer(status, document, content_type="application/x-amz-json-1.1"):
    body = b"" if document is None else json.dumps(document).encode()
    return _Answer(status, body, content_type)


def _kms_error(error):
    return _json_answer(error.status, {"__type": error.code, "message": error.message})


class _JsonService:
    """One JSON 1.1 service the emulator serves: botocore model, SigV4 name,
    operations, injected-fault errors and the object whose methods answer."""

    def __init__(self, model, sigv4_name, operations, fault_errors, answer):
        self.model = model
        self.sigv4_name = sigv4_name
        self.operations = operations
        self.fault_errors = fault_errors
        self.answer = answer  # operation name -> callable(params) -> document

    @property
    def is_kms(self):
        return self.model == "kms"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kms-emulator"
    sys_version = ""

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self):
        self.server.track(self.connection, False)
        super().finish()

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        if self.server.emulator.verbose:
            super().log_message(format, *args)

    def do_POST(self):
        self._serve()

    def do_GET(self):
        self._serve()

    def do_PUT(self):
        self._serve()

    def _read_body(self):
        length = self.headers.get("Content-Length")
        if length is None:
            return b"" if self.command == "GET" else None
        return self.rfile.read(int(length))

    def _serve(self):
        request_id = creds.new_request_id()
        try:
            body = self._read_body()
            if body is None:
                answer = _Answer(411, b"Content-Length required\n", "text/plain")
            else:
                answer = self.server.emulator.route(self, body, request_id)
        except (ConnectionError, TimeoutError):
            raise
        except Exception as error:  # an emulator bug or an unreadable request: say so
            traceback.print_exc()
            self.close_connection = True
            answer = _kms_error(ApiError("InternalFailure", f"KMS emulator error: {error!r}",
                                        500))
        if answer.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._write(answer, request_id)

    def _write(self, answer, request_id):
        head = [f"HTTP/1.1 {answer.status} {REASONS.get(answer.status, 'Status')}",
                f"Content-Type: {answer.content_type}",
                f"Content-Length: {len(answer.body)}",
                f"x-amzn-RequestId: {request_id}",
                f"Date: {self.date_time_string(self.server.emulator.service_time())}"]
        if self.close_connection:
            head.append("Connection: close")
        data = ("\r\n".join(head) + "\r\n\r\n").encode() + answer.body
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # The plugin opens up to 64 connections at once (its event thread sends
    # every SignData in flight); socketserver's default backlog of 5 drops SYNs.
    request_queue_size = 128

    def __init__(self, address, emulator):
        self.emulator = emulator
        self._connections = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # the client went away
        super().handle_error(request, client_address)

    def track(self, connection, open_):
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_all_connections(self):
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Emulator:
    """The KMS/STS/IMDS/container emulator (see the module docstring)."""

    def __init__(self, region="us-east-2", account="111122223333", state_file=None,
                 port=0, verbose=False, clock_follows_emulator=False):
        self.region = region
        self.clock_follows_emulator = bool(clock_follows_emulator)
        self.account = account
        self.state_file = state_file
        self.verbose = verbose
        self.access_key_id = DEFAULT_AKID
        self.secret_access_key = DEFAULT_SECRET
        self.temp_credential_seconds = None
        self.container_token = "emulator-container-token"
        self.imds_role_name = "spire-server-role"
        self.expected_web_identity_token = None
        self._port = port
        self._clock_offset = 0.0
        self._lock = threading.Lock()
        self._faults = []
        self._fault_log = []
        self._calls = {}
        self._web_identity_tokens = []
        self._sso_grants = {}  # access token -> {"expiration": ..., "roles": {(account, role)}}
        self._server = None
        self._thread = None
        self.credentials = creds.CredentialTable(account)
        self.credentials.add(DEFAULT_AKID, DEFAULT_SECRET)
        self.imds_tokens = creds.ImdsTokens()
        self.store = KmsStore(region, account, self.now, self._save_state)
        self.tagging = TaggingApi(self.store, self.now)
        self._kms_service = _JsonService("kms", "kms", KMS_OPERATIONS, KMS_FAULT_ERRORS,
                                         lambda op: getattr(self.store, "op_" + op))
        self._tagging_service = _JsonService("resourcegroupstaggingapi", "tagging",
                                             TAGGING_OPERATIONS, TAGGING_FAULT_ERRORS,
                                             lambda op: getattr(self.tagging, op))
        if state_file and os.path.exists(state_file):
            with open(state_file, encoding="utf-8") as handle:
                saved = json.load(handle)
            self._clock_offset = saved.get("clock_offset", 0.0)
            self.store.load_dict(saved)

    # -- lifecycle --------------------------------------------------------
    def start(self):
        RSA_POOL.ensure_started()
        self._server = _Server(("127.0.0.1", self._port), self)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="kms-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server.close_all_connections()
        self._thread.join()
        self._server = None

    def __enter__(self):
        return self.start() if self._server is None else self

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    sts_url = url
    imds_url = url

    @property
    def container_url(self):
        return f"{self.url}/container-credentials/emulator"

    def plugin_env(self):
        """Environment for a plugin process using the default credentials."""
        return {"AWS_ACCESS_KEY_ID": self.access_key_id,
                "AWS_SECRET_ACCESS_KEY": self.secret_access_key}

    # -- control API --------------------------------------------------------
    def add_credentials(self, akid, secret, session_token=None, expiration=None):
        self.credentials.add(akid, secret, session_token, expiration)

    def configure(self, **settings):
        allowed = ("temp_credential_seconds", "container_token", "imds_role_name",
                   "expected_web_identity_token", "clock_follows_emulator")
        for name, value in settings.items():
            if name not in allowed:
                raise ValueError(f"unknown setting {name!r}; settable: {', '.join(allowed)}")
            setattr(self, name, value)

    def inject(self, operation, fault, count=1, latency_ms=0, after=0):
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        json_operations = KMS_OPERATIONS | TAGGING_OPERATIONS
        known = json_operations | set(STS_ACTIONS) | set(CREDENTIAL_LABELS) | {"*"}
        if operation not in known:
            raise ValueError(f"unknown operation {operation!r}")
        if fault in LOST_ANSWER_FAULTS and operation not in json_operations | {"*"}:
            raise ValueError(f"fault {fault!r} applies to KMS and tagging operations only")
        if operation in TAGGING_OPERATIONS and fault == "limit":
            raise ValueError("fault 'limit' does not apply to the tagging API (it has no "
                             "LimitExceededException)")
        with self._lock:
            self._faults.append({"operation": operation, "fault": fault,
                                 "remaining": int(count), "latency_ms": int(latency_ms),
                                 "after": int(after)})

    def clear_faults(self):
        with self._lock:
            self._faults.clear()

    def fault_log(self, since=0):
        with self._lock:
            return [dict(entry) for entry in self._fault_log[int(since):]]

    def calls(self, operation=None):
        with self._lock:
            if operation is not None:
                return self._calls.get(operation, 0)
            return dict(self._calls)

    def reset_calls(self):
        with self._lock:
            self._calls.clear()

    def now(self):
        return time.time() + self._clock_offset

    def service_time(self):
        """The clock answers' Date and the SigV4 time check use (see now())."""
        return self.now() if self.clock_follows_emulator else time.time()

    def advance_clock(self, seconds):
        with self._lock:
            self._clock_offset += float(seconds)
        self._save_state()
        return self.now()

    def create_key(self, spec, description="", creation_date=None, tags=None):
        key = self.store.create_key(spec, description, creation_date, tags=tags)
        self._save_state()
        return key.id

    def create_alias(self, name, key_id, last_updated=None):
        self.store.create_alias(name, key_id, last_updated)
        self._save_state()

    def disable_key(self, key_id):
        self.store.disable_key(key_id)
        self._save_state()

    def set_alias_last_updated(self, alias_name, epoch_seconds):
        self.store.set_alias_last_updated(alias_name, epoch_seconds)
        self._save_state()

    def set_key_creation_date(self, key_id, epoch_seconds):
        self.store.set_key_creation_date(key_id, epoch_seconds)
        self._save_state()

    def state(self):
        return self.store.snapshot()

    def web_identity_tokens(self):
        with self._lock:
            return list(self._web_identity_tokens)

    # -- bookkeeping --------------------------------------------------------
    def _save_state(self):
        if not self.state_file:
            return
        data = self.store.to_dict()
        data["clock_offset"] = self._clock_offset
        folder = os.path.dirname(os.path.abspath(self.state_file))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".kms-emulator-state.")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle)
            os.replace(tmp, self.state_file)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def _count_and_take_fault(self, label, is_kms, handler=None):
        with self._lock:
            self._calls[label] = self._calls.get(label, 0) + 1
            for fault in self._faults:
                matches = fault["operation"] == label or (fault["operation"] == "*" and is_kms)
                if matches and fault["remaining"] > 0 and fault["after"] > 0:
                    fault["after"] -= 1
                    continue
                if matches and fault["remaining"] > 0:
                    fault["remaining"] -= 1
                    self._fault_log.append({"seq": len(self._fault_log) + 1, "operation": label,
                                            "fault": fault["fault"],
                                            "akid": _signing_akid(handler), "at": time.time()})
                    return dict(fault)
        return None

    @staticmethod
    def _delay(fault):
        if fault and fault["latency_ms"] > 0:
            time.sleep(fault["latency_ms"] / 1000.0)  # the injected latency itself

    # -- routing ------------------------------------------------------------
    def route(self, handler, body, request_id):
        path, _, query = handler.path.partition("?")
        content_type = handler.headers.get("Content-Type", "")
        if path.startswith("/_emulator/"):
            return self._control(handler, path[len("/_emulator/"):], body)
        if handler.command == "POST" and (handler.headers.get("X-Amz-Target") is not None
                                          or content_type.startswith("application/x-amz-json")):
            return self._json(handler, body)
        if handler.command == "POST" and content_type.startswith(
                "application/x-www-form-urlencoded"):
            return self._sts(handler, body, request_id)
        if path == "/federation/credentials":
            return self._sso_role_credentials(handler, query)
        if path.startswith("/latest/"):
            return self._imds(handler, path)
        if path.startswith("/container-credentials/"):
            return self._container(handler)
        return _Answer(404, b"Not found\n", "text/plain")

    def _control(self, handler, method, body):
        if not handler.client_address[0].startswith("127.") and handler.client_address[0] != "::1":
            return _Answer(403, b'{"error": "control API is loopback only"}')
        if method not in CONTROL_METHODS or handler.command != "POST":
            return _json_answer(404, {"error": f"unknown control method {method!r}; one of "
                                               + ", ".join(CONTROL_METHODS)}, "application/json")
        try:
            kwargs = json.loads(body or b"{}")
            if not isinstance(kwargs, dict):
                raise ValueError("the body must be a JSON object of keyword arguments")
            result = getattr(self, method)(**kwargs)
        except ApiError as error:
            return _json_answer(400, {"error": error.code, "message": error.message},
                                "application/json")
        except (TypeError, ValueError) as error:
            return _json_answer(400, {"error": "BadRequest", "message": str(error)},
                                "application/json")
        return _json_answer(200, {"result": result}, "application/json")

    def _json_target(self, handler):
        """(service, operation) named by X-Amz-Target; KMS for anything unknown."""
        target = handler.headers.get("X-Amz-Target", "")
        if target.startswith(TAGGING_TARGET_PREFIX):
            return self._tagging_service, target[len(TAGGING_TARGET_PREFIX):]
        if target.startswith(KMS_TARGET_PREFIX):
            return self._kms_service, target[len(KMS_TARGET_PREFIX):]
        return self._kms_service, ""

    def _json(self, handler, body):
        service, operation = self._json_target(handler)
        label = operation if operation in service.operations else "UnknownOperation"
        fault = self._count_and_take_fault(label, service.is_kms, handler)
        if fault and fault["fault"] in LOST_ANSWER_FAULTS:
            return self._answer_lost(handler, service, operation, body, fault)
        self._delay(fault)
        if fault and fault["fault"] == "drop":
            return _Answer(drop=True)
        if fault and fault["fault"] in service.fault_errors:
            return _kms_error(ApiError(*reversed_fault(service.fault_errors[fault["fault"]])))
        try:
            return self._json_call(handler, service, operation, body)
        except ApiError as error:
            return _kms_error(error)

    def _answer_lost(self, handler, service, operation, body, fault):
        """Applies the request, then loses its answer (see inject)."""
        try:
            self._json_call(handler, service, operation, body)
        except ApiError as error:
            return _kms_error(error)
        self._delay(fault)
        error = LOST_ANSWER_FAULTS[fault["fault"]]
        if error is None:
            return _Answer(drop=True)
        return _kms_error(ApiError(*reversed_fault(service.fault_errors[error])))

    def _json_call(self, handler, service, operation, body):
        if operation not in service.operations:
            known = operation in operation_names(service.model)
            raise ApiError("UnknownOperationException",
                           f"The KMS emulator does not implement {operation}" if known
                           else f"Unknown operation in X-Amz-Target '{operation}'")
        content_type = handler.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type != "application/x-amz-json-1.1":
            raise ApiError("SerializationException",
                           "Content-Type must be application/x-amz-json-1.1")
        verify_sigv4(handler.command, handler.path, handler.headers, body, service.sigv4_name,
                     self.region, self.credentials.get, self.service_time())
        try:
            params = json.loads(body)
        except ValueError:
            raise ApiError("SerializationException",
                           "The request body is not a JSON document") from None
        try:
            params = validate(service.model, operation, params)
        except ApiError as error:
            if service.is_kms or error.code != "ValidationException":
                raise
            # The tagging API's error for a bad parameter (its model has no
            # ValidationException).
            raise ApiError("InvalidParameterException", error.message) from None
        return _json_answer(200, service.answer(operation)(params))

    def _sts(self, handler, body, request_id):
        params = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"),
                                             keep_blank_values=True))
        action = params.get("Action", "")
        fault = self._count_and_take_fault(action if action in STS_ACTIONS else
                                           "UnknownSTSAction", False, handler)
        self._delay(fault)
        if fault and fault["fault"] == "drop":
            return _Answer(drop=True)
        try:
            if fault and fault["fault"] in STS_FAULT_ERRORS:
                raise ApiError(*reversed_fault(STS_FAULT_ERRORS[fault["fault"]]))
            document = self._sts_call(handler, action, params, body, request_id)
            return _Answer(200, document, "text/xml")
        except ApiError as error:
            return _Answer(error.status, creds.sts_error_xml(error.code, error.message,
                                                             request_id, error.status < 500),
                           "text/xml")

    def _sts_call(self, handler, action, params, body, request_id):
        if action not in STS_ACTIONS:
            raise ApiError("InvalidAction", f"Could not find operation {action} for version "
                           "2011-06-15 (the emulator serves " + ", ".join(STS_ACTIONS) + ")")
        if params.get("Version") != "2011-06-15":
            raise ApiError("InvalidAction", "Version must be 2011-06-15")
        caller = None
        if action != "AssumeRoleWithWebIdentity":
            _, caller = verify_sigv4(handler.command, handler.path, handler.headers, body,
                                     "sts", self.region, self.credentials.get,
                                     self.service_time())
        typed = creds.sts_params(params)
        if action == "GetCallerIdentity":
            return creds.sts_result_xml(action, [("Arn", caller["arn"]),
                                                 ("UserId", caller["user_id"]),
                                                 ("Account", self.account)], request_id)
        if action == "AssumeRoleWithWebIdentity":
            self._check_web_identity(typed["WebIdentityToken"])
        lifetime = self.temp_credential_seconds
        if lifetime is None:
            lifetime = typed.get("DurationSeconds", creds.DEFAULT_TEMP_SECONDS)
        issued = self.credentials.issue_temporary(lifetime, creds.role_name_of(typed["RoleArn"]),
                                                  typed["RoleSessionName"])
        children = creds.assumed_role_children(issued, typed,
                                               action == "AssumeRoleWithWebIdentity")
        return creds.sts_result_xml(action, children, request_id)

    def _check_web_identity(self, token):
        with self._lock:
            self._web_identity_tokens.append(token)
        expected = self.expected_web_identity_token
        if expected is not None and token != expected:
            raise ApiError("InvalidIdentityToken",
                           "The web identity token is not the one the emulator expects")

    def _plain_fault(self, label):
        fault = self._count_and_take_fault(label, False)
        self._delay(fault)
        if fault and fault["fault"] == "drop":
            return _Answer(drop=True)
        if fault and fault["fault"] in PLAIN_FAULT_STATUS:
            status = PLAIN_FAULT_STATUS[fault["fault"]]
            return _Answer(status, f"injected fault {fault['fault']}\n".encode(), "text/plain")
        return None

    def _temporary(self, session_name):
        lifetime = self.temp_credential_seconds
        if lifetime is None:
            lifetime = creds.DEFAULT_TEMP_SECONDS
        return self.credentials.issue_temporary(lifetime, self.imds_role_name, session_name)

    def _imds(self, handler, path):
        if path == "/latest/api/token":
            return self._imds_token(handler)
        prefix = "/latest/meta-data/iam/security-credentials/"
        label = "imds_role" if path == prefix else "imds_credentials"
        early = self._plain_fault(label)
        if early:
            return early
        if handler.command != "GET":
            return _Answer(405, b"", "text/plain")
        if not self.imds_tokens.valid(handler.headers.get("X-aws-ec2-metadata-token")):
            return _Answer(401, b"", "text/plain")
        if path == prefix:
            return _Answer(200, self.imds_role_name.encode(), "text/plain")
        if path == prefix + self.imds_role_name:
            return _Answer(200, creds.imds_credentials_json(self._temporary("i-0emulator")),
                           "text/plain")
        if path == "/latest/meta-data/placement/region":
            return _Answer(200, self.region.encode(), "text/plain")
        return _Answer(404, b"", "text/plain")

    def _imds_token(self, handler):
        early = self._plain_fault("imds_token")
        if early:
            return early
        if handler.command != "PUT":
            return _Answer(405, b"", "text/plain")
        issued = self.imds_tokens.issue(handler.headers.get("X-aws-ec2-metadata-token-ttl-seconds"))
        if issued is None:
            return _Answer(400, b"", "text/plain")
        return _Answer(200, issued[0].encode(), "text/plain")

    def _container(self, handler):
        early = self._plain_fault("container_credentials")
        if early:
            return early
        if handler.command != "GET":
            return _Answer(405, b"", "text/plain")
        if handler.headers.get("Authorization") != self.container_token:
            return _json_answer(401, {"code": "AccessDenied",
                                      "message": "Authorization header is missing or wrong"},
                                "application/json")
        role_arn = f"arn:aws:iam::{self.account}:role/{self.imds_role_name}"
        return _Answer(200, creds.container_credentials_json(self._temporary("container"),
                                                             role_arn))

    # -- SSO portal (GetRoleCredentials) -------------------------------------
    def sso_grant(self, access_token, account_id, role_name, expiration=None):
        with self._lock:
            grant = self._sso_grants.setdefault(access_token, {"expiration": expiration,
                                                              "roles": set()})
            grant["expiration"] = expiration
            grant["roles"].add((account_id, role_name))

    def _sso_role_credentials(self, handler, query):
        early = self._plain_fault("GetRoleCredentials")
        if early:
            return early
        if handler.command != "GET":
            return _Answer(405, b"", "text/plain")
        args = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        params = {"roleName": args.get("role_name"), "accountId": args.get("account_id"),
                  "accessToken": handler.headers.get("x-amz-sso_bearer_token")}
        try:
            validate("sso", "GetRoleCredentials",
                     {k: v for k, v in params.items() if v is not None})
        except ApiError as error:
            return _json_answer(400, {"__type": "InvalidRequestException",
                                      "message": error.message}, "application/json")
        with self._lock:
            grant = self._sso_grants.get(params["accessToken"])
            grant = dict(grant, roles=set(grant["roles"])) if grant else None
        if grant is None or (grant["expiration"] is not None
                             and time.time() >= grant["expiration"]):
            return _json_answer(401, {"__type": "UnauthorizedException",
                                      "message": "Session token not found or invalid"},
                                "application/json")
        if (params["accountId"], params["roleName"]) not in grant["roles"]:
            return _json_answer(403, {"__type": "ForbiddenException", "message": "No access"},
                                "application/json")
        lifetime = self.temp_credential_seconds or creds.DEFAULT_TEMP_SECONDS
        issued = self.credentials.issue_temporary(
            lifetime, f"AWSReservedSSO_{params['roleName']}_emulator", "sso-user")
        return _json_answer(200, {"roleCredentials": {
            "accessKeyId": issued["AccessKeyId"], "secretAccessKey": issued["SecretAccessKey"],
            "sessionToken": issued["SessionToken"],
            "expiration": int(issued["Expiration"]) * 1000}}, "application/json")


def _signing_akid(handler):
    """The access key id a request's Authorization header names (not
    verified), or None."""
    if handler is None:
        return None
    authorization = handler.headers.get("Authorization") or ""
    _, found, rest = authorization.partition("Credential=")
    if not found:
        return None
    return rest.split("/", 1)[0] or None


def reversed_fault(fault):
    """(status, code, message) -> ApiError's (code, message, status)."""
    status, code, message = fault
    return code, message, status


def main(argv=None):
    parser = argparse.ArgumentParser(description="AWS KMS emulator (loopback only)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--region", default="us-east-2")
    parser.add_argument("--account", default="111122223333")
    parser.add_argument("--state-file")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--clock-follows-emulator", action="store_true",
                        help="answers' Date and the SigV4 time check follow the emulator clock")
    args = parser.parse_args(argv)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    emulator = Emulator(args.region, args.account, args.state_file, args.port,
                        args.verbose, args.clock_follows_emulator).start()
    print(f"KMS_EMULATOR_URL={emulator.url}", flush=True)
    while not stopping.wait(3600):
        pass
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
