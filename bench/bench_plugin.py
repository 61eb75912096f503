#!/usr/bin/python3
"""Plugin-face figures (printed, never asserted):
  * exec -> handshake line, median of 20 launches   (target <= 20 ms)
  * VmRSS after Configure against the KMS emulator  (target <= 16 MiB)
  * Health/Check round trip p50/p99 at concurrency 1 and 32 over one channel,
    measured from a python3-grpcio client (its own overhead included)
    (target p50 <= 150 us)

    /usr/bin/python3 bench/bench_plugin.py [--build-dir build] [--calls 5000]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def setup_paths(build_dir):
    for path in (os.path.join(build_dir, "py"), os.path.join(REPO, "tests")):
        sys.path.insert(0, path)


def percentile(sorted_values, fraction):
    index = min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def handshake_times(binary, runs):
    from pluginhost.host import PluginHost
    times = []
    for _ in range(runs):
        host = PluginHost(binary, connect=False)
        times.append(host.handshake_seconds)
        host.process.terminate()
        host.wait(5)
        host.close()
    return times


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def rss_after_configure(binary):
    from emulator.kms_emulator import Emulator
    from pluginhost.host import PluginHost
    with Emulator() as kms, tempfile.TemporaryDirectory() as workdir:
        env = dict(kms.plugin_env(), AWS_ENDPOINT_URL=kms.url)
        with PluginHost(binary, extra_env=env, cwd=workdir) as host:
            host.init()
            rss_started = vm_rss_kib(host.pid)
            host.configure('region = "us-east-2"\n\nkey_metadata_file = "./key_metadata"')
            rss_configured = vm_rss_kib(host.pid)
            # the six keys a current SPIRE server (>= 1.14.3) generates
            for key_id in ("x509-CA-A", "x509-CA-B", "JWT-Signer-A", "JWT-Signer-B",
                           "WIT-Signer-A", "WIT-Signer-B"):
                host.generate_key(key_id, "EC_P256")
            for _ in range(200):
                host.sign_data("x509-CA-A", b"\x01" * 32, hash_algorithm="SHA256")
            rss_used = vm_rss_kib(host.pid)
    return rss_started, rss_configured, rss_used


def health_latencies(host, calls, concurrency):
    from pluginhost.host import HEALTH_CHECK, encode_health_request
    method = host.channel.unary_unary(HEALTH_CHECK, request_serializer=lambda b: b,
                                      response_deserializer=lambda b: b)
    request = encode_health_request("plugin")
    for _ in range(200):
        method(request)  # warm-up
    per_thread = calls // concurrency
    results = [[] for _ in range(concurrency)]

    def run(slot):
        clock = time.perf_counter_ns
        out = results[slot]
        for _ in range(per_thread):
            started = clock()
            method(request)
            out.append((clock() - started) / 1000.0)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies = sorted(value for chunk in results for value in chunk)
    return latencies, len(latencies) / elapsed


def exec_times(command, runs):
    """Wall time of running command to its end, runs times."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return times


def c_client_latencies(client, socket_path, calls, concurrency):
    """Health/Check figures from bench_health_client (gRPC core's C client)."""
    out = subprocess.run([client, socket_path, str(calls), str(concurrency)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", default=os.environ.get("KM_BUILD_DIR", "build"))
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--launches", type=int, default=20)
    args = parser.parse_args()
    build_dir = os.path.abspath(os.path.join(REPO, args.build_dir))
    setup_paths(build_dir)
    binary = os.path.join(build_dir, "spire-aws-kms")
    from pluginhost.host import PluginHost

    floor = exec_times([binary, "--version"], args.launches)
    print(f"exec of the binary alone (--version: loading its shared libraries, no gRPC): "
          f"median {statistics.median(floor) * 1000:.1f} ms")
    times = handshake_times(binary, args.launches)
    print(f"handshake: median {statistics.median(times) * 1000:.1f} ms, "
          f"min {min(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms "
          f"over {len(times)} launches (target <= 20 ms)")

    rss_started, rss_configured, rss_used = rss_after_configure(binary)
    print(f"VmRSS before Configure: {rss_started / 1024:.1f} MiB")
    print(f"VmRSS after Configure: {rss_configured / 1024:.1f} MiB; after 2 keys + 200 "
          f"signatures: {rss_used / 1024:.1f} MiB (target <= 16 MiB)")

    with PluginHost(binary) as host:
        for concurrency in (1, 32):
            latencies, rate = health_latencies(host, args.calls, concurrency)
            print(f"Health/Check concurrency {concurrency:2d}: p50 "
                  f"{percentile(latencies, 0.50):.0f} us, p99 {percentile(latencies, 0.99):.0f} us, "
                  f"{rate:.0f} calls/s over {len(latencies)} calls (target p50 <= 150 us)")
        client = os.path.join(build_dir, "bench_health_client")
        for concurrency in (1, 32):
            figures = c_client_latencies(client, host.socket_path, args.calls, concurrency)
            print(f"Health/Check concurrency {concurrency:2d}, gRPC core C client: p50 "
                  f"{figures['p50_us']:.0f} us, p99 {figures['p99_us']:.0f} us, "
                  f"{figures['calls_per_s']:.0f} calls/s over {figures['calls']} calls")
        print(f"plugin VmRSS after the round trips: {vm_rss_kib(host.pid) / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
