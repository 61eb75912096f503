#!/usr/bin/python3
"""SignData benchmark (issue 12's figures; printed, never asserted).

The plugin runs as SPIRE runs it (tests/pluginhost/host.py) against the C KMS
stub (bench/kms_stub.c: Sign answered from memory, at once or after a fixed
delay; everything else forwarded to the Python KMS emulator), configured with
the six EC P-256 keys a SPIRE >= 1.14.3 server makes. The timed calls are made
by C clients: bench_signdata_client (gRPC core, SignData with x509-CA-A, one
channel, T threads) and, for the floor, bench_sign_direct_client (the same
signed KMS Sign request sent straight to the stub over keep-alive HTTP/1.1,
T connections). Printed, in one run, with the stub answering at once and after
5 ms, at concurrency 1 and 16:
  * calls/s, p50 and p99 latency, for SignData and for the direct Sign (floor);
  * CPU per call from /proc/PID/stat (utime+stime) of the plugin, of the stub
    and of the client;
  * latency the plugin adds (its p50 minus the direct p50) and the p50 ratio;
  * VmRSS of the plugin after Configure, and its growth over 100,000 SignData
    (at concurrency 16, stub at once, after the rows above warmed it up).
Each row is the best of --repeat runs, per figure (highest calls/s, lowest
latency and CPU): other engineers share this machine's 2 cores, and the load
average is printed at the start and the end.

    /usr/bin/python3 bench/bench_signdata.py [--build-dir build] [--quick]
        [--repeat 3] [--binary PATH] [--before-binary PATH] [--json FILE]

--before-binary runs a second plugin (e.g. a build of an older commit) through
the same rows, interleaved with the first, and prints the two side by side.

The figures measured before the event-driven HTTP layer, and how to read
them, are in bench/README.md.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
sys.path.insert(0, BENCH_DIR)

import signdata_setup  # noqa: E402 (needs BENCH_DIR on the path)
from signdata_setup import SIGNING_KEY, rss_parts_kib, vm_rss_kib  # noqa: E402

DIGEST = bytes.fromhex("1b32c28cb38c05480eccc1bd60ff97029b57a05c96718b96dad7e9d84894f549")
CONCURRENCY = (1, 16)
DELAYS_MS = (0, 5)
# Timed calls per row: {(delay ms, concurrency): calls}, full and --quick.
# /proc/PID/stat counts CPU in 10 ms ticks: 1,000 calls resolve 10 us per call.
CALLS = {(0, 1): 20000, (0, 16): 50000, (5, 1): 1000, (5, 16): 4000}
QUICK_CALLS = {(0, 1): 2000, (0, 16): 5000, (5, 1): 200, (5, 16): 800}
GROWTH_CALLS, QUICK_GROWTH_CALLS = 100_000, 10_000
WARMUP = {0: 200, 5: 32}
BEST = {"calls_per_s": max, "p50_us": min, "p99_us": min}
TARGETS = {"cpu": 60.0, "rate": 5000.0, "added": 150.0, "ratio": 1.05, "rss_mib": 16.0,
           "growth_kib": 1024.0}


def run_client(command):
    """Runs a C client; returns its JSON figures."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"{os.path.basename(command[0])} failed ({result.returncode}): "
                           f"{result.stderr.strip()[-2000:]} {result.stdout.strip()[-500:]}")
    return json.loads(result.stdout)


