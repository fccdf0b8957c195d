#!/usr/bin/env bash
# Fresh Debian 12 to a tested build: installs dependencies, builds everything, runs the whole test suite, then the
# sanitizer step (scripts/test-sanitize.sh: the same tests built with ASan + UBSan in ./build-asan; that
# script says what runs and why). Extra arguments go to ctest in both steps.
# On a 2-core machine the release step takes 10-16 min and the sanitizer step 17-28 min. HALO_SKIP_SANITIZE=1 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
(cd build && ctest --output-on-failure --parallel 2 --timeout 900 "$@")
if [ "${HALO_SKIP_SANITIZE:-0}" != 1 ]; then
  bash scripts/test-sanitize.sh "$@"
fi
