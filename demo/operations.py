"""The operator commands on a realistic account, as a transcript: the output
of doc/operations.md is this script's, run against the KMS emulator.

Builds the account with the real plugin (a live server, and a server that
made its keys and died 20 days ago), plus old and young orphans, a key
pending deletion, a disabled one, another trust domain and an application's
key; and a tag-mode fleet (cli_helpers.build_tag_fleet: a live and a dead
tag-mode server made by the real plugin in tag mode, keys tagged as upstream
tags them, one of example.org2, one with a malformed spire-last-update); then
runs `keys list`, `keys prune` (dry run, then --yes), `keys list` without
tag:GetResources, and `doctor` (healthy, tag mode without tag:GetResources,
wrong secret, denied permission, unreachable endpoint).

    /usr/bin/python3 demo/operations.py --build-dir build
"""
import argparse
import os
import shlex
import subprocess
import sys
import tempfile

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DAY = 86400


def set_up_imports(build_dir):
    for path in (os.path.join(build_dir, "py"), os.path.join(REPO_DIR, "tests"),
                 os.path.join(REPO_DIR, "tests", "integration")):
        if path not in sys.path:
            sys.path.insert(0, path)


class Plugins:
    """start_plugin as the tests' fixture gives it, for a script."""

    def __init__(self, binary):
        self.binary = binary
        self.hosts = []

    def __call__(self, extra_env=None, cwd=None):
        from pluginhost.host import PluginHost
        host = PluginHost(self.binary, extra_env=extra_env, cwd=cwd)
        self.hosts.append(host)
        return host

    def close(self):
        for host in self.hosts:
            host.close()


def run(binary, env, *args, shown_env=""):
    print(f"$ {shown_env}spire-aws-kms {' '.join(shlex.quote(a) for a in args)}")
    result = subprocess.run([binary, *args], env=env, capture_output=True, text=True,
                            check=False)
    print((result.stdout + result.stderr).rstrip("\n"))
    print(f"(exit {result.returncode})\n")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default="build")
    args = parser.parse_args()
    build_dir = os.path.join(REPO_DIR, args.build_dir)
    set_up_imports(build_dir)
    from cli_helpers import build_account, build_tag_fleet, cli_env
    from emulator.kms_emulator import Emulator

    binary = os.path.join(build_dir, "spire-aws-kms")
    with tempfile.TemporaryDirectory() as scratch, Emulator() as kms:
        from pathlib import Path
        scratch = Path(scratch)
        plugins = Plugins(binary)
        try:
            build_account(plugins, kms, scratch)
            build_tag_fleet(plugins, kms, scratch)
        finally:
            plugins.close()
        home = scratch / "home"
        home.mkdir()
        env = cli_env(kms, home)
        print(f"# AWS_ENDPOINT_URL={kms.url} (the emulator), AWS_REGION=us-east-2\n")
        run(binary, env, "keys", "list")
        run(binary, env, "keys", "prune", "--trust-domain", "example.org")
        run(binary, env, "keys", "prune", "--trust-domain", "example.org", "--yes")
        run(binary, env, "keys", "list", "--trust-domain", "example.org", "--json")
        kms.inject("GetResources", "access_denied", count=1)
        run(binary, env, "keys", "list", "--trust-domain", "example.org2")

        config = scratch / "plugin_data.hcl"
        config.write_text(f'region = "us-east-2"\n'
                          f'key_metadata_file = "{scratch / "live" / "key_metadata"}"\n')
        run(binary, env, "doctor", "--config", str(config), "--trust-domain", "example.org")
        tag_config = scratch / "plugin_data_tag_mode.hcl"
        tag_config.write_text(f'region = "us-east-2"\n'
                              f'key_metadata_file = "{scratch / "tag-live" / "key_metadata"}"\n'
                              f'enable_tag_based_key_discovery = true\n')
        kms.inject("GetResources", "access_denied", count=1)
        run(binary, env, "doctor", "--config", str(tag_config), "--trust-domain", "example.org")
        run(binary, dict(env, AWS_SECRET_ACCESS_KEY="not-the-secret"), "doctor",
            "--trust-domain", "example.org", shown_env="AWS_SECRET_ACCESS_KEY=... ")
        kms.inject("ListKeys", "access_denied", count=5)
        kms.inject("DescribeKey", "access_denied", count=5)
        run(binary, env, "doctor", "--trust-domain", "example.org")
        kms.clear_faults()
        run(binary, env, "doctor", "--endpoint", "https://kms.us-east-2.amazonaws.invalid")
        sso_profile(binary, kms, env, home)


SSO_CONFIG = """[profile dev]
sso_session = corp
sso_account_id = 111122223333
sso_role_name = SpireOperator
region = us-east-2

[sso-session corp]
sso_start_url = https://my-sso-portal.awsapps.com/start
sso_region = us-east-2
"""


def sso_profile(binary, kms, env, home):
    """An SSO profile: what `aws sso login` caches (written with botocore's
    own cache code), then the token expired."""
    import time

    from botocore.utils import JSONFileCache, SSOTokenLoader

    (home / "aws-config").write_text(SSO_CONFIG)
    env = {k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    token = "demo-sso-access-token"

    def login(expires_in):
        cache = JSONFileCache(str(home / ".aws" / "sso" / "cache"))
        expires_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + expires_in))
        SSOTokenLoader(cache=cache).save_token(
            "https://my-sso-portal.awsapps.com/start",
            {"accessToken": token, "expiresAt": expires_at}, session_name="corp")

    kms.sso_grant(token, "111122223333", "SpireOperator", expiration=time.time() + 3600)
    login(3600)
    run(binary, env, "doctor", "--profile", "dev")
    login(-600)
    run(binary, env, "keys", "list", "--profile", "dev")


if __name__ == "__main__":
    main()