class Bench:
    """The rows of one run: plugins and the direct path at each delay and
    concurrency."""

    def __init__(self, build_dir, kms, plugins, request_file, calls):
        self.build_dir = build_dir
        self.kms = kms
        self.plugins = plugins  # {label: Plugin}
        self.request_file = request_file
        self.calls = calls
        self.runs = {}  # (label, delay, concurrency) -> [figures]

    def plugin_row(self, label, delay, concurrency, calls, warmup):
        plugin = self.plugins[label]
        return run_client([
            os.path.join(self.build_dir, "bench_signdata_client"),
            "--socket", plugin.socket_path, "--key-id", SIGNING_KEY,
            "--digest-hex", DIGEST.hex(), "--calls", str(calls),
            "--concurrency", str(concurrency), "--warmup", str(warmup),
            "--pid", f"plugin={plugin.pid}", "--pid", f"stub={self.kms.stub.process.pid}"])

    def direct_row(self, concurrency, calls, warmup):
        return run_client([
            os.path.join(self.build_dir, "bench_sign_direct_client"),
            "--url", self.kms.stub.url, "--request-file", self.request_file,
            "--calls", str(calls), "--concurrency", str(concurrency), "--warmup", str(warmup),
            "--pid", f"stub={self.kms.stub.process.pid}"])

    def measure_once(self):
        for delay in DELAYS_MS:
            self.kms.set_sign_delay_ms(delay)
            for concurrency in CONCURRENCY:
                calls = self.calls[(delay, concurrency)]
                for label in self.plugins:
                    figures = self.plugin_row(label, delay, concurrency, calls, WARMUP[delay])
                    self.runs.setdefault((label, delay, concurrency), []).append(figures)
                figures = self.direct_row(concurrency, calls, WARMUP[delay])
                self.runs.setdefault(("direct", delay, concurrency), []).append(figures)
        self.kms.set_sign_delay_ms(0)

    def best(self, path, delay, concurrency):
        runs = self.runs[(path, delay, concurrency)]
        best = {name: pick(run[name] for run in runs) for name, pick in BEST.items()}
        best["failures"] = sum(run["failures"] for run in runs)
        best["calls"] = runs[0]["calls"]
        best["runs"] = len(runs)
        for who in ("plugin", "stub", "client"):
            values = [run["cpu_us_per_call"].get(who) for run in runs]
            values = [v for v in values if v is not None]
            best[f"{who}_cpu_us"] = min(values) if values else None
        return best

    def growth(self, label, calls):
        """VmRSS before and after `calls` SignData at concurrency 16."""
        plugin = self.plugins[label]
        before = vm_rss_kib(plugin.pid)
        anon_before = rss_parts_kib(plugin.pid).get("RssAnon", 0)
        started = time.monotonic()
        figures = self.plugin_row(label, 0, 16, calls, 0)
        after = vm_rss_kib(plugin.pid)
        anon_after = rss_parts_kib(plugin.pid).get("RssAnon", 0)
        return {"calls": calls, "rss_before_kib": before, "rss_after_kib": after,
                "anon_before_kib": anon_before, "anon_after_kib": anon_after,
                "growth_kib": after - before, "seconds": time.monotonic() - started,
                "calls_per_s": figures["calls_per_s"], "failures": figures["failures"]}


def load_average():
    with open("/proc/loadavg", encoding="ascii") as f:
        return " ".join(f.read().split()[:3])


def fmt(value, spec):
    """value formatted by spec ("7.1f"), or "-" in the same width."""
    width = int(spec.lstrip("+").split(".")[0])
    return f"{'-':>{width}}" if value is None else format(value, spec)


def print_rows(bench):
    print(f"{'stub':>5} {'conc':>4}  {'path':<16} {'calls/s':>8} {'p50 us':>8} {'p99 us':>8} "
          f"{'plugin':>7} {'stub':>6} {'client':>7}  {'added p50':>9} {'p50 ratio':>9}")
    print(f"{'':>5} {'':>4}  {'':<16} {'':>8} {'':>8} {'':>8} {'CPU us/call (utime+stime)':>22}")
    for delay in DELAYS_MS:
        for concurrency in CONCURRENCY:
            direct = bench.best("direct", delay, concurrency)
            for path in list(bench.plugins) + ["direct"]:
                row = bench.best(path, delay, concurrency)
                added = ratio = None
                if path != "direct":
                    added = row["p50_us"] - direct["p50_us"]
                    ratio = row["p50_us"] / direct["p50_us"]
                name = "direct (floor)" if path == "direct" else f"SignData {path}".strip()
                failed = f"  {row['failures']} FAILED" if row["failures"] else ""
                print(f"{delay:>3}ms {concurrency:>4}  {name:<16} {row['calls_per_s']:>8.0f} "
                      f"{row['p50_us']:>8.0f} {row['p99_us']:>8.0f} "
                      f"{fmt(row['plugin_cpu_us'], '7.1f')} {fmt(row['stub_cpu_us'], '6.1f')} "
                      f"{fmt(row['client_cpu_us'], '7.1f')}  {fmt(added, '+9.0f')} "
                      f"{fmt(ratio, '9.3f')}{failed}")


def target_lines(bench, label, plugin, growth):
    """(figure, value, target) for issue 12's targets, for one plugin."""
    def best(delay, concurrency, path=label):
        return bench.best(path, delay, concurrency)

    rows = []
    for concurrency in CONCURRENCY:
        rows.append((f"plugin CPU per SignData, c={concurrency} (us)",
                     best(0, concurrency)["plugin_cpu_us"], f"<= {TARGETS['cpu']:.0f}"))
    rows.append(("SignData/s at c=16", best(0, 16)["calls_per_s"],
                 f">= {TARGETS['rate']:.0f}"))
    rows.append(("latency added at c=1, stub at once (us)",
                 best(0, 1)["p50_us"] - best(0, 1, "direct")["p50_us"],
                 f"<= {TARGETS['added']:.0f}"))
    for concurrency in CONCURRENCY:
        rows.append((f"p50 / direct p50, stub after 5 ms, c={concurrency}",
                     best(5, concurrency)["p50_us"] / best(5, concurrency, "direct")["p50_us"],
                     f"<= {TARGETS['ratio']:.2f}"))
    rows.append(("VmRSS after Configure (MiB)", plugin.rss_after_configure_kib / 1024,
                 f"<= {TARGETS['rss_mib']:.0f}"))
    rows.append((f"VmRSS growth over {growth['calls']:,} SignData (KiB)", growth["growth_kib"],
                 f"< {TARGETS['growth_kib']:.0f}"))
    return rows


