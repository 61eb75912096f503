#!/usr/bin/python3
"""KMS and tagging API calls of Configure and of one run of each fleet task
(printed, never asserted), in alias mode and in tag mode
(enable_tag_based_key_discovery), measured with the KMS emulator's call
counters, next to upstream spire's awskms (SPIRE 1.15) for the same account:

    account: A aliases, K keys, O of them ours (one alias each), D stale
    aliases of a dead alias-mode server of our trust domain, T keys of live
    tag-mode peers (tagged and aliased), S stale tagged keys of dead tag-mode
    servers (unaliased), U keys without an alias.

Each mode gets a fresh emulator with the same account. A task runs in its own
plugin process with that task's interval at 2 s (the others far away); run 1
does the work (deletes what is stale), run 2 is the steady state. "ours" is
the plugin's own count for the task (its debug log); the emulator column
counts every request in the run's window, the deletion queue's included
(ScheduleKeyDeletion left out). "upstream" is computed from its code
(doc/upstream-tag-mode-notes.md; page size P = 100 assumed for GetResources,
whose default AWS does not document).

    /usr/bin/python3 bench/fleet_cost.py [--build-dir build] [--aliases 250]
        [--keys 1200] [--ours 6] [--stale 3] [--tagged 12] [--stale-tagged 3]
"""
import argparse
import math
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAR = "1000h"
SPIRE_KEYS = ("x509-CA-A", "x509-CA-B", "JWT-Signer-A", "JWT-Signer-B", "WIT-Signer-A",
              "WIT-Signer-B")
TASK_INTERVALS = {"refresh_aliases": "refresh_aliases_interval",
                  "dispose_aliases": "dispose_aliases_interval",
                  "dispose_keys": "dispose_keys_interval",
                  "dispose_keys_via_tags": "dispose_keys_interval"}
TASKS = {"alias": ("refresh_aliases", "dispose_aliases", "dispose_keys"),
         "tag": ("refresh_aliases", "dispose_aliases", "dispose_keys_via_tags")}
DAY = 86400


def setup_paths(build_dir):
    for path in (os.path.join(build_dir, "py"), os.path.join(REPO, "tests"),
                 os.path.join(REPO, "tests", "integration")):
        sys.path.insert(0, path)


def spire_tags(server, key_id, stamp):
    return {"spire-server-td": "example.org", "spire-server-id": server, "spire-active": "true",
            "spire-key-id": key_id, "spire-last-update": str(int(stamp))}


def populate(kms, args):
    """Other servers' and applications' keys and aliases; returns U."""
    now = time.time()
    fixed = args.ours + args.stale + args.tagged + args.stale_tagged
    other_keys = args.keys - fixed
    app_aliases = args.aliases - args.ours - args.stale - args.tagged - 10  # AWS's alias/aws/*
    aliased_other = 0
    for i in range(other_keys):
        key = kms.create_key("ECC_NIST_P256", f"application key {i}",
                             creation_date=now - 90 * DAY)
        if aliased_other < app_aliases:
            kms.create_alias(f"alias/app-{i:05d}", key)
            aliased_other += 1
    for i in range(args.stale):
        key = kms.create_key("ECC_NIST_P256", f"SPIRE_SERVER_KEY/example_org/k{i}")
        kms.create_alias(f"alias/SPIRE_SERVER/example_org/dead-alias-mode/k{i}", key,
                         last_updated=now - 400 * DAY)
    for i in range(args.tagged):
        server, key_id = f"live-{i // 6}", SPIRE_KEYS[i % 6]
        key = kms.create_key("ECC_NIST_P256", f"SPIRE_SERVER_KEY/example_org/{key_id}",
                             creation_date=now - 30 * DAY, tags=spire_tags(server, key_id, now))
        kms.create_alias(f"alias/SPIRE_SERVER/example_org/{server}/{key_id}", key)
    for i in range(args.stale_tagged):
        key_id = SPIRE_KEYS[i % 6]
        kms.create_key("ECC_NIST_P256", f"SPIRE_SERVER_KEY/example_org/{key_id}",
                       creation_date=now - 60 * DAY,
                       tags=spire_tags(f"dead-{i // 6}", key_id, now - 30 * DAY))
    return other_keys - aliased_other


def plugin_hcl(kms, workdir, mode, task):
    from keymanager_helpers import hcl
    intervals = {name: FAR for name in set(TASK_INTERVALS.values())}
    intervals["refresh_aliases_interval"] = "42h"  # the longest allowed
    if task is not None:
        intervals[TASK_INTERVALS[task]] = "2s"
    extra = "\n\n".join(f'{k} = "{v}"' for k, v in intervals.items())
    flag = "true" if mode == "tag" else "false"
    extra += f'\n\nlog_level = "debug"\n\nenable_tag_based_key_discovery = {flag}'
    return hcl(kms, os.path.join(workdir, "key_metadata"), extra)


def start(binary, kms, workdir):
    from keymanager_helpers import plugin_env
    from pluginhost.host import PluginHost
    env = plugin_env(kms, AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API=kms.url)
    host = PluginHost(binary, extra_env=env, cwd=workdir)
    host.init()
    return host


