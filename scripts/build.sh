#!/usr/bin/env bash
# Configures and builds Halo into ./build (Release). Extra arguments go to the build step (e.g. --target engine).
# HALO_BUILD_DIR builds another directory (scripts/test-sanitize.sh configures build-asan first). HALO_JOBS sets the
# number of parallel jobs; by default one per core, but no more than available memory allows at 2 GiB a job (a
# compile peaks under 0.5 GiB in Release and under 0.9 GiB with the sanitizers; links under 0.3 GiB).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${HALO_BUILD_DIR:-build}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [ ! -f "$dir/CMakeCache.txt" ]; then
  cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release
fi
jobs=${HALO_JOBS:-}
if [ -z "$jobs" ]; then
  jobs=$(nproc)
  avail_gib=$(awk '/^MemAvailable:/ { print int($2 / 1048576) }' /proc/meminfo)
  [ "$jobs" -gt $((avail_gib / 2)) ] && jobs=$((avail_gib / 2))
  [ "$jobs" -lt 1 ] && jobs=1
fi
cmake --build "$dir" --parallel "$jobs" "$@"
