#!/usr/bin/env bash
# Every test, in the order `make test` runs them: style and static checks,
# bounded fuzz runs of every parser of outside input (6 targets, 12 s each),
# the unit and integration tests on an ASan+UBSan build, SPIRE's KeyManager
# conformance checks with the plugin under valgrind, then the unit tests
# (ctest), the emulator's own tests and the integration tests (pytest against
# the real binary and the KMS emulator), and a 60-second chaos soak (tests/soak:
# a fleet of plugins under random faults; `make soak` runs it longer).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
JOBS=$(nproc)

# Each stage prints its name; at the end (or on failure) every stage's wall time.
timings=()
stage_name="" stage_start=$SECONDS
end_stage() {
  [ -n "$stage_name" ] && timings+=("$(printf '%5ds  %s' $((SECONDS - stage_start)) "$stage_name")")
  stage_name=""
}
stage() {
  end_stage
  stage_name="$*" stage_start=$SECONDS
  printf '\n==== %s ====\n' "$*"
}
report() {
  local rc=$?
  end_stage
  printf '\n==== wall time per stage ====\n'
  printf '%s\n' "${timings[@]}"
  printf '%5ds  total (exit %d)\n' "$SECONDS" "$rc"
}
trap report EXIT

stage "static checks"
scripts/lint.sh

stage "build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=ON >/dev/null
cmake --build build -j"$JOBS"

stage "fuzz: every parser of outside input (bounded runs, 12 s each)"
FUZZ_TARGETS=(fuzz_hcl fuzz_kms_answers fuzz_json_scan fuzz_sts_xml fuzz_credentials_json
  fuzz_shared_files)
cmake -S . -B build-fuzz -DFUZZ=ON -DBUILD_TESTING=OFF -DCMAKE_C_COMPILER=clang >/dev/null
cmake --build build-fuzz -j"$JOBS" --target "${FUZZ_TARGETS[@]}"
for target in "${FUZZ_TARGETS[@]}"; do
  echo "-- $target"
  scripts/fuzz.sh "build-fuzz/tests/fuzz/$target" 12
done

stage "sanitizer build (ASan + UBSan)"
cmake -S . -B build-asan -DSANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DBUILD_TESTING=ON >/dev/null
cmake --build build-asan -j"$JOBS"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

stage "unit tests (ASan + UBSan)"
ctest --test-dir build-asan --output-on-failure -j"$JOBS"

stage "integration tests (ASan + UBSan binary)"
KM_BUILD_DIR=build-asan $PY -m pytest -q tests/integration

stage "conformance with the plugin under valgrind (memcheck: errors and leaks fail)"
KM_VALGRIND=1 KM_BUILD_DIR=build $PY -m pytest -q tests/integration/test_keymanager_conformance.py

stage "unit tests"
ctest --test-dir build --output-on-failure -j"$JOBS"

stage "emulator and integration tests"
KM_BUILD_DIR=build $PY -m pytest -q tests/emulator tests/integration

stage "chaos soak (60 s, release build; make soak runs it for 10 minutes)"
KM_BUILD_DIR=build $PY -m pytest -q tests/soak
$PY tests/soak/chaos_soak.py --build-dir build --duration 60
