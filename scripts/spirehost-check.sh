#!/usr/bin/env bash
# Second opinion: runs SPIRE's own loader stack (go-plugin + grpc-go, via the
# workspace's spirehost harness) against our binary talking to the KMS
# emulator: the load, conformance, restart and latency suites.
#   scripts/spirehost-check.sh [--tag-mode | --both] [BUILD_DIR] [N]
#     (defaults: alias mode, build, 200)
#   --tag-mode  plugin_data sets enable_tag_based_key_discovery = true, and the
#               tagging API (GetResources) goes to the emulator too
#   --both      every suite in alias mode, then in tag mode
# spirehost needs Go from Debian; its build.sh installs it (apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
modes=(alias)
case "${1:-}" in
  --tag-mode) modes=(tag); shift ;;
  --both) modes=(alias tag); shift ;;
  -*) echo "usage: $0 [--tag-mode | --both] [BUILD_DIR] [N]" >&2; exit 2 ;;
esac
build_dir=$(realpath "${1:-build}")
requests=${2:-200}
spirehost_src=${SPIREHOST_SRC:-$repo/../shared/tools/spirehost}
spirehost=${SPIREHOST_HOME:-/tmp/spirehost}/bin/spirehost

[ -x "$build_dir/spire-aws-kms" ] || { echo "build first: make build" >&2; exit 2; }
if [ ! -x "$spirehost" ]; then
  (cd "$spirehost_src" && ./build.sh -n)
fi

work=$(mktemp -d)
emulator_pid=
cleanup() {
  [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

/usr/bin/python3 tests/emulator/kms_emulator.py --port 0 >"$work/emulator.out" 2>"$work/emulator.err" &
emulator_pid=$!
for _ in $(seq 100); do
  grep -q '^KMS_EMULATOR_URL=' "$work/emulator.out" && break
  kill -0 "$emulator_pid" || { cat "$work/emulator.err" >&2; exit 1; }
  sleep 0.1
done
url=$(sed -n 's/^KMS_EMULATOR_URL=//p' "$work/emulator.out")
[ -n "$url" ] || { echo "the emulator did not start" >&2; exit 1; }

export AWS_ACCESS_KEY_ID=AKIDEMULATOR AWS_SECRET_ACCESS_KEY=emulator-secret
export AWS_ENDPOINT_URL_STS=$url AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API=$url

status=0
for mode in "${modes[@]}"; do
  discovery=false
  [ "$mode" = tag ] && discovery=true
  cat >"$work/server-$mode.conf" <<CONF
server {
    trust_domain = "example.org"
}
plugins {
    KeyManager "aws_kms" {
        plugin_cmd = "$build_dir/spire-aws-kms"
        plugin_data {
            region = "us-east-2"
            endpoint = "$url"
            key_metadata_file = "./key_metadata"
            enable_tag_based_key_discovery = $discovery
        }
    }
}
CONF
  echo "== spirehost: $mode mode (enable_tag_based_key_discovery = $discovery)"
  "$spirehost" -plugin "$build_dir/spire-aws-kms" -config "$work/server-$mode.conf" \
    -suite all -n "$requests" || status=$?
done
exit "$status"
