"""Lifecycle: Shutdown RPC, SIGTERM and SIGINT take one graceful path (exit 0,
socket and directory removed, quickly); a host that dies without Shutdown
(SIGKILL) is noticed and the plugin exits on its own."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from pluginhost.host import SERVING


def wait_until(condition, timeout, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def assert_cleaned_up(socket_path):
    assert not os.path.exists(socket_path)
    assert not os.path.exists(os.path.dirname(socket_path))


def test_shutdown_rpc_exits_0_within_1s_and_cleans_up(start_plugin):
    host = start_plugin()
    host.init()
    host.deinit()
    started = time.monotonic()
    host.shutdown()
    assert host.wait(1.0) == 0
    assert time.monotonic() - started < 1.0
    assert_cleaned_up(host.socket_path)
    host.drain_output()
    messages = [r.get("@message") for r in host.log_records() if isinstance(r, dict)]
    assert "plugin stopped" in messages


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_takes_the_graceful_path(start_plugin, signum):
    host = start_plugin()
    assert host.health() == SERVING
    started = time.monotonic()
    os.kill(host.pid, signum)
    assert host.wait(1.0) == 0
    assert time.monotonic() - started < 1.0
    assert_cleaned_up(host.socket_path)
    host.drain_output()
    stopping = [r for r in host.log_records()
                if isinstance(r, dict) and r.get("@message") == "stopping"]
    assert stopping and stopping[0]["reason"] == signum.name


def test_second_signal_during_stop_is_harmless(start_plugin):
    host = start_plugin()
    os.kill(host.pid, signal.SIGTERM)
    os.kill(host.pid, signal.SIGINT)
    assert host.wait(2.0) == 0
    assert_cleaned_up(host.socket_path)


def test_shutdown_lets_an_in_flight_worker_call_finish(start_plugin):
    host = start_plugin()
    pending = [host.call_future("SignData", host.sign_request("k", b"\x00" * 32, "SHA256"))
               for _ in range(8)]
    host.shutdown()
    for future in pending:  # every call gets its real answer, none is cut off
        assert future.exception(timeout=5) is not None
        assert future.code().name == "FAILED_PRECONDITION"
    assert host.wait(2.0) == 0


HOST_SCRIPT = textwrap.dedent("""
    import sys
    sys.path[:0] = {paths!r}
    from pluginhost.host import PluginHost
    host = PluginHost({binary!r})
    host.init()
    print(host.pid, host.socket_path, flush=True)
    sys.stdin.read()  # until killed
""")


def process_gone(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            return any(line.startswith("State:") and "Z" in line.split()[1]
                       for line in status)
    except FileNotFoundError:
        return True


def test_plugin_exits_when_the_host_is_killed(plugin_binary):
    paths = [p for p in sys.path if p.endswith("/py") or p.endswith("/tests")]
    script = HOST_SCRIPT.format(paths=paths, binary=plugin_binary)
    host = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        line = host.stdout.readline()
        pid_text, socket_path = line.split()
        pid = int(pid_text)
        assert not process_gone(pid)
        host.kill()
        host.wait()
        assert wait_until(lambda: process_gone(pid), timeout=5.0), "plugin outlived its host"
        assert wait_until(lambda: not os.path.exists(os.path.dirname(socket_path)), 2.0)
    finally:
        host.kill()
        host.wait()
