"""A go-plugin host for tests: launches the plugin binary exactly as SPIRE
server does and talks to it over gRPC with python3-grpcio.

    from pluginhost.host import PluginHost

    with PluginHost("build/spire-aws-kms", extra_env={"AWS_REGION": "us-east-2"}) as host:
        host.init()
        valid, notes = host.validate('region = "us-east-2"')
        host.configure('region = "us-east-2"\\n\\nkey_metadata_file = "./id"')
        key = host.generate_key("x509-CA-A", "EC_P256")   # PublicKey message
        sig = host.sign_data("x509-CA-A", digest, hash_algorithm="SHA256")
        host.shutdown(); assert host.wait(5) == 0

PluginHost(binary, extra_env=None, cwd=None, args=(), start=True, ...)
  Launch: env = os.environ + KeyManager=KeyManager, PLUGIN_PROTOCOL_VERSIONS=1,
  PLUGIN_MIN_PORT=0, PLUGIN_MAX_PORT=0, + extra_env (a value None removes a
  variable). stdin is /dev/null, stdout and stderr are pipes read by threads.
  The handshake line is read and every field validated (HandshakeError on any
  problem); then, like go-plugin 1.8 under SPIRE, the host connects to
  "unix:<path>", opens plugin.GRPCBroker/StartStream and sends
  ConnInfo{service_id:1, network:"unix", address:<temp socket path>} (Accept(1)),
  and calls plugin.GRPCStdio/StreamStdio once.

Attributes: process, pid, handshake (the raw line), handshake_fields (list),
socket_path, handshake_seconds (exec to handshake line), channel.

RPCs (all raise grpc.RpcError on a non-OK status; timeout in seconds):
  init(host_service_names=SPIRE's three) -> list of plugin service names
  deinit(); shutdown(); health(service="plugin") -> status int (1 = SERVING)
  validate(hcl, trust_domain="example.org") -> (valid, [notes])
  configure(hcl, trust_domain="example.org")
  generate_key(key_id, key_type) -> PublicKey      key_type: "EC_P256" or int
  get_public_key(key_id) -> PublicKey or None (OK with no key)
  get_public_keys() -> [PublicKey]
  sign_data(key_id, data, hash_algorithm=None, pss=None) -> SignDataResponse
        hash_algorithm: "SHA256" or int; pss: (salt_length, hash)
  raw_unary(path, payload_bytes) -> response bytes (any method, any bytes)
  *_future variants for concurrency: call_future(name, request) -> grpc future

Process: wait(timeout) -> returncode (raises subprocess.TimeoutExpired),
kill(), alive(), broker_open() (the broker stream has not ended),
stdio_open(), log_records() (stderr lines parsed as JSON dicts; other lines
kept as str), stderr_lines(start=0) (raw lines from index start, to read
only new ones), stderr_text(), stdout_lines() (everything read from stdout,
the handshake line included), sanitizer_reports().

close(): ends the plugin (Shutdown RPC and up to 5 s to exit, then SIGKILL),
closes the channel, waits for the pipes to drain, and raises
PluginCheckError when the plugin's stderr holds a sanitizer report
(AddressSanitizer, UndefinedBehaviorSanitizer "runtime error:", LeakSanitizer).
The class is a context manager (close() on exit).
"""
import json
import os
import queue
import re
import stat
import subprocess
import tempfile
import threading
import time

import grpc
from google.protobuf import empty_pb2

from goplugin.broker import goplugin_broker_pb2 as broker_pb2
from goplugin.stdio import goplugin_stdio_pb2 as stdio_pb2
from spire.plugin.server.keymanager.v1 import keymanager_pb2 as km_pb2
from spire.service.common.config.v1 import config_pb2
from spire.service.private.init.v1 import init_pb2

KEYMANAGER = "/spire.plugin.server.keymanager.v1.KeyManager/"
CONFIG = "/spire.service.common.config.v1.Config/"
INIT = "/spire.service.private.init.v1.Init/"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
BROKER_STREAM = "/plugin.GRPCBroker/StartStream"
CONTROLLER_SHUTDOWN = "/plugin.GRPCController/Shutdown"
STDIO_STREAM = "/plugin.GRPCStdio/StreamStdio"

