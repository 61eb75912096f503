#!/usr/bin/python3
"""KMS calls and wall time of `spire-aws-kms keys list` on a large account
(printed, never asserted), measured with the KMS emulator's call counters:

    K keys, of which A have a SPIRE alias of a live server, the next T carry
    the spire-* tags of a live tag-mode server (fresh spire-last-update, no
    alias), and the rest are orphans of a dead one (SPIRE's description, no
    alias).

The listing's budget is ceil(K/1000) ListKeys + ceil((A+10)/100) ListAliases
pages (AWS's ten alias/aws/* count) + ceil(T/100) GetResources pages (at least
one; AWS may return fewer than 100 a page) + one DescribeKey per key without an
alias (and per aliased key tagged spire-active=true without spire-last-update:
none here).

    /usr/bin/python3 bench/keys_list_cost.py [--build-dir build] [--keys 10000]
                                             [--aliases 1000] [--tagged 1000]
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default="build")
    parser.add_argument("--keys", type=int, default=10000)
    parser.add_argument("--aliases", type=int, default=1000)
    parser.add_argument("--tagged", type=int, default=1000)
    args = parser.parse_args()
    sys.path.insert(0, os.path.join(REPO, "tests"))
    from emulator.kms_emulator import Emulator

    binary = os.path.join(REPO, args.build_dir, "spire-aws-kms")
    with Emulator() as kms:
        now = kms.now()
        tags = {"spire-server-td": "example.org", "spire-server-id": "tag-peer",
                "spire-active": "true", "spire-key-id": "x509-CA-A",
                "spire-last-update": str(int(now - 3600))}
        for i in range(args.keys):
            tagged = args.aliases <= i < args.aliases + args.tagged
            key = kms.create_key("ECC_NIST_P256", f"SPIRE_SERVER_KEY/example_org/k{i}",
                                 creation_date=now - 9 * 86400, tags=tags if tagged else None)
            if i < args.aliases:
                kms.create_alias(f"alias/SPIRE_SERVER/example_org/live-{i:06d}/x509-CA-A", key,
                                 last_updated=now - 3600)
        kms.reset_calls()
        env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "AWS_REGION": "us-east-2",
               "AWS_ENDPOINT_URL": kms.url, "AWS_EC2_METADATA_DISABLED": "true",
               **kms.plugin_env()}
        started = time.monotonic()
        result = subprocess.run([binary, "keys", "list", "--json"], env=env,
                                capture_output=True, text=True, check=True)
        elapsed = time.monotonic() - started
        summary = json.loads(result.stdout)["summary"]
        calls = kms.calls()
    budget = {"ListKeys": math.ceil(args.keys / 1000),
              "ListAliases": math.ceil((args.aliases + 10) / 100),
              "GetResources": max(1, math.ceil(args.tagged / 100)),
              "DescribeKey": args.keys - args.aliases}
    print(f"account: {args.keys} keys, {args.aliases + 10} aliases, {args.tagged} tagged keys")
    print(f"KMS calls: {calls} (budget {budget})")
    print(f"verdicts: {summary['by_verdict']}")
    print(f"wall time against the emulator (loopback): {elapsed:.1f} s")


if __name__ == "__main__":
    main()
