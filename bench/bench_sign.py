"""SignData benchmark: latency (p50/p99) and throughput through the plugin at
concurrency 1, 8, 32 and 64, next to the same KMS Sign request sent straight
to the emulator over keep-alive HTTP in the same run, plus the CPU time the
plugin process spends per SignData (utime+stime from /proc/<pid>/stat).

Figures, not assertions. Targets: plugin p50 within 10% of the direct round
trip; at most 100 us of plugin CPU per SignData.

    /usr/bin/python3 bench/bench_sign.py --build-dir build [--requests 2000] [--json out.json]
"""
import argparse
import base64
import hashlib
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGION = "us-east-2"
AKID = "AKIDEMULATOR"
SECRET = "emulator-secret"
CONCURRENCY = (1, 8, 32, 64)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def set_up_imports(build_dir):
    for path in (os.path.join(build_dir, "py"), os.path.join(REPO_DIR, "tests")):
        if path not in sys.path:
            sys.path.insert(0, path)


def process_cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def run_workers(concurrency, total, make_worker):
    """Runs `total` calls spread over `concurrency` threads; each thread gets
    its own call function from make_worker(). Returns (latencies, seconds)."""
    per_thread = [total // concurrency + (1 if i < total % concurrency else 0)
                  for i in range(concurrency)]
    latencies = []
    lock = threading.Lock()
    start_gate = threading.Barrier(concurrency + 1)
    errors = []

    def body(count):
        call = make_worker()
        local = []
        start_gate.wait()
        try:
            for _ in range(count):
                began = time.perf_counter()
                call()
                local.append(time.perf_counter() - began)
        except Exception as error:  # noqa: BLE001 (reported after the run)
            errors.append(error)
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=body, args=(n,)) for n in per_thread]
    for thread in threads:
        thread.start()
    start_gate.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"{len(errors)} calls failed, first: {errors[0]!r}")
    return latencies, elapsed


def summarise(latencies, elapsed):
    ordered = sorted(latencies)
    return {"calls": len(ordered), "p50_us": statistics.median(ordered) * 1e6,
            "p99_us": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6,
            "calls_per_s": len(ordered) / elapsed}


def direct_sign_worker(url, key_arn, digest):
    """A keep-alive connection and a pre-signed KMS Sign request."""
    from emulator.raw_client import kms_request, sign

    body = {"KeyId": key_arn, "Message": base64.b64encode(digest).decode(),
            "MessageType": "DIGEST", "SigningAlgorithm": "ECDSA_SHA_256"}
    request = sign(kms_request(url, "Sign", body), AKID, SECRET, region=REGION)
    headers = dict(request.headers.items())
    data = request.body
    parts = urllib.parse.urlsplit(url)
    connect_lock = threading.Lock()

    def make():
        # Connect one at a time before the run: the emulator's listen backlog
        # is small, and connection set-up is not what is measured.
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        with connect_lock:
            connection.connect()

        def call():
            connection.request("POST", "/", body=data, headers=headers)
            answer = connection.getresponse()
            payload = answer.read()
            if answer.status != 200:
                raise RuntimeError(f"direct Sign: {answer.status} {payload[:200]!r}")

        return call

    return make


def plugin_sign_worker(host, digest):
    request = host.sign_request("bench-key", digest, "SHA256")

    def make():
        def call():
            host.call("SignData", request, timeout=30)

        return call

    return make


def bench(build_dir, total):
    from emulator.emulator_process import EmulatorProcess
    from pluginhost.host import PluginHost

    binary = os.path.join(build_dir, "spire-aws-kms")
    emulator = EmulatorProcess(region=REGION)
    results = []
    host = None
    try:
        with tempfile.TemporaryDirectory(prefix="bench-sign-") as workdir:
            env = {"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET,
                   "AWS_ENDPOINT_URL_STS": emulator.url}
            host = PluginHost(binary, extra_env=env, cwd=workdir)
            host.init()
            host.configure(f'region = "{REGION}"\n\nkey_metadata_file = "{workdir}/id"\n\n'
                           f'endpoint = "{emulator.url}"\n\nlog_level = "warn"')
            host.generate_key("bench-key", "EC_P256")
            with open(f"{workdir}/id", encoding="ascii") as f:
                server_id = f.read().strip()
            alias = f"alias/SPIRE_SERVER/example_org/{server_id}/bench-key"
            key_arn = next(a for a in emulator.state()["aliases"] if a["name"] == alias)["key_id"]
            digest = hashlib.sha256(b"bench").digest()
            direct = direct_sign_worker(emulator.url, key_arn, digest)
            through_plugin = plugin_sign_worker(host, digest)
            run_workers(4, 200, through_plugin)  # warm-up: connections, caches
            run_workers(4, 200, direct)
            for concurrency in CONCURRENCY:
                cpu_before = process_cpu_seconds(host.pid)
                plugin = summarise(*run_workers(concurrency, total, through_plugin))
                cpu = process_cpu_seconds(host.pid) - cpu_before
                plugin["plugin_cpu_us_per_call"] = cpu / plugin["calls"] * 1e6
                straight = summarise(*run_workers(concurrency, total, direct))
                results.append({"concurrency": concurrency, "plugin": plugin,
                                "direct": straight,
                                "p50_ratio": plugin["p50_us"] / straight["p50_us"]})
                report_row(results[-1])
            host.shutdown()
            host.wait(10)
    finally:
        if host is not None:
            host.close()
        emulator.stop()
    return results


def report_header():
    print(f"{'conc':>4} | {'plugin p50':>10} {'p99':>8} {'calls/s':>8} {'cpu/call':>9} | "
          f"{'direct p50':>10} {'p99':>8} {'calls/s':>8} | {'p50 ratio':>9} {'overhead':>9}")


def report_row(row):
    p, d = row["plugin"], row["direct"]
    print(f"{row['concurrency']:>4} | {p['p50_us']:>8.0f}us {p['p99_us']:>6.0f}us "
          f"{p['calls_per_s']:>8.0f} {p['plugin_cpu_us_per_call']:>7.1f}us | "
          f"{d['p50_us']:>8.0f}us {d['p99_us']:>6.0f}us {d['calls_per_s']:>8.0f} | "
          f"{row['p50_ratio']:>9.3f} {p['p50_us'] - d['p50_us']:>+7.0f}us", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default="build")
    parser.add_argument("--requests", type=int, default=2000,
                        help="SignData calls per concurrency level and path")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    build_dir = os.path.abspath(os.path.join(REPO_DIR, args.build_dir))
    set_up_imports(build_dir)
    print(f"SignData (EC_P256, SHA256), {args.requests} calls per row; "
          "plugin = through spire-aws-kms, direct = same Sign request straight to the emulator")
    report_header()
    results = bench(build_dir, args.requests)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
