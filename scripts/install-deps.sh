#!/usr/bin/env bash
# Installs the Debian bookworm packages this project builds, tests and demos
# with, when any is missing (with sudo when not root). Quiet when all are there.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libgrpc-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
  libcurl4-openssl-dev libjansson-dev libssl-dev openssl
  libcmocka-dev clang libclang-rt-14-dev valgrind cppcheck clang-format
  python3 python3-grpcio python3-protobuf python3-pytest
  python3-botocore python3-boto3 python3-cryptography
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing Debian packages: ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
