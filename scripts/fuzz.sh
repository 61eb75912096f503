#!/usr/bin/env bash
# Bounded libFuzzer run: fuzz.sh FUZZER SECONDS [LIBFUZZER OPTIONS...]. Starts
# from the seed corpus of that target, tests/fuzz/corpus/<name> for
# .../fuzz_<name> (copied, so the repository is not written to), and fails on
# any crash, leak or sanitizer report, keeping the input that caused it in
# fuzz-artifacts/. It prints the final coverage line and libFuzzer's stats
# (execs, new units, peak memory).
set -euo pipefail
fuzzer=$1
seconds=$2
shift 2
name=$(basename "$fuzzer")
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus"
cp -r "$here/tests/fuzz/corpus/${name#fuzz_}/." "$work/corpus/" 2>/dev/null || true
status=0
"$fuzzer" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=1024 \
  -artifact_prefix="$work/" -print_final_stats=1 "$@" "$work/corpus" >"$work/log" 2>&1 || status=$?
grep -E '^#[0-9]+[[:space:]]+DONE' "$work/log" || true # final coverage
grep -E '^(stat::|Done )' "$work/log" || tail -n 12 "$work/log"
if [ "$status" -ne 0 ]; then
  mkdir -p "$here/fuzz-artifacts"
  cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* "$here/fuzz-artifacts/" \
    2>/dev/null || true
  echo "fuzz.sh: $name failed (exit $status); inputs kept in fuzz-artifacts/" >&2
  exit "$status"
fi
