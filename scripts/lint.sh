#!/usr/bin/env bash
# Style and static analysis: the C sources follow .clang-format, cppcheck
# finds nothing, includes go down the layers only (scripts/check-layers.sh),
# and the README lists the packages the scripts install.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t sources < <(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' 'bench/*.c' 2>/dev/null || find src tests -name '*.[ch]')
clang-format --dry-run --Werror "${sources[@]}"
cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,performance,portability \
  --inline-suppr --suppress=missingIncludeSystem -I src src
scripts/check-layers.sh
scripts/check-readme-packages.sh
echo "lint: clean"
