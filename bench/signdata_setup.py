"""Set-up shared by the SignData benchmarks (bench_signdata.py, profile_sign.py):
the KMS emulator, the C KMS stub in front of it (bench/kms_stub.c), and a plugin
started as SPIRE starts it (tests/pluginhost/host.py: go-plugin handshake, broker
and stdio streams, Init, Configure with the stub as KMS and STS endpoint,
GenerateKey for the keys a SPIRE >= 1.14.3 server makes). The timed calls are
then made by the C clients on the plugin's socket.

    with KmsBench(build_dir) as kms:                 # emulator + stub
        plugin = kms.start_plugin(binary, workdir)   # configured, keys made
        plugin.pid, plugin.socket_path, plugin.rss_after_configure_kib
        kms.key_arn(plugin, "x509-CA-A"); kms.set_sign_delay_ms(5); kms.stub_stats()
"""
import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGION = "us-east-2"
AKID = "AKIDEMULATOR"
SECRET = "emulator-secret"
TRUST_DOMAIN = "example.org"
# SPIRE >= 1.14.3 always makes the A and B slots of its X.509 CA, JWT and WIT
# signers; EC P-256 is SPIRE's default key type for all three.
SPIRE_KEYS = ("x509-CA-A", "x509-CA-B", "JWT-Signer-A", "JWT-Signer-B",
              "WIT-Signer-A", "WIT-Signer-B")
SIGNING_KEY = "x509-CA-A"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def set_up_imports(build_dir):
    for path in (os.path.join(build_dir, "py"), os.path.join(REPO_DIR, "tests")):
        if path not in sys.path:
            sys.path.insert(0, path)


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def rss_parts_kib(pid):
    """RssAnon (our heap, stacks, anonymous mappings), RssFile (pages of the
    binary and the shared libraries) and RssShmem of a process."""
    parts = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("RssAnon", "RssFile", "RssShmem"):
                parts[name] = int(value.split()[0])
    return parts


def cpu_seconds(pid):
    """utime + stime of a process (all its threads, exited ones included)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def read_line_with(process, prefix, timeout, what):
    """The value after prefix on the first stdout line that has it."""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(deadline - time.monotonic()):
                line = process.stdout.readline()
                if line.startswith(prefix):
                    return line.strip().split("=", 1)[1]
                if not line:
                    break
    raise RuntimeError(f"{what} did not print its {prefix} line")


class StubProcess:
    """bench_kms_stub in front of the emulator at upstream_url."""

    def __init__(self, build_dir, upstream_url, sign_delay_ms=0):
        binary = os.path.join(build_dir, "bench_kms_stub")
        # stderr (start-up errors, the stats line at exit) goes to a file.
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [binary, "--upstream", upstream_url, "--sign-delay-ms", str(sign_delay_ms)],
            stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        try:
            self.url = read_line_with(self.process, "KMS_STUB_URL=", 30, binary)
        except RuntimeError as error:
            text = self.stderr_text()
            self.stop()
            raise RuntimeError(f"{error}: {text}") from None

    def stderr_text(self):
        self.stderr.seek(0)
        return self.stderr.read()

    def control(self, path, body=None):
        request = urllib.request.Request(f"{self.url}/_stub/{path}", data=body,
                                         method="GET" if body is None else "POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    def stop(self):
        """SIGTERM; a stub that does not exit cleanly says why on stderr."""
        if self.process.poll() is None:
            self.process.terminate()
        code = self.process.wait(30)
        self.process.stdout.close()
        if code != 0:
            print(f"bench_kms_stub exited with {code}: {self.stderr_text()[-4000:]}",
                  file=sys.stderr)
        self.stderr.close()


class Plugin:
    """A configured plugin: the host harness plus what the benchmarks read."""

    def __init__(self, host, workdir, rss_after_configure_kib):
        self.host = host
        self.workdir = workdir
        self.rss_after_configure_kib = rss_after_configure_kib
        self.rss_parts_after_configure_kib = {}

    @property
    def pid(self):
        return self.host.pid

    @property
    def socket_path(self):
        return self.host.socket_path

    def server_id(self):
        with open(os.path.join(self.workdir, "server_id"), encoding="ascii") as f:
            return f.read().strip()


class KmsBench:
    """The emulator and the stub; plugins started against them."""

    def __init__(self, build_dir):
        from emulator.emulator_process import EmulatorProcess

        self.build_dir = build_dir
        self.plugins = []
        self.emulator = EmulatorProcess(region=REGION)
        try:
            self.stub = StubProcess(build_dir, self.emulator.url)
        except Exception:
            self.emulator.stop()
            raise

    def start_plugin(self, binary, workdir, wrapper=None, timeout=60):
        """Starts binary (or wrapper, a script exec'ing it) as SPIRE does,
        configures it with the stub as KMS and STS endpoint and makes
        SPIRE_KEYS."""
        from pluginhost.host import PluginHost

        env = {"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET,
               "AWS_ENDPOINT_URL_STS": self.stub.url, "AWS_ENDPOINT_URL": None,
               "AWS_ENDPOINT_URL_KMS": None}
        host = PluginHost(wrapper or binary, extra_env=env, cwd=workdir,
                          handshake_timeout=timeout)
        plugin = Plugin(host, workdir, None)
        self.plugins.append(plugin)
        host.init(timeout=timeout)
        host.configure(f'region = "{REGION}"\n\nendpoint = "{self.stub.url}"\n\n'
                       f'key_metadata_file = "{workdir}/server_id"\n\nlog_level = "warn"',
                       trust_domain=TRUST_DOMAIN, timeout=timeout)
        plugin.rss_after_configure_kib = vm_rss_kib(host.pid)
        plugin.rss_parts_after_configure_kib = rss_parts_kib(host.pid)
        for key_id in SPIRE_KEYS:
            host.generate_key(key_id, "EC_P256", timeout=timeout)
        return plugin

    def key_arn(self, plugin, key_id):
        """The ARN of the KMS key behind one of the plugin's keys (its alias
        ends in /<server id>/<key id>)."""
        suffix = f"/{plugin.server_id()}/{key_id}"
        state = self.emulator.state()
        arns = {key["id"]: key["arn"] for key in state["keys"]}
        for alias in state["aliases"]:
            if alias["name"].endswith(suffix):
                return arns[alias["key_id"]]
        raise RuntimeError(f"no alias ending in {suffix}")

    def sign_request_bytes(self, key_arn, digest):
        """The exact HTTP/1.1 bytes of a SigV4-signed KMS Sign request to the
        stub, with the body the plugin sends for the same key and digest."""
        import base64

        from emulator.raw_client import kms_request, sign

        body = (f'{{"KeyId":"{key_arn}","Message":"{base64.b64encode(digest).decode()}",'
                f'"MessageType":"DIGEST","SigningAlgorithm":"ECDSA_SHA_256"}}').encode()
        request = sign(kms_request(self.stub.url, "Sign", body), AKID, SECRET, region=REGION)
        host = self.stub.url.split("://", 1)[1]
        lines = ["POST / HTTP/1.1", f"Host: {host}"]
        lines += [f"{name}: {value}" for name, value in request.headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def set_sign_delay_ms(self, milliseconds):
        self.stub.control("sign_delay_ms", str(milliseconds).encode())

    def stub_stats(self):
        return self.stub.control("stats")

    def close(self):
        try:
            for plugin in self.plugins:
                plugin.host.close()
        finally:
            try:
                self.stub.stop()
            finally:
                self.emulator.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
