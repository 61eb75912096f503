"""Instructions per SignData under callgrind: starts the KMS emulator and the
plugin under `valgrind --tool=callgrind`, configures it, makes a key, warms
up, zeroes the counters (callgrind_control -z), runs N sequential SignData
calls, dumps (callgrind_control -d) and prints the total instruction count
divided by N. The dump is left in --out-dir for callgrind_annotate.

    /usr/bin/python3 bench/profile_sign.py --build-dir build [--calls 500] [--out-dir /tmp/cg]

With --native the plugin runs without valgrind and the figures are user and
system CPU per call (/proc/PID/stat) and context switches per call (summed
over the plugin's threads), for sequential calls.
"""
import argparse
import glob
import hashlib
import os
import stat
import subprocess
import sys
import tempfile

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGION = "us-east-2"


def set_up_imports(build_dir):
    for path in (os.path.join(build_dir, "py"), os.path.join(REPO_DIR, "tests")):
        if path not in sys.path:
            sys.path.insert(0, path)


def write_wrapper(workdir, binary, prefix):
    """A script that execs the plugin under prefix (same pid as the host sees)."""
    wrapper = os.path.join(workdir, "wrapped-plugin.sh")
    with open(wrapper, "w", encoding="ascii") as f:
        f.write(f"#!/bin/sh\nexec {prefix} {binary} \"$@\"\n")
    os.chmod(wrapper, stat.S_IRWXU)
    return wrapper


def events_in(dump):
    """The instruction total ('summary:' or 'totals:' line) of a callgrind dump."""
    with open(dump, encoding="utf-8") as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {dump}")


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    """(utime, stime) of a process in clock ticks."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def context_switches(pid):
    """Voluntary plus involuntary switches of all the process's threads."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


class NativeMeter:
    """CPU and context switches of the plugin between start() and stop()."""

    def __init__(self, pid):
        self.pid = pid

    def start(self):
        self.ticks, self.switches = cpu_ticks(self.pid), context_switches(self.pid)

    def stop(self, calls, method):
        user, system = cpu_ticks(self.pid)
        switches = context_switches(self.pid) - self.switches
        scale = 1e6 / CLOCK_TICKS / calls
        print(f"{method}: {calls} calls, user {(user - self.ticks[0]) * scale:.1f} us, "
              f"system {(system - self.ticks[1]) * scale:.1f} us, "
              f"{switches / calls:.1f} context switches per call")


def callgrind_control(option, pid):
    subprocess.run(["callgrind_control", option, str(pid)], check=True,
                   stdout=subprocess.DEVNULL)


def profile(build_dir, calls, out_dir, method, native, wrap):
    from emulator.emulator_process import EmulatorProcess
    from pluginhost.host import PluginHost

    binary = os.path.join(build_dir, "spire-aws-kms")
    emulator = EmulatorProcess(region=REGION)
    host = None
    try:
        with tempfile.TemporaryDirectory(prefix="profile-sign-") as workdir:
            env = {"AWS_ACCESS_KEY_ID": "AKIDEMULATOR", "AWS_SECRET_ACCESS_KEY": "emulator-secret",
                   "AWS_ENDPOINT_URL_STS": emulator.url}
            out_file = os.path.join(out_dir, "callgrind.out.%p")
            prefix = wrap or ("" if native else
                              f"valgrind --tool=callgrind --quiet --callgrind-out-file={out_file}")
            command = write_wrapper(workdir, binary, prefix) if prefix else binary
            host = PluginHost(command, extra_env=env, cwd=workdir, handshake_timeout=120)
            host.init(timeout=120)
            host.configure(f'region = "{REGION}"\n\nkey_metadata_file = "{workdir}/id"\n\n'
                           f'endpoint = "{emulator.url}"\n\nlog_level = "warn"', timeout=120)
            host.generate_key("bench-key", "EC_P256", timeout=120)
            request = host.sign_request("bench-key", hashlib.sha256(b"bench").digest(), "SHA256")

            def one_call():
                if method == "health":
                    host.health(timeout=60)
                else:
                    host.call("SignData", request, timeout=60)

            for _ in range(50):
                one_call()
            if native or wrap:
                meter = NativeMeter(host.pid)
                meter.start()
                for _ in range(calls):
                    one_call()
                meter.stop(calls, method)
                return
            callgrind_control("-z", host.pid)
            for _ in range(calls):
                one_call()
            callgrind_control("-d", host.pid)
            dumps = sorted(glob.glob(os.path.join(out_dir, f"callgrind.out.{host.pid}.*")),
                           key=os.path.getmtime)
            total = events_in(dumps[-1])
            print(f"{method}: {calls} calls, {total} instructions, "
                  f"{total / calls:.0f} instructions per call; dump: {dumps[-1]}")
            host.shutdown()
            host.wait(60)
    finally:
        if host is not None:
            host.close()
        emulator.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default="build")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--method", choices=("sign", "health"), default="sign")
    parser.add_argument("--out-dir", default=tempfile.gettempdir())
    parser.add_argument("--wrap", help="run the plugin under this command instead of "
                        "callgrind (e.g. \"strace -f -c -o /tmp/s.txt\"); implies --native")
    parser.add_argument("--native", action="store_true",
                        help="no valgrind: user/system CPU and context switches per call")
    args = parser.parse_args()
    build_dir = os.path.abspath(os.path.join(REPO_DIR, args.build_dir))
    os.makedirs(args.out_dir, exist_ok=True)
    set_up_imports(build_dir)
    profile(build_dir, args.calls, os.path.abspath(args.out_dir), args.method,
            args.native, args.wrap)


if __name__ == "__main__":
    main()
