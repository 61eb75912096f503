"""Core dumps of the plugin process (common/secrets.h): off from the start
(RLIMIT_CORE soft limit 0, hard limit kept), because a dump would hold the
AWS secret key, session tokens and every secret in freed memory; back on while
Configure sets log_level = "debug" (or "trace"), off again with any other
level. Read from /proc/<pid>/limits of the running plugin."""
import os
import resource

import pytest

from keymanager_helpers import hcl, plugin_env

CORE_LIMIT = 4096  # a soft limit for the plugin to inherit (and restore)


def core_limits(pid):
    """(soft, hard) of "Max core file size" in /proc/<pid>/limits."""
    with open(f"/proc/{pid}/limits") as limits:
        for line in limits:
            if line.startswith("Max core file size"):
                fields = line.split()
                return fields[4], fields[5]
    raise AssertionError("no core file size line")


@pytest.fixture
def inherited_core_limit():
    """The test process (and so the plugin) starts with a non-zero soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    wanted = CORE_LIMIT if hard == resource.RLIM_INFINITY or hard >= CORE_LIMIT else hard
    resource.setrlimit(resource.RLIMIT_CORE, (wanted, hard))
    yield str(wanted), "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
    resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))


def test_core_dumps_off_unless_debug(start_plugin, kms, tmp_path, inherited_core_limit):
    soft, hard = inherited_core_limit
    assert soft != "0"
    asan = os.environ.get("ASAN_OPTIONS", "")
    # AddressSanitizer zeroes the soft limit itself at start unless told not to.
    env = plugin_env(kms, ASAN_OPTIONS=(asan + ":" if asan else "") + "disable_coredump=0")
    host = start_plugin(extra_env=env, cwd=str(tmp_path))
    host.init()
    assert core_limits(host.pid) == ("0", hard)

    metadata = str(tmp_path / "key_metadata")
    host.configure(hcl(kms, metadata, 'log_level = "debug"'))
    assert core_limits(host.pid) == (soft, hard)

    host.configure(hcl(kms, metadata, 'log_level = "info"'))
    assert core_limits(host.pid) == ("0", hard)

    host.configure(hcl(kms, metadata, 'log_level = "trace"'))
    assert core_limits(host.pid) == (soft, hard)
    host.configure(hcl(kms, metadata))
    assert core_limits(host.pid) == ("0", hard)
