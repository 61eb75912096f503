#!/usr/bin/env bash
# scripts/check-layers.sh on temporary trees: a clean tree passes; an upward
# include (aws including a keymanager header) fails naming file:line and the
# rule; a downward include, a same-layer include, system and generated headers
# pass; tests/ and bench/ may include any layer.
set -euo pipefail
check="$(cd "$(dirname "$0")/../.." && pwd)/scripts/check-layers.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$tmp/src/common" "$tmp/src/aws" "$tmp/src/keymanager" "$tmp/src/plugin" "$tmp/src/cli" \
         "$tmp/tests/unit" "$tmp/bench"
printf '#include <stdio.h>\n' > "$tmp/src/common/log.h"
printf '#include "common/log.h"\n#include "aws/kms.h"\n#include <curl/curl.h>\n' > "$tmp/src/aws/kms.h"
printf '#include "aws/kms.h"\n#include "keymanager/keymanager.h"\n' > "$tmp/src/keymanager/keymanager.h"
printf '#include "keymanager/keymanager.h"\n#include "grpc/health/v1/health.pb-c.h"\n' \
       > "$tmp/src/plugin/services.c"
printf '#include "plugin/plugin.h"\n#include "cli/cli.h"\n' > "$tmp/src/main.c"
printf '#include "plugin/plugin.h"\n' > "$tmp/src/cli/cli.c"
printf '#include "plugin/services.h"\n#include "cli/cli.h"\n' > "$tmp/tests/unit/test_aws_x.c"
printf '#include "plugin/call.h"\n' > "$tmp/bench/client.c"

out="$("$check" "$tmp" 2>&1)" || fail "a clean tree failed: $out"
[[ -z "$out" ]] || fail "a clean tree printed: $out"

# The planted upward include: line 3 of an aws file includes a keymanager header.
printf '/* retry */\n#include "aws/kms.h"\n#include "keymanager/km_status.h"\n' > "$tmp/src/aws/retry.h"
if out="$("$check" "$tmp" 2>&1)"; then fail "an upward include passed"; fi
grep -q '^src/aws/retry.h:3: aws includes "keymanager/km_status.h" of the higher layer keymanager' \
    <<<"$out" || fail "no file:line and rule in: $out"
grep -q 'common < config < aws < keymanager < plugin < cli/main' <<<"$out" || fail "no rule in: $out"
[[ "$(wc -l <<<"$out")" -eq 1 ]] || fail "more than the planted include reported: $out"

# common must not reach config; a layer below plugin must not reach the cli.
rm "$tmp/src/aws/retry.h"
printf '#include "config/config.h"\n' > "$tmp/src/common/clock.c"
printf '#include "cli/cli.h"\n' > "$tmp/src/plugin/serve.c"
if out="$("$check" "$tmp" 2>&1)"; then fail "common -> config and plugin -> cli passed"; fi
grep -q '^src/common/clock.c:1: ' <<<"$out" || fail "common -> config not reported: $out"
grep -q '^src/plugin/serve.c:1: ' <<<"$out" || fail "plugin -> cli not reported: $out"

echo "check-layers: ok"
