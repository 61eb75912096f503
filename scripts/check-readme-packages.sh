#!/usr/bin/env bash
# The README's package table must list exactly scripts/debian-packages.txt
# (package, target, reason), so what it says is what `make` installs.
set -euo pipefail
cd "$(dirname "$0")/.."
expected=$(grep -v '^#' scripts/debian-packages.txt | awk 'NF { pkg=$1; tgt=$2; $1=""; $2=""; sub(/^ +/, ""); printf "| `%s` | %s | %s |\n", pkg, tgt, $0 }')
actual=$(sed -n '/<!-- packages:/,/<!-- \/packages -->/p' README.md | grep '^| `' || true)
if [ "$expected" != "$actual" ]; then
  echo "README.md's package table differs from scripts/debian-packages.txt:" >&2
  diff <(echo "$expected") <(echo "$actual") >&2 || true
  exit 1
fi
