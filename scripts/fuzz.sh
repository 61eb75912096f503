#!/usr/bin/env bash
# Bounded libFuzzer run: fuzz.sh FUZZER SECONDS. Starts from the seed corpus in
# tests/fuzz/corpus (copied, so the repository is not written to) and fails on
# any crash, leak or sanitizer report.
set -euo pipefail
fuzzer=$1
seconds=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$(dirname "$0")/../tests/fuzz/corpus/." "$work/" 2>/dev/null || true
"$fuzzer" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=1024 \
  -artifact_prefix="$work/" -print_final_stats=1 "$work" 2>&1 | tail -n 12
