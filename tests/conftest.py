"""Shared pytest set-up: makes the generated protobuf modules (<build>/py) and
the test helpers under tests/ importable, and registers the shared fixtures
(the plugin host harness and the KMS emulator)."""
import os
import sys

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(TESTS_DIR)
BUILD_DIR = os.path.abspath(os.path.join(REPO_DIR, os.environ.get("KM_BUILD_DIR", "build")))

for path in (os.path.join(BUILD_DIR, "py"), TESTS_DIR):
    if path not in sys.path:
        sys.path.insert(0, path)

pytest_plugins = ["pluginhost.fixtures", "emulator.fixtures"]