def emulator_calls(kms):
    return {op: n for op, n in sorted(kms.calls().items()) if op != "ScheduleKeyDeletion"}


def configure_cost(binary, kms, mode, workdir):
    """Creates our keys (first Configure), then measures a second Configure."""
    host = start(binary, kms, workdir)
    try:
        host.configure(plugin_hcl(kms, workdir, mode, None))
        have = {key.id for key in host.get_public_keys()}
        for key_id in SPIRE_KEYS[:ARGS.ours]:
            if key_id not in have:
                host.generate_key(key_id, "EC_P256")
    finally:
        host.close()
    host = start(binary, kms, workdir)
    try:
        kms.reset_calls()
        host.configure(plugin_hcl(kms, workdir, mode, None))
        calls = emulator_calls(kms)
        return sum(calls.values()), calls
    finally:
        host.close()


QUEUE_DONE = ("Key scheduled", "Key already", "Key kept", "Key not deleted: this server",
              "Key to delete does not exist")


def queue_done(host):
    """Keys the deletion queue has finished with (scheduled, found scheduled, kept)."""
    return sum(1 for r in host.log_records() if isinstance(r, dict)
               and r.get("@module") == "deletion_queue"
               and str(r.get("@message", "")).startswith(QUEUE_DONE))


def runs(binary, kms, mode, task, workdir):
    from keymanager_helpers import wait_until
    host = start(binary, kms, workdir)
    try:
        host.configure(plugin_hcl(kms, workdir, mode, task))
        results = []
        disposed = 0
        for number in (1, 2):
            kms.reset_calls()
            records = wait_until(lambda: [r for r in host.log_records() if isinstance(r, dict)
                                          and r.get("task") == task][number - 1:], 30, task)
            disposed += int(records[0]["disposed"])
            # the run's window includes the deletion queue's work on its keys
            wait_until(lambda: queue_done(host) >= disposed, 30, "the deletion queue")
            results.append((int(records[0]["calls"]), emulator_calls(kms)))
        return results
    finally:
        host.close()


def upstream_cost(mode, task, number, a, k, o, d, t, s):
    """Upstream's calls per run (its code; P = 100 for GetResources)."""
    pa, pk = math.ceil(a / 100), math.ceil(k / 1000)
    k_td = o + t + s
    if task == "configure":
        alias_scan = pa + 2 * o
        return alias_scan if mode == "alias" else math.ceil(o / 100) + 2 * o + alias_scan
    if task == "refresh_aliases":
        return 2 * o if mode == "alias" else 3 * o  # + keep-active's TagResource per key
    if task == "dispose_aliases":
        if mode == "tag":
            return None  # does not run in tag mode
        return pa + (2 * d if number == 1 else 0)
    if task == "dispose_keys":
        return pk + k  # a DescribeKey for every key, every run
    # disposeKeysViaTags: one listing; schedule + a TagResource that KMS refuses
    # per stale key, again every run while the key is pending (7 days)
    return math.ceil(k_td / 100) + 2 * s


def main():
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=os.path.join(REPO, "build"))
    parser.add_argument("--aliases", type=int, default=250)
    parser.add_argument("--keys", type=int, default=1200)
    parser.add_argument("--ours", type=int, default=6)
    parser.add_argument("--stale", type=int, default=3)
    parser.add_argument("--tagged", type=int, default=12)
    parser.add_argument("--stale-tagged", type=int, default=3)
    ARGS = args = parser.parse_args()
    build_dir = os.path.abspath(args.build_dir)
    setup_paths(build_dir)
    from emulator.kms_emulator import Emulator

    binary = os.path.join(build_dir, "spire-aws-kms")
    a, k, o, d = args.aliases, args.keys, args.ours, args.stale
    t, s = args.tagged, args.stale_tagged
    printed_account = False
    print(f"{'mode':<5} {'task':<22} {'run':>3} {'ours':>6} {'upstream':>9}  "
          "calls seen by the emulator (deletion queue included)")
    for mode in ("alias", "tag"):
        with Emulator() as kms, tempfile.TemporaryDirectory() as workdir:
            unaliased = populate(kms, args)
            if not printed_account:
                print(f"# account: A={a} aliases, K={k} keys, O={o} ours, D={d} stale aliases, "
                      f"T={t} live tagged keys, S={s} stale tagged keys, U={unaliased} unaliased")
                printed_account = True
            total, calls = configure_cost(binary, kms, mode, workdir)
            theirs = upstream_cost(mode, "configure", 1, a, k, o, d, t, s)
            print(f"{mode:<5} {'Configure':<22} {'':>3} {total:>6} {theirs:>9}  {calls}")
            for task in TASKS[mode]:
                for number, (logged, calls) in enumerate(runs(binary, kms, mode, task, workdir),
                                                         1):
                    theirs = upstream_cost(mode, task, number, a, k, o, d, t, s)
                    shown = "-" if theirs is None else theirs
                    print(f"{mode:<5} {task:<22} {number:>3} {logged:>6} {shown:>9}  {calls}")


if __name__ == "__main__":
    main()
