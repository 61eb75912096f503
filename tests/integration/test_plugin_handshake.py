"""go-plugin handshake as SPIRE's host sees it: the magic cookie, protocol
version negotiation, the private socket directory and the one stdout line;
and every stderr line in hclog's JSON format."""
import os
import re
import stat
import subprocess

import pytest

from pluginhost.host import (HandshakeError, PluginCheckError, PluginHost, parse_handshake,
                             socket_dir_of, spire_env)

HANDSHAKE_RE = re.compile(r"^1\|1\|unix\|(/[^|\n]+)\|grpc\|\n$")
TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def run_binary(plugin_binary, args=(), env=None, timeout=10):
    return subprocess.run([plugin_binary, *args], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=timeout)


def env_without_cookie(**extra):
    env = {k: v for k, v in os.environ.items() if k != "KeyManager"}
    env.update(extra)
    return env


def test_handshake_line_format_and_private_socket_dir(start_plugin, tmp_path):
    host = start_plugin(extra_env={"PLUGIN_UNIX_SOCKET_DIR": str(tmp_path)})
    match = HANDSHAKE_RE.match(host.handshake)
    assert match, host.handshake
    socket_path = match.group(1)
    directory, mode = socket_dir_of(socket_path)
    assert os.path.dirname(directory) == str(tmp_path)
    assert mode == 0o700
    assert stat.S_ISSOCK(os.stat(socket_path).st_mode)
    assert host.health() == 1


def test_socket_dir_falls_back_to_tmpdir(start_plugin, tmp_path):
    host = start_plugin(extra_env={"PLUGIN_UNIX_SOCKET_DIR": None, "TMPDIR": str(tmp_path)})
    directory, mode = socket_dir_of(host.socket_path)
    assert os.path.dirname(directory) == str(tmp_path)
    assert mode == 0o700


def test_each_instance_gets_its_own_directory(start_plugin, tmp_path):
    first = start_plugin(extra_env={"PLUGIN_UNIX_SOCKET_DIR": str(tmp_path)})
    second = start_plugin(extra_env={"PLUGIN_UNIX_SOCKET_DIR": str(tmp_path)})
    assert os.path.dirname(first.socket_path) != os.path.dirname(second.socket_path)
    assert first.health() == 1 and second.health() == 1


def test_version_list_containing_1_is_accepted(start_plugin):
    host = start_plugin(extra_env={"PLUGIN_PROTOCOL_VERSIONS": "2,1"})
    assert host.handshake_fields[1] == "1"


def test_protocol_version_refused_without_stdout(plugin_binary, tmp_path):
    env = spire_env({"PLUGIN_PROTOCOL_VERSIONS": "2", "PLUGIN_UNIX_SOCKET_DIR": str(tmp_path)})
    result = run_binary(plugin_binary, env=env)
    assert result.returncode == 1
    assert result.stdout == b""
    assert b"protocol version" in result.stderr
    assert b"speaks 1" in result.stderr
    assert os.listdir(tmp_path) == []


def test_multiplex_request_gets_a_seventh_field(start_plugin):
    host = start_plugin(extra_env={"PLUGIN_MULTIPLEX_GRPC": "true"})
    assert host.handshake.endswith("|grpc||false\n")
    assert host.health() == 1


@pytest.mark.parametrize("cookie", [None, "wrong"])
def test_without_cookie_explains_and_exits_1(plugin_binary, cookie):
    env = env_without_cookie(PLUGIN_PROTOCOL_VERSIONS="1")
    if cookie is not None:
        env["KeyManager"] = cookie
    result = run_binary(plugin_binary, env=env)
    assert result.returncode == 1
    assert result.stdout == b""
    text = result.stderr.decode()
    assert "SPIRE" in text and "plugin_cmd" in text
    assert "not meant to be executed directly" in text
    assert "--help" in text and "--version" in text


def test_help_and_version_without_cookie(plugin_binary):
    version = run_binary(plugin_binary, ["--version"], env=env_without_cookie())
    assert version.returncode == 0
    assert re.match(rb"^spire-aws-kms \d+\.\d+\.\d+\n$", version.stdout)
    usage = run_binary(plugin_binary, ["--help"], env=env_without_cookie())
    assert usage.returncode == 0
    assert b"usage:" in usage.stdout


def test_parse_handshake_rejects_bad_lines():
    with pytest.raises(HandshakeError):
        parse_handshake("1|1|unix|/tmp/x|netrpc|\n")
    with pytest.raises(HandshakeError):
        parse_handshake("1|1|unix|/tmp/x|grpc\n")
    assert parse_handshake("1|1|unix|/tmp/x|grpc|\n")[3] == "/tmp/x"


def test_stdout_one_line_and_stderr_all_hclog_json(start_plugin, tmp_path):
    host = start_plugin(cwd=str(tmp_path))
    host.init()
    host.health()
    host.validate("this is { not hcl")
    with pytest.raises(Exception):
        host.raw_unary("/no.Such/Method", b"")
    host.shutdown()
    assert host.wait(5) == 0
    host.drain_output()
    assert host.stdout_lines() == [host.handshake]
    records = host.log_records()
    assert records, "the plugin logged nothing"
    for record in records:
        assert isinstance(record, dict), f"non-JSON stderr line: {record!r}"
        assert isinstance(record.get("@level"), str)
        assert record["@level"] in ("trace", "debug", "info", "warn", "error")
        assert isinstance(record.get("@message"), str)
        assert TIMESTAMP_RE.match(record.get("@timestamp", "")), record
    started = [r for r in records if r["@message"] == "plugin started"]
    assert len(started) == 1 and started[0]["@level"] == "info"
    assert started[0]["socket"] == host.socket_path



def test_harness_fails_on_sanitizer_reports(tmp_path):
    fake = tmp_path / "fake-plugin"
    fake.write_text("#!/bin/sh\necho '1|1|unix|/tmp/none.sock|grpc|'\n"
                    "echo '==1==ERROR: LeakSanitizer: detected memory leaks' >&2\n")
    fake.chmod(0o755)
    host = PluginHost(str(fake), connect=False)
    host.wait(5)
    with pytest.raises(PluginCheckError):
        host.close()
