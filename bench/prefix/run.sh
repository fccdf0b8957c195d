#!/usr/bin/env bash
# Multi-turn agent replay on the benchmark model: generates the model (once), then runs prefix_replay with its
# defaults (a 300-token system prompt, 300 new tokens and a 32-token reply per turn, up to 32K tokens; cold turns:
# the first, the last and every 8th) plus any arguments given here, e.g. `bench/prefix/run.sh --cold-every 16`.
# The table goes to stdout and $OUT_DIR/prefix_replay.md, every figure to $OUT_DIR/prefix_replay.json; progress to
# stderr. Exits non-zero when a consistency check fails (greedy replies with reuse differ from cold ones, ...).
# On a 2-core CPU the cold 32K-token prompts take minutes each.
#
# Environment (defaults in brackets):
#   HALO_BUILD_DIR [build]                           where prefix_replay and kimi_gen are (scripts/build.sh
#                                                    --target prefix_replay kimi_gen)
#   HALO_BENCH_PRESET [bench]                        kimi_gen preset (bench: 3.3 GB, real widths)
#   HALO_BENCH_MODEL [$HALO_BUILD_DIR/models/$HALO_BENCH_PRESET]  model directory (generated when absent)
#   OUT_DIR [$HALO_BUILD_DIR/prefix-bench]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${HALO_BUILD_DIR:-build}
preset=${HALO_BENCH_PRESET:-bench}
model=${HALO_BENCH_MODEL:-$build/models/$preset}
out_dir=${OUT_DIR:-$build/prefix-bench}

for exe in prefix_replay kimi_gen; do
  [ -x "$build/bin/$exe" ] || { echo "run.sh: $build/bin/$exe is missing: HALO_BUILD_DIR=$build bash scripts/build.sh --target prefix_replay kimi_gen" >&2; exit 1; }
done
mkdir -p "$out_dir"
if [ ! -f "$model/config.json" ]; then
  echo "run.sh: generating the $preset model in $model"
  "$build/bin/kimi_gen" --preset "$preset" --out "$model"
fi

status=0
"$build/bin/prefix_replay" --model "$model" --json "$out_dir/prefix_replay.json" "$@" | tee "$out_dir/prefix_replay.md" || status=${PIPESTATUS[0]}
echo "run.sh: table in $out_dir/prefix_replay.md, JSON in $out_dir/prefix_replay.json" >&2
exit $status
