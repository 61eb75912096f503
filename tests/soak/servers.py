"""The soak's SPIRE servers: plugin processes started as SPIRE starts them
(pluginhost.host.PluginHost: go-plugin handshake, broker, Init, Configure),
each signing with its own access key so that the emulator's fault log tells
which server a fault hit. Short fleet intervals, the smallest ages the plugin
accepts. Stop, stop for good, restart; the plugin's debug log is read
incrementally for its fleet task runs ("task run finished")."""
import calendar
import json
import os
import time

import grpc

from pluginhost.host import PluginHost

TRUST_DOMAIN = "example.org"
ALIAS_PREFIX = "alias/SPIRE_SERVER/example_org/"
KEY_DESCRIPTION_PREFIX = "SPIRE_SERVER_KEY/example_org/"
STALE_ALIAS_AGE_H = 168
ORPHAN_KEY_AGE_H = 24
FLEET_HCL = (f'refresh_aliases_interval = "1s"\n\ndispose_aliases_interval = "1s"\n\n'
             f'dispose_keys_interval = "2s"\n\nstale_alias_age = "{STALE_ALIAS_AGE_H}h"\n\n'
             f'orphan_key_age = "{ORPHAN_KEY_AGE_H}h"\n\nlog_level = "debug"')
TASKS = ("refresh_aliases", "dispose_aliases", "dispose_keys")
# The deletion queue's settle delay (5 minutes in production): longer than a
# refresh write may take to land (its 10 s deadline, retries included).
SETTLE_MS = 12000


class SoakServer:
    """One SPIRE server's KeyManager plugin. identity: a shared
    key_identifier_value (replicas), or None for a server id file;
    max_attempts: the plugin's setting (None: its default, 3); 1 makes every
    fault that hits a call fail it, so the unknown-outcome paths run often."""

    def __init__(self, name, binary, emulator, workdir, identity=None, max_attempts=None,
                 settle_ms=SETTLE_MS):
        self.name = name
        self.max_attempts = max_attempts
        self.binary = binary
        self.emulator = emulator
        self.workdir = workdir
        self.identity = identity
        self.akid = "AKIDSOAK" + "".join(c for c in name.upper() if c.isalnum())
        self.secret = f"soak-secret-{name}"
        emulator.add_credentials(akid=self.akid, secret=self.secret)
        self.env = {"AWS_ACCESS_KEY_ID": self.akid, "AWS_SECRET_ACCESS_KEY": self.secret,
                    "AWS_ENDPOINT_URL_STS": emulator.url, "KM_STARTUP_RETRY_MS": "20000",
                    "KM_ALIAS_SETTLE_MS": str(settle_ms)}
        os.makedirs(workdir, exist_ok=True)
        self.host = None
        self.server_id = identity
        self.alive = False
        self.gone_for_good = False
        self.starts = 0
        self.configure_failures = 0
        self._log_index = 0
        self._runs = dict.fromkeys(TASKS, 0)
        self.notable = []  # warn/error records (dicts), for the report on failure
        self.log_files = []

    def hcl(self):
        if self.identity is not None:
            who = f'key_identifier_value = "{self.identity}"'
        else:
            who = f'key_metadata_file = "{os.path.join(self.workdir, "key_metadata")}"'
        attempts = f"max_attempts = {self.max_attempts}\n\n" if self.max_attempts else ""
        return (f'region = "us-east-2"\n\nendpoint = "{self.emulator.url}"\n\n{who}\n\n'
                + attempts + FLEET_HCL)

    def start(self, deadline_s=60.0):
        """Starts the process and configures it, retrying Configure (faults may
        refuse its start-up listing) until it works or deadline_s passed."""
        self.host = PluginHost(self.binary, extra_env=self.env, cwd=self.workdir)
        self._log_index = 0
        self.starts += 1
        self.host.init()
        give_up = time.monotonic() + deadline_s
        while True:
            try:
                self.host.configure(self.hcl(), TRUST_DOMAIN)
                break
            except grpc.RpcError:
                self.configure_failures += 1
                if time.monotonic() > give_up:
                    raise
        if self.server_id is None:
            with open(os.path.join(self.workdir, "key_metadata"), encoding="utf-8") as handle:
                self.server_id = handle.read().strip()
        self.alive = True

    def stop(self, for_good=False):
        """Shutdown as SPIRE does (the plugin stops its tasks and exits)."""
        self.alive = False
        self.gone_for_good = for_good
        self.poll_log()
        self.host.close()
        self._save_log()

    def _save_log(self):
        path = os.path.join(self.workdir, f"plugin-{self.starts}.log")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("\n".join(self.host.stderr_lines()) + "\n")
        self.log_files.append(path)

    def close(self):
        if self.host is not None and self.alive:
            self.stop()

    # -- the plugin's log ------------------------------------------------------
    def poll_log(self):
        """Reads the lines logged since the last poll; counts task runs."""
        lines = self.host.stderr_lines(self._log_index)
        self._log_index += len(lines)
        for line in lines:
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("@message") == "task run finished":
                self._runs[record.get("task")] = self._runs.get(record.get("task"), 0) + 1
            elif record.get("@level") in ("warn", "error"):
                self.notable.append(record)

    def runs(self, task=None):
        self.poll_log()
        return sum(self._runs.values()) if task is None else self._runs[task]

    def log_since(self, timestamp_s, message_prefix):
        """Notable records at or after timestamp_s (epoch) whose message starts so."""
        found = []
        for record in self.notable:
            if record.get("@message", "").startswith(message_prefix) and \
                    parse_timestamp(record.get("@timestamp", "")) >= timestamp_s:
                found.append(record)
        return found


def parse_timestamp(text):
    """hclog's '2025-01-02T03:04:05.123456Z' to epoch seconds (0 if unreadable)."""
    try:
        whole, _, fraction = text.rstrip("Z").partition(".")
        seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
        return seconds + float("0." + (fraction or "0"))
    except ValueError:
        return 0.0


def wait_for_runs(servers, task, more, timeout_s):
    """Waits until each server logged `more` further runs of task (None: any
    task) than when called. Returns the servers that did not, at the deadline."""
    targets = {server.name: server.runs(task) + more for server in servers}
    deadline = time.monotonic() + timeout_s
    while True:
        late = [s for s in servers if s.alive and s.runs(task) < targets[s.name]]
        if not late or time.monotonic() > deadline:
            return late
        time.sleep(0.05)
