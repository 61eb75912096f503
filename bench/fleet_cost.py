#!/usr/bin/python3
"""KMS calls per run of each fleet task (printed, never asserted), measured
with the KMS emulator's call counters, next to upstream spire's awskms for
the same account:

    account: A aliases, K keys, O of them ours (one alias each), D stale
    aliases of another server of our trust domain, U keys without an alias.

    /usr/bin/python3 bench/fleet_cost.py [--build-dir build] [--aliases 250]
                                         [--keys 1200] [--ours 4] [--stale 3]
"""
import argparse
import math
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAR = "1000h"
TASK_INTERVALS = {"refresh_aliases": "refresh_aliases_interval",
                  "dispose_aliases": "dispose_aliases_interval",
                  "dispose_keys": "dispose_keys_interval"}


def setup_paths(build_dir):
    for path in (os.path.join(build_dir, "py"), os.path.join(REPO, "tests"),
                 os.path.join(REPO, "tests", "integration")):
        sys.path.insert(0, path)


def populate(kms, args):
    """Other servers' and applications' keys and aliases; returns (U, D)."""
    now = time.time()
    other_keys = args.keys - args.ours - args.stale
    aliased_other = 0
    app_aliases = args.aliases - args.ours - args.stale - 10  # AWS's ten alias/aws/*
    for i in range(other_keys):
        key = kms.create_key("ECC_NIST_P256", f"application key {i}",
                             creation_date=now - 90 * 86400)
        if aliased_other < app_aliases:
            kms.create_alias(f"alias/app-{i:05d}", key)
            aliased_other += 1
    for i in range(args.stale):
        key = kms.create_key("ECC_NIST_P256", f"SPIRE_SERVER_KEY/example_org/k{i}")
        kms.create_alias(f"alias/SPIRE_SERVER/example_org/peer/k{i}", key,
                         last_updated=now - 400 * 86400)
    return other_keys - aliased_other, args.stale


def runs(binary, kms, task, args, workdir):
    from pluginhost.host import PluginHost
    from keymanager_helpers import hcl, plugin_env, wait_until

    intervals = {name: FAR for name in TASK_INTERVALS.values()}
    intervals["refresh_aliases_interval"] = "42h"  # the longest allowed
    intervals[TASK_INTERVALS[task]] = "2s"
    extra = "\n\n".join(f'{k} = "{v}"' for k, v in intervals.items()) + '\n\nlog_level = "debug"'
    host = PluginHost(binary, extra_env=plugin_env(kms), cwd=workdir)
    try:
        host.init()
        host.configure(hcl(kms, os.path.join(workdir, "key_metadata"), extra))
        have = {key.id for key in host.get_public_keys()}
        for i in range(args.ours):
            if f"key-{i}" not in have:
                host.generate_key(f"key-{i}", "EC_P256")
        results = []
        for number in (1, 2):
            kms.reset_calls()
            records = wait_until(lambda: [r for r in host.log_records() if isinstance(r, dict)
                                          and r.get("task") == task][number - 1:], 30, task)
            calls = {op: n for op, n in kms.calls().items() if op != "ScheduleKeyDeletion"}
            results.append((int(records[0]["calls"]), calls))
        return results
    finally:
        host.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=os.path.join(REPO, "build"))
    parser.add_argument("--aliases", type=int, default=250)
    parser.add_argument("--keys", type=int, default=1200)
    parser.add_argument("--ours", type=int, default=4)
    parser.add_argument("--stale", type=int, default=3)
    args = parser.parse_args()
    build_dir = os.path.abspath(args.build_dir)
    setup_paths(build_dir)
    from emulator.kms_emulator import Emulator

    binary = os.path.join(build_dir, "spire-aws-kms")
    with Emulator() as kms, tempfile.TemporaryDirectory() as workdir:
        unaliased, stale = populate(kms, args)
        a, k, o = args.aliases, args.keys, args.ours
        pa, pk = math.ceil(a / 100), math.ceil(k / 1000)
        upstream = {"refresh_aliases": o, "dispose_aliases": pa + 2 * stale,
                    "dispose_keys": pk + k}  # + ListAliases per key in TD: never, see notes
        print(f"account: A={a} aliases, K={k} keys, O={o} ours, D={stale} stale, "
              f"U={unaliased} unaliased")
        print(f"{'task':<16} {'run':>3} {'ours':>6} {'upstream':>9}  calls (emulator)")
        for task in ("refresh_aliases", "dispose_keys", "dispose_aliases"):
            for number, (logged, calls) in enumerate(runs(binary, kms, task, args, workdir), 1):
                theirs = pa if (task, number) == ("dispose_aliases", 2) else upstream[task]
                print(f"{task:<16} {number:>3} {logged:>6} {theirs:>9}  {calls}")


if __name__ == "__main__":
    main()
