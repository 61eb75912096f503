"""pytest fixtures for the plugin host harness (pluginhost.host.PluginHost).

plugin_binary   absolute path of <KM_BUILD_DIR or "build">/spire-aws-kms (relative
                to the repository root); the test fails clearly when it is missing.
start_plugin    factory: start_plugin(extra_env=None, cwd=None, **kwargs) -> a started
                PluginHost (handshake checked, broker and stdio streams open).
                Every host it made is closed at teardown; close() fails the test
                when the plugin's stderr holds a sanitizer report.
"""
import os

import pytest

from pluginhost.host import PluginHost

REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_dir():
    return os.path.abspath(os.path.join(REPO_DIR, os.environ.get("KM_BUILD_DIR", "build")))


@pytest.fixture(scope="session")
def plugin_binary():
    path = os.path.join(build_dir(), "spire-aws-kms")
    if not os.access(path, os.X_OK):
        pytest.fail(f"plugin binary {path} is missing: build it first "
                    f"(cmake --build {build_dir()}), or set KM_BUILD_DIR")
    return path


@pytest.fixture
def start_plugin(plugin_binary):
    hosts = []

    def start(extra_env=None, cwd=None, **kwargs):
        host = PluginHost(plugin_binary, extra_env=extra_env, cwd=cwd, start=False, **kwargs)
        hosts.append(host)
        host.start(connect=kwargs.get("connect", True))
        return host

    yield start
    errors = []
    for host in hosts:
        try:
            host.close()
        except AssertionError as error:
            errors.append(str(error))
    if errors:
        pytest.fail("\n".join(errors))