SPIRE_HOST_SERVICES = (
    "spire.hostservice.server.identityprovider.v1.IdentityProvider",
    "spire.hostservice.server.agentstore.v1.AgentStore",
    "spire.hostservice.common.metrics.v1.Metrics",
)
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")
# KM_VALGRIND=1 runs the plugin under valgrind's memcheck; with -q it prints
# only errors and definite/indirect leaks, each line starting "==PID== ".
VALGRIND = os.environ.get("KM_VALGRIND") == "1"
VALGRIND_COMMAND = ("valgrind", "-q", "--leak-check=full", "--show-leak-kinds=definite,indirect",
                    "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99")
VALGRIND_REPORT = re.compile(r"^==\d+== ")
SERVING = 1


class HandshakeError(Exception):
    """The plugin did not produce a valid go-plugin handshake line."""


class PluginCheckError(AssertionError):
    """The plugin's output broke a rule (e.g. a sanitizer report on stderr)."""


def key_type(value):
    """KeyType number from a name ("EC_P256") or a number."""
    return value if isinstance(value, int) else km_pb2.KeyType.Value(value)


def hash_algorithm(value):
    """HashAlgorithm number from a name ("SHA256") or a number."""
    return value if isinstance(value, int) else km_pb2.HashAlgorithm.Value(value)


def encode_health_request(service):
    """grpc.health.v1.HealthCheckRequest{service} by hand (field 1, string)."""
    data = service.encode()
    return b"\x0a" + _varint(len(data)) + data if data else b""


def decode_health_status(payload):
    """HealthCheckResponse.status (field 1, varint); 0 when absent."""
    index, status = 0, 0
    while index < len(payload):
        key, index = _read_varint(payload, index)
        if key & 7 != 0:
            raise ValueError("unexpected wire type in HealthCheckResponse")
        value, index = _read_varint(payload, index)
        if key >> 3 == 1:
            status = value
    return status


def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data, index):
    shift, value = 0, 0
    while True:
        byte = data[index]
        index += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, index


def _identity(data):
    return data


