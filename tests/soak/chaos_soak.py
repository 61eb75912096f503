#!/usr/bin/python3
"""Chaos soak of the KeyManager plugin: a small SPIRE fleet against the KMS
emulator injecting random faults, lost answers included, while SPIRE-like
callers rotate and sign and the emulator's clock moves forward days at a time.

    /usr/bin/python3 tests/soak/chaos_soak.py [--duration 60] [--seed N]
        [--build-dir build] [--work-dir DIR] [--verbose]

`make test` runs it for 60 s (scripts/test-all.sh), `make soak` for 10 minutes
(SOAK_DURATION=..., SOAK_SEED=...).

The fleet (servers.py): four plugin processes started as SPIRE starts them:
two replicas sharing one key_identifier_value, another server, and a server
that stops for good early on (the others must prune it:
its stale aliases deleted, its keys scheduled for deletion); a random server
restarts now and then. Fleet tasks every 1-2 s, stale_alias_age 168h,
orphan_key_age 24h (the smallest accepted). The emulator (its own process)
has clock_follows_emulator set: its Date and SigV4 time check follow its
clock, so each plugin learns KMS's time from the answers as from a real KMS
whose clock differs from the host's.

Each step (chaos.py draws every choice from one seeded random.Random): inject
up to four faults (throttle, 500, 503, drop, latency, access_denied, lost,
lost_500, lost_503; on any KMS operation or a named one; counts, sometimes
after N calls); run the callers' actions (callers.py: GenerateKey on
x509-CA-A/B, JWT-Signer-A/B, WIT-Signer-A/B alternating slots, sometimes
changing the key type; SignData verified against the key the answer names);
maybe move the emulator clock 12-42 h; maybe restart a server; wait until
every live plugin ran a fleet task under the faults; check that live aliases
target Enabled keys; clear the faults; judge every answer against the
emulator's fault log and each plugin's keys against KMS's truth, after its
next refresh (invariants.py). At the end the clock moves on until the stopped
server's aliases are stale and every key is past orphan_key_age, the sweeps
run, and nothing may be left: no Enabled unaliased key older than
orphan_key_age, nothing of the stopped server's.

Prints operations, KMS calls, faults injected and taken by kind, keys
created, deleted and lost (must be 0). Exit status 1 on any violation (the
work directory, with every plugin's log, is kept), 0 otherwise. --seed
replays the plan (the processes' timing does not replay).
"""
import argparse
import os
import random
import shutil
import sys
import tempfile

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.path.dirname(TESTS_DIR)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0,
                        help="seconds, start-up and final sweeps included (default 60)")
    parser.add_argument("--seed", type=int, default=None, help="default: a random one, printed")
    parser.add_argument("--build-dir", default=os.environ.get("KM_BUILD_DIR", "build"),
                        help="where spire-aws-kms and py/ are (default $KM_BUILD_DIR or build)")
    parser.add_argument("--work-dir", default=None,
                        help="the plugins' directories and logs (default: a temporary "
                             "directory, kept when the soak fails)")
    parser.add_argument("--verbose", action="store_true", help="one line per step")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2**31)
    args.build_dir = os.path.abspath(os.path.join(REPO_DIR, args.build_dir))
    return args


def main(argv=None):
    args = parse_args(argv)
    for path in (os.path.join(args.build_dir, "py"), TESTS_DIR):
        if path not in sys.path:
            sys.path.insert(0, path)
    from soak.driver import Soak  # needs the paths above

    temporary = args.work_dir is None
    args.work_dir = args.work_dir or tempfile.mkdtemp(prefix="soak-")
    soak = Soak(args)
    try:
        soak.run()
    finally:
        soak.close()
        print(soak.report(), flush=True)
    if soak.failed():
        print(f"soak FAILED: logs kept in {args.work_dir} (replay: --seed {args.seed})")
        return 1
    if temporary:
        shutil.rmtree(args.work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
