#!/usr/bin/env bash
# Installs the Debian bookworm packages listed in scripts/debian-packages.txt
# that `make TARGET` needs and that are missing (with sudo when not root).
#   install-deps.sh demo    what the build and the demo need
#   install-deps.sh test    that, plus what every test needs
# Quiet when everything is there.
set -euo pipefail
cd "$(dirname "$0")"

target=${1:-test}
case "$target" in
  demo) wanted="demo" ;;
  test) wanted="demo test" ;;
  *) echo "usage: install-deps.sh demo|test" >&2; exit 2 ;;
esac

missing=()
while read -r pkg needed_for _; do
  case "$pkg" in ''|'#'*) continue ;; esac
  [[ " $wanted " == *" $needed_for "* ]] || continue
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done < debian-packages.txt
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing Debian packages: ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
