#!/usr/bin/env bash
# Fresh Debian 12 to a tested build: installs dependencies, builds everything, runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
cd build
ctest --output-on-failure --parallel 2 --timeout 900 "$@"
