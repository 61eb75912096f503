"""Where a SignData's time goes. The plugin runs as in bench_signdata.py (as
SPIRE runs it, against the C KMS stub in front of the emulator, six EC P-256
keys), and the timed calls are made by bench_signdata_client (gRPC core C
client, key x509-CA-A) at --concurrency T after 200 warm-up calls.

Default: the plugin runs under `valgrind --tool=callgrind`; the client zeroes
the counters after its warm-up (callgrind_control -z) and dumps them after
the timed calls (callgrind_control -d); the instruction count divided by the
calls is printed and the dump is left in --out-dir for callgrind_annotate.

    /usr/bin/python3 bench/profile_sign.py --build-dir build [--calls 500]
        [--concurrency 1] [--out-dir /tmp/cg]

--native: no valgrind; user and system CPU per call (/proc/PID/stat) and
context switches per call (summed over the plugin's threads), between the
client's two timing points.
--attach CMD: --native, and CMD ({pid} replaced by the plugin's pid) runs
during the client's run and gets SIGINT after it, e.g.
    --attach "perf record -F 4999 -g -o /tmp/perf.data -p {pid}"
    --attach "strace -f -c -o /tmp/strace.txt -p {pid}"
(the client's warm-up calls are inside CMD's window, not in the figures).
--wrap CMD: the plugin is started as `CMD spire-aws-kms` and CMD sees its
whole life, set-up included; the --native figures are of the process the
host started, so they are the plugin's only when CMD execs it in place.
"""
import argparse
import glob
import os
import shlex
import signal
import stat
import subprocess
import sys
import tempfile

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
sys.path.insert(0, BENCH_DIR)

import signdata_setup  # noqa: E402 (needs BENCH_DIR on the path)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
WARMUP = 200


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


def cpu_ticks(stat_text):
    """(utime, stime) in clock ticks from the text of /proc/PID/stat."""
    fields = stat_text.rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def context_switches(status_text):
    """Voluntary plus involuntary switches summed over the status texts of
    the process's threads (/proc/PID/task/*/status, live threads only)."""
    return sum(int(line.split()[1]) for line in status_text.splitlines()
               if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")))


def snapshot_command(pid, path):
    """A shell command saving the plugin's CPU ticks and switches to path."""
    return (f"cat /proc/{pid}/stat > {path}.stat; "
            f"cat /proc/{pid}/task/*/status > {path}.status 2>/dev/null; true")


def read_snapshot(path):
    with open(f"{path}.stat", encoding="ascii") as stat_file, \
            open(f"{path}.status", encoding="ascii") as status_file:
        return cpu_ticks(stat_file.read()), context_switches(status_file.read())


def run_client(build_dir, plugin, calls, concurrency, hooks=()):
    command = [os.path.join(build_dir, "bench_signdata_client"), "--socket", plugin.socket_path,
               "--key-id", signdata_setup.SIGNING_KEY, "--calls", str(calls),
               "--concurrency", str(concurrency), "--warmup", str(WARMUP)] + list(hooks)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=3600)


def native(build_dir, plugin, calls, concurrency, workdir):
    """CPU and switches between the client's two timing points."""
    before, after = os.path.join(workdir, "before"), os.path.join(workdir, "after")
    run_client(build_dir, plugin, calls, concurrency,
               ["--at-start", snapshot_command(plugin.pid, before),
                "--at-end", snapshot_command(plugin.pid, after)])
    (user0, system0), switches0 = read_snapshot(before)
    (user1, system1), switches1 = read_snapshot(after)
    scale = 1e6 / CLOCK_TICKS / calls
    print(f"SignData c={concurrency}: {calls} calls, user {(user1 - user0) * scale:.1f} us, "
          f"system {(system1 - system0) * scale:.1f} us, "
          f"{(switches1 - switches0) / calls:.1f} context switches per call")


def attached(build_dir, plugin, calls, concurrency, workdir, command):
    """native(), with command attached to the plugin for the client's run."""
    run_client(build_dir, plugin, WARMUP, concurrency)  # connections and threads settle
    tool = subprocess.Popen(shlex.split(command.replace("{pid}", str(plugin.pid))))
    try:
        native(build_dir, plugin, calls, concurrency, workdir)
    finally:
        tool.send_signal(signal.SIGINT)
        tool.wait(120)


def callgrind(build_dir, plugin, calls, concurrency, out_dir):
    pid = plugin.pid
    run_client(build_dir, plugin, calls, concurrency,
               ["--at-start", f"callgrind_control -z {pid} >/dev/null 2>&1",
                "--at-end", f"callgrind_control -d {pid} >/dev/null 2>&1"])
    dumps = sorted(glob.glob(os.path.join(out_dir, f"callgrind.out.{pid}.*")),
                   key=os.path.getmtime)
    total = events_in(dumps[-1])
    print(f"SignData c={concurrency}: {calls} calls, {total} instructions, "
          f"{total / calls:.0f} instructions per call; dump: {dumps[-1]}\n"
          f"  callgrind_annotate --inclusive=yes {dumps[-1]} | head -60")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default="build")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--out-dir", default=tempfile.gettempdir())
    parser.add_argument("--wrap", help="run the plugin under this command instead of "
                        "callgrind; implies --native")
    parser.add_argument("--native", action="store_true",
                        help="no valgrind: user/system CPU and context switches per call")
    parser.add_argument("--attach", help="run this command ({pid}: the plugin's) during the "
                        "timed calls, then SIGINT it; implies --native")
    args = parser.parse_args()
    build_dir = os.path.abspath(os.path.join(REPO_DIR, args.build_dir))
    out_dir = os.path.abspath(args.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    signdata_setup.set_up_imports(build_dir)
    binary = os.path.join(build_dir, "spire-aws-kms")
    out_file = shlex.quote(os.path.join(out_dir, "callgrind.out.%p"))
    native_only = args.native or args.wrap or args.attach
    prefix = args.wrap or (None if native_only else
                           f"valgrind --tool=callgrind --quiet --callgrind-out-file={out_file}")
    with signdata_setup.KmsBench(build_dir) as kms, \
            tempfile.TemporaryDirectory(prefix="profile-sign-") as workdir:
        wrapper = write_wrapper(workdir, binary, prefix) if prefix else None
        plugin = kms.start_plugin(binary, workdir, wrapper=wrapper, timeout=120)
        if args.attach:
            attached(build_dir, plugin, args.calls, args.concurrency, workdir, args.attach)
        elif native_only:
            native(build_dir, plugin, args.calls, args.concurrency, workdir)
        else:
            callgrind(build_dir, plugin, args.calls, args.concurrency, out_dir)


if __name__ == "__main__":
    main()
