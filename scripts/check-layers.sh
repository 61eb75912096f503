#!/usr/bin/env bash
# The include layering of src/: a module includes only its own headers and
# those of the layers below it,
#   common < config < aws < keymanager < plugin < cli, main (src/main.c)
# Every `#include "<layer>/..."` of a higher layer fails, printed as
# file:line and the rule it breaks. Tests, tools, fuzz targets and benchmarks
# (tests/, bench/) are exempt: they may reach into any layer. Includes of
# other prefixes (system headers, generated protobuf headers) are not judged.
# Usage: scripts/check-layers.sh [ROOT]   (ROOT: the tree holding src/; default
# this checkout). Exit 0: clean; 1: upward includes found.
set -euo pipefail
root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
cd "$root"
[[ -d src ]] || { echo "check-layers: no src/ under $root" >&2; exit 2; }

mapfile -t files < <(find src -type f \( -name '*.c' -o -name '*.h' \) | LC_ALL=C sort)
awk '
BEGIN {
    order = "common config aws keymanager plugin cli"
    n = split(order, names, " ")
    for (i = 1; i <= n; i++) rank[names[i]] = i
    rank["main"] = rank["cli"]
    rule = "common < config < aws < keymanager < plugin < cli/main"
    bad = 0
}
FNR == 1 {
    layer = FILENAME
    sub(/^src\//, "", layer)
    if (layer ~ /\//) sub(/\/.*/, "", layer); else sub(/\.[ch]$/, "", layer)
}
/^[ \t]*#[ \t]*include[ \t]*"/ {
    target = $0
    sub(/^[^"]*"/, "", target)
    sub(/".*/, "", target)
    if (target !~ /\//) next
    to = target
    sub(/\/.*/, "", to)
    if (!(to in rank) || !(layer in rank)) next
    if (rank[to] > rank[layer]) {
        printf "%s:%d: %s includes \"%s\" of the higher layer %s (layers: %s; includes go down only)\n", \
               FILENAME, FNR, layer, target, to, rule
        bad = 1
    }
}
END { exit bad }
' "${files[@]}"