def print_targets(bench, growths):
    labels = list(bench.plugins)
    table = {label: target_lines(bench, label, bench.plugins[label], growths[label])
             for label in labels}
    names = [row[0] for row in table[labels[0]]]
    header = "".join(f"{label or 'plugin':>12}" for label in labels)
    print(f"\n{'figure (targets shown, never asserted)':<50}{header}   target")
    for i, name in enumerate(names):
        values = "".join(f"{table[label][i][1]:>12.{3 if 'direct p50' in name else 1}f}"
                         for label in labels)
        print(f"{name:<50}{values}   {table[labels[0]][i][2]}")
    for label in labels:
        g = growths[label]
        print(f"growth run {label or 'plugin'}: VmRSS {g['rss_before_kib'] / 1024:.1f} -> "
              f"{g['rss_after_kib'] / 1024:.1f} MiB (anonymous {g['anon_before_kib'] / 1024:.1f}"
              f" -> {g['anon_after_kib'] / 1024:.1f}) over {g['calls']:,} calls at c=16, "
              f"{g['calls_per_s']:.0f} calls/s, {g['failures']} failures")
    for label in labels:
        parts = bench.plugins[label].rss_parts_after_configure_kib
        print(f"after Configure {label or 'plugin'}: RssAnon {parts.get('RssAnon', 0) / 1024:.1f}"
              f" MiB (heap, stacks: ours), RssFile {parts.get('RssFile', 0) / 1024:.1f} MiB "
              f"(binary and shared libraries), RssShmem {parts.get('RssShmem', 0) / 1024:.1f} MiB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=os.environ.get("KM_BUILD_DIR", "build"))
    parser.add_argument("--binary", help="the plugin (default: BUILD_DIR/spire-aws-kms)")
    parser.add_argument("--before-binary", help="a second plugin to compare, e.g. the build of "
                        "an older commit; its figures are printed in a 'before' column")
    parser.add_argument("--quick", action="store_true",
                        help="fewer calls, one run, growth over 10,000 calls")
    parser.add_argument("--repeat", type=int, help="runs per row, best kept (default 3, "
                        "1 with --quick)")
    parser.add_argument("--growth-calls", type=int, help="SignData calls of the RSS growth run")
    parser.add_argument("--json", help="also write every run's figures to this file")
    args = parser.parse_args()
    build_dir = os.path.abspath(os.path.join(REPO_DIR, args.build_dir))
    signdata_setup.set_up_imports(build_dir)
    binary = os.path.abspath(args.binary or os.path.join(build_dir, "spire-aws-kms"))
    repeat = args.repeat or (1 if args.quick else 3)
    calls = QUICK_CALLS if args.quick else CALLS
    growth_calls = args.growth_calls or (QUICK_GROWTH_CALLS if args.quick else GROWTH_CALLS)
    binaries = {"before": os.path.abspath(args.before_binary), "after": binary} \
        if args.before_binary else {"": binary}

    print(f"SignData benchmark, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
          f"load average {load_average()}; {repeat} run(s) per row, best kept")
    print(f"EC P-256 key {SIGNING_KEY} (SHA-256 digest) among {len(signdata_setup.SPIRE_KEYS)} "
          f"keys; plugin(s): " + ", ".join(f"{k or 'plugin'}={v}" for k, v in binaries.items()))
    with signdata_setup.KmsBench(build_dir) as kms, \
            tempfile.TemporaryDirectory(prefix="bench-signdata-") as workdir:
        plugins = {}
        for label, path in binaries.items():
            plugin_dir = os.path.join(workdir, label or "plugin")
            os.mkdir(plugin_dir)
            plugins[label] = kms.start_plugin(path, plugin_dir)
        first = next(iter(plugins.values()))
        request_file = os.path.join(workdir, "sign-request.http")
        with open(request_file, "wb") as f:
            f.write(kms.sign_request_bytes(kms.key_arn(first, SIGNING_KEY), DIGEST))
        bench = Bench(build_dir, kms, plugins, request_file, calls)
        for _ in range(repeat):
            bench.measure_once()
        growths = {label: bench.growth(label, growth_calls) for label in plugins}
        stats = kms.stub_stats()
    print_rows(bench)
    print_targets(bench, growths)
    print(f"stub: {stats['sign_replayed']:,} Sign answered from memory, "
          f"{stats['sign_forwarded']} forwarded to the emulator, {stats['forwarded']} other "
          f"requests forwarded; load average at the end {load_average()}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"runs": {"|".join(map(str, key)): value
                                for key, value in bench.runs.items()},
                       "growth": growths,
                       "rss_after_configure_kib": {label: p.rss_after_configure_kib
                                                   for label, p in plugins.items()}},
                      f, indent=2)


if __name__ == "__main__":
    main()