def spire_env(extra_env=None):
    """The environment SPIRE gives a KeyManager plugin, plus extra_env."""
    env = dict(os.environ)
    env.update({
        "KeyManager": "KeyManager",
        "PLUGIN_PROTOCOL_VERSIONS": "1",
        "PLUGIN_MIN_PORT": "0",
        "PLUGIN_MAX_PORT": "0",
    })
    for name, value in (extra_env or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def parse_handshake(line, multiplex_requested=False):
    """Validates a handshake line like go-plugin does and returns its fields."""
    if not line.endswith("\n"):
        raise HandshakeError(f"handshake line not terminated by a newline: {line!r}")
    fields = line[:-1].split("|")
    expected = 7 if multiplex_requested else 6
    if len(fields) != expected:
        raise HandshakeError(f"handshake line has {len(fields)} fields: {line!r}")
    core, app, network, address, protocol, cert = fields[:6]
    if core != "1":
        raise HandshakeError(f"core protocol version {core!r}, want 1")
    if app != "1":
        raise HandshakeError(f"app protocol version {app!r}, want 1")
    if network != "unix":
        raise HandshakeError(f"network {network!r}, want unix")
    if not os.path.isabs(address):
        raise HandshakeError(f"socket address {address!r} is not an absolute path")
    if protocol != "grpc":
        raise HandshakeError(f"protocol {protocol!r}, want grpc")
    if cert != "":
        raise HandshakeError(f"server certificate {cert!r}, want empty (AutoMTLS is off)")
    if len(fields) == 7 and fields[6] not in ("true", "false"):
        raise HandshakeError(f"multiplex field {fields[6]!r}")
    return fields


class PluginHost:
    """See the module docstring: SPIRE-like host for one plugin process."""

    def __init__(self, binary, extra_env=None, cwd=None, args=(), start=True,
                 handshake_timeout=15.0, connect=True):
        self.binary = binary
        self.env = spire_env(extra_env)
        self.cwd = cwd
        self.args = list(args)
        self.handshake_timeout = handshake_timeout
        self.process = None
        self.channel = None
        self.handshake = None
        self.handshake_fields = None
        self.socket_path = None
        self.handshake_seconds = None
        self._stdout_lines = []
        self._stderr_lines = []
        self._lock = threading.Lock()
        self._stdout_queue = queue.Queue()
        self._readers = []
        self._broker_requests = queue.Queue()
        self._broker_call = None
        self._broker_done = threading.Event()
        self._stdio_call = None
        self._stdio_done = threading.Event()
        self._broker_dir = None
        self._closed = False
        if start:
            self.start(connect=connect)

    # --- process and handshake -------------------------------------------------

    def start(self, connect=True):
        started = time.monotonic()
        command = [self.binary] + self.args
        if VALGRIND:
            command = list(VALGRIND_COMMAND) + command
        self.process = subprocess.Popen(
            command, env=self.env, cwd=self.cwd,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._start_reader(self.process.stdout, self._on_stdout_line)
        self._start_reader(self.process.stderr, self._on_stderr_line)
        try:
            line = self._stdout_queue.get(timeout=self.handshake_timeout)
        except queue.Empty:
            self.kill()
            raise HandshakeError(f"no handshake line within {self.handshake_timeout} s; "
                                 f"stderr: {self.stderr_text()[-2000:]}")
        if line is None:
            self.wait(5)
            raise HandshakeError(f"plugin exited ({self.process.returncode}) before the "
                                 f"handshake; stderr: {self.stderr_text()[-2000:]}")
        self.handshake_seconds = time.monotonic() - started
        self.handshake = line
        self.handshake_fields = parse_handshake(
            line, multiplex_requested="PLUGIN_MULTIPLEX_GRPC" in self.env)
        self.socket_path = self.handshake_fields[3]
        if connect:
            self.connect()
        return self

    def connect(self):
        self.channel = grpc.insecure_channel("unix:" + self.socket_path)
        grpc.channel_ready_future(self.channel).result(timeout=10)
        self._open_broker()
        self._open_stdio()

    def _start_reader(self, pipe, on_line):
        thread = threading.Thread(target=self._read_pipe, args=(pipe, on_line), daemon=True)
        thread.start()
        self._readers.append(thread)

    @staticmethod
    def _read_pipe(pipe, on_line):
        for raw in iter(pipe.readline, b""):
            on_line(raw.decode("utf-8", errors="replace"))
        on_line(None)
        pipe.close()

    def _on_stdout_line(self, line):
        if line is not None:
            with self._lock:
                self._stdout_lines.append(line)
        self._stdout_queue.put(line)

    def _on_stderr_line(self, line):
        if line is None:
            return
        with self._lock:
            self._stderr_lines.append(line.rstrip("\n"))

    @property
    def pid(self):
        return self.process.pid

    def alive(self):
        return self.process.poll() is None

    def wait(self, timeout):
        """Waits for the plugin to exit; returns its exit code."""
        return self.process.wait(timeout=timeout)

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def drain_output(self, timeout=10.0):
        """After exit: waits until both pipes reached end of file."""
        deadline = time.monotonic() + timeout
        for thread in self._readers:
            thread.join(max(0.0, deadline - time.monotonic()))

    # --- output ------------------------------------------------------------------

    def stdout_lines(self):
        with self._lock:
            return list(self._stdout_lines)

    def stderr_lines(self, start=0):
        """Stderr lines read so far, from index start (to read only new ones)."""
        with self._lock:
            return self._stderr_lines[start:]

    def stderr_text(self):
        return "\n".join(self.stderr_lines())

    def log_records(self):
        """Stderr lines: JSON objects as dicts, anything else as the raw str."""
        records = []
        for line in self.stderr_lines():
            try:
                value = json.loads(line)
            except ValueError:
                value = None
            records.append(value if isinstance(value, dict) else line)
        return records

    def sanitizer_reports(self):
        return [line for line in self.stderr_lines()
                if any(marker in line for marker in SANITIZER_MARKERS)
                or (VALGRIND and VALGRIND_REPORT.match(line))]

    # --- go-plugin housekeeping streams ------------------------------------------

    def _open_broker(self):
        self._broker_dir = tempfile.mkdtemp(prefix="plugin-host-")
        address = os.path.join(self._broker_dir, "broker1.sock")
        stream = self.channel.stream_stream(
            BROKER_STREAM, request_serializer=broker_pb2.ConnInfo.SerializeToString,
            response_deserializer=broker_pb2.ConnInfo.FromString)

        def requests():
            while True:
                item = self._broker_requests.get()
                if item is None:
                    return
                yield item

        self._broker_call = stream(requests())
        self._broker_requests.put(
            broker_pb2.ConnInfo(service_id=1, network="unix", address=address))
        threading.Thread(target=self._drain_stream,
                         args=(self._broker_call, self._broker_done), daemon=True).start()

    def _open_stdio(self):
        stream = self.channel.unary_stream(
            STDIO_STREAM, request_serializer=empty_pb2.Empty.SerializeToString,
            response_deserializer=stdio_pb2.StdioData.FromString)
        self._stdio_call = stream(empty_pb2.Empty())
        threading.Thread(target=self._drain_stream,
                         args=(self._stdio_call, self._stdio_done), daemon=True).start()

    @staticmethod
    def _drain_stream(call, done):
        try:
            for _ in call:
                pass
        except grpc.RpcError:
            pass
        finally:
            done.set()

    def broker_open(self):
        return self._broker_call is not None and not self._broker_done.is_set()

    def stdio_open(self):
        return self._stdio_call is not None and not self._stdio_done.is_set()

    def broker_status(self, timeout=5.0):
        """Waits for the broker stream to end; returns its grpc.StatusCode."""
        if not self._broker_done.wait(timeout):
            return None
        return self._broker_call.code()

    def stdio_status(self, timeout=5.0):
        if not self._stdio_done.wait(timeout):
            return None
        return self._stdio_call.code()

    def send_broker_message(self, conn_info):
        self._broker_requests.put(conn_info)

    # --- RPCs ------------------------------------------------------------------------

    def _unary(self, path, request_type, response_type):
        return self.channel.unary_unary(
            path, request_serializer=request_type.SerializeToString,
            response_deserializer=response_type.FromString)

    _METHODS = {
        "Init": (INIT + "Init", init_pb2.InitRequest, init_pb2.InitResponse),
        "Deinit": (INIT + "Deinit", init_pb2.DeinitRequest, init_pb2.DeinitResponse),
        "Shutdown": (CONTROLLER_SHUTDOWN, broker_pb2.Empty, broker_pb2.Empty),
        "Validate": (CONFIG + "Validate", config_pb2.ValidateRequest,
                     config_pb2.ValidateResponse),
        "Configure": (CONFIG + "Configure", config_pb2.ConfigureRequest,
                      config_pb2.ConfigureResponse),
        "GenerateKey": (KEYMANAGER + "GenerateKey", km_pb2.GenerateKeyRequest,
                        km_pb2.GenerateKeyResponse),
        "GetPublicKey": (KEYMANAGER + "GetPublicKey", km_pb2.GetPublicKeyRequest,
                         km_pb2.GetPublicKeyResponse),
        "GetPublicKeys": (KEYMANAGER + "GetPublicKeys", km_pb2.GetPublicKeysRequest,
                          km_pb2.GetPublicKeysResponse),
        "SignData": (KEYMANAGER + "SignData", km_pb2.SignDataRequest,
                     km_pb2.SignDataResponse),
    }

    def call(self, name, request, timeout=30.0):
        path, request_type, response_type = self._METHODS[name]
        return self._unary(path, request_type, response_type)(request, timeout=timeout)

    def call_future(self, name, request, timeout=30.0):
        path, request_type, response_type = self._METHODS[name]
        return self._unary(path, request_type, response_type).future(request, timeout=timeout)

    def raw_unary(self, path, payload, timeout=30.0):
        method = self.channel.unary_unary(path, request_serializer=_identity,
                                          response_deserializer=_identity)
        return method(payload, timeout=timeout)

    def raw_unary_future(self, path, payload, timeout=30.0):
        method = self.channel.unary_unary(path, request_serializer=_identity,
                                          response_deserializer=_identity)
        return method.future(payload, timeout=timeout)

    def init(self, host_service_names=SPIRE_HOST_SERVICES, timeout=10.0):
        request = init_pb2.InitRequest(host_service_names=list(host_service_names))
        return list(self.call("Init", request, timeout).plugin_service_names)

    def deinit(self, timeout=10.0):
        self.call("Deinit", init_pb2.DeinitRequest(), timeout)

    def shutdown(self, timeout=5.0):
        self.call("Shutdown", broker_pb2.Empty(), timeout)

    def health(self, service="plugin", timeout=10.0):
        return decode_health_status(
            self.raw_unary(HEALTH_CHECK, encode_health_request(service), timeout))

    def health_future(self, service="plugin", timeout=30.0):
        return self.raw_unary_future(HEALTH_CHECK, encode_health_request(service), timeout)

    @staticmethod
    def _core(trust_domain):
        return config_pb2.CoreConfiguration(trust_domain=trust_domain)

    def validate(self, hcl, trust_domain="example.org", timeout=30.0):
        request = config_pb2.ValidateRequest(core_configuration=self._core(trust_domain),
                                             hcl_configuration=hcl)
        response = self.call("Validate", request, timeout)
        return response.valid, list(response.notes)

    def configure(self, hcl, trust_domain="example.org", timeout=60.0):
        request = config_pb2.ConfigureRequest(core_configuration=self._core(trust_domain),
                                              hcl_configuration=hcl)
        self.call("Configure", request, timeout)

    def generate_key(self, key_id, key_type_value, timeout=60.0):
        request = km_pb2.GenerateKeyRequest(key_id=key_id, key_type=key_type(key_type_value))
        return self.call("GenerateKey", request, timeout).public_key

    def get_public_key(self, key_id, timeout=30.0):
        response = self.call("GetPublicKey", km_pb2.GetPublicKeyRequest(key_id=key_id), timeout)
        return response.public_key if response.HasField("public_key") else None

    def get_public_keys(self, timeout=30.0):
        return list(self.call("GetPublicKeys", km_pb2.GetPublicKeysRequest(), timeout).public_keys)

    @staticmethod
    def sign_request(key_id, data, hash_algorithm_value=None, pss=None):
        request = km_pb2.SignDataRequest(key_id=key_id, data=data)
        if pss is not None:
            salt_length, pss_hash = pss
            request.pss_options.salt_length = salt_length
            request.pss_options.hash_algorithm = hash_algorithm(pss_hash)
        elif hash_algorithm_value is not None:
            request.hash_algorithm = hash_algorithm(hash_algorithm_value)
        return request

    def sign_data(self, key_id, data, hash_algorithm=None, pss=None, timeout=60.0):
        return self.call("SignData", self.sign_request(key_id, data, hash_algorithm, pss), timeout)

    # --- ending ------------------------------------------------------------------------

    def close(self):
        """Ends the plugin (Shutdown, then SIGKILL after 5 s) and checks stderr."""
        if self._closed:
            return
        self._closed = True
        if self.process is not None and self.alive() and self.channel is not None:
            try:
                self.shutdown(timeout=5)
            except grpc.RpcError:
                pass
            try:
                # valgrind's leak check runs at exit and takes a while.
                self.wait(60 if VALGRIND else 5)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        self._broker_requests.put(None)
        for call in (self._broker_call, self._stdio_call):
            if call is not None:
                call.cancel()
        if self.channel is not None:
            self.channel.close()
        self.drain_output()
        if self._broker_dir is not None:
            os.rmdir(self._broker_dir)
        reports = self.sanitizer_reports()
        if reports:
            raise PluginCheckError("sanitizer report in the plugin's stderr:\n"
                                   + self.stderr_text()[-8000:])

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def socket_dir_of(socket_path):
    """The plugin's private directory and its permission bits."""
    directory = os.path.dirname(socket_path)
    return directory, stat.S_IMODE(os.stat(directory).st_mode)
