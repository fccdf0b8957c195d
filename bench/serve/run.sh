#!/usr/bin/env bash
# Serving benchmark on the benchmark model: generates it (once), starts `engine serve` on it with --parallel 16,
# runs serve_bench at concurrency 1, 4 and 16 and the interference test (one 8K-token prompt admitted beside running
# streams), then stops the server with SIGTERM (it must drain and exit 0). Results: a table on stdout, JSON in
# $OUT_DIR/serve_bench.json and $OUT_DIR/interference.json, the server's log in $OUT_DIR/serve.log.
#
# Environment (defaults in brackets):
#   HALO_BUILD_DIR [build]             where engine, kimi_gen and serve_bench are (scripts/build.sh --target engine
#                                      halo_cpu kimi_gen serve_bench)
#   HALO_BENCH_PRESET [bench]          kimi_gen preset (bench: 3.3 GB, real widths; tiny or demo for a quick run)
#   HALO_BENCH_VOCAB_FROM []           passed to kimi_gen --vocab-from (e.g. build/models/demo): gives the model a
#                                      tokenizer, and the vocabulary becomes the tokenizer's size (4256 for the demo's,
#                                      163840 in the bench preset). Without a tokenizer the server streams no text,
#                                      so only throughput and end-to-end latency can be measured, not TTFT/TPOT/ITL
#   HALO_BENCH_MODEL [$HALO_BUILD_DIR/models/serve-$HALO_BENCH_PRESET[-vocab-NAME]]  model directory (generated
#                                      when absent)
#   HALO_BENCH_REQUESTS [16] HALO_BENCH_INPUT_LEN [256] HALO_BENCH_OUTPUT_LEN [32] HALO_BENCH_CONCURRENCY [1,4,16]
#   HALO_BENCH_PARALLEL [16] HALO_BENCH_CONTEXT [10240] HALO_BENCH_THREADS [all cores]
#   HALO_BENCH_INTERFERENCE_PROMPT [8192] (0 skips it) HALO_BENCH_INTERFERENCE_STREAMS [4]
#   OUT_DIR [$HALO_BUILD_DIR/serve-bench]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${HALO_BUILD_DIR:-build}
preset=${HALO_BENCH_PRESET:-bench}
vocab_from=${HALO_BENCH_VOCAB_FROM:-}
model=${HALO_BENCH_MODEL:-$build/models/serve-$preset${vocab_from:+-vocab-$(basename "$vocab_from")}}
out_dir=${OUT_DIR:-$build/serve-bench}
parallel=${HALO_BENCH_PARALLEL:-16}
context=${HALO_BENCH_CONTEXT:-10240}
interference=${HALO_BENCH_INTERFERENCE_PROMPT:-8192}
bench_args=(--requests "${HALO_BENCH_REQUESTS:-16}" --input-len "${HALO_BENCH_INPUT_LEN:-256}"
            --output-len "${HALO_BENCH_OUTPUT_LEN:-32}")

for exe in engine kimi_gen serve_bench; do
  [ -x "$build/bin/$exe" ] || { echo "run.sh: $build/bin/$exe is missing: HALO_BUILD_DIR=$build bash scripts/build.sh --target engine halo_cpu kimi_gen serve_bench" >&2; exit 1; }
done
mkdir -p "$out_dir"

if [ ! -f "$model/config.json" ]; then
  gen=("$build/bin/kimi_gen" --preset "$preset" --out "$model")
  [ -n "$vocab_from" ] && gen+=(--vocab-from "$vocab_from")
  echo "run.sh: generating the $preset model in $model"
  "${gen[@]}"
fi

serve=("$build/bin/engine" serve --model "$model" --port 0 --parallel "$parallel" --context "$context" --model-name "$preset")
[ -n "${HALO_BENCH_THREADS:-}" ] && serve+=(--threads "$HALO_BENCH_THREADS")
log="$out_dir/serve.log"
"${serve[@]}" 2>"$log" &
server_pid=$!
trap 'kill -TERM $server_pid 2>/dev/null || true' EXIT

# The listening line comes before the model is loaded; /health says 200 once it is.
url=""
for _ in $(seq 1 600); do
  url=$(sed -n 's/^engine: listening on \(http:[^ ]*\)$/\1/p' "$log" | head -n 1)
  [ -n "$url" ] && break
  kill -0 $server_pid 2>/dev/null || { echo "run.sh: engine serve exited:" >&2; cat "$log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "run.sh: engine serve printed no listening line" >&2; exit 1; }
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/health")" = 200 ]; do
  kill -0 $server_pid 2>/dev/null || { echo "run.sh: engine serve exited while loading:" >&2; cat "$log" >&2; exit 1; }
  sleep 0.5
done
echo "run.sh: $(grep '^engine: ready' "$log" | head -n 1) at $url"

status=0
"$build/bin/serve_bench" --url "$url" --concurrency "${HALO_BENCH_CONCURRENCY:-1,4,16}" "${bench_args[@]}" \
  --json-out "$out_dir/serve_bench.json" || status=1
if [ "$interference" -gt 0 ]; then
  "$build/bin/serve_bench" --url "$url" --interference-only --interference-prompt "$interference" \
    --interference-streams "${HALO_BENCH_INTERFERENCE_STREAMS:-4}" "${bench_args[@]}" \
    --json-out "$out_dir/interference.json" || status=1
fi

kill -TERM $server_pid
trap - EXIT
server_status=0
wait $server_pid || server_status=$?
if [ $server_status -ne 0 ]; then
  echo "run.sh: engine serve exited with status $server_status after SIGTERM (expected 0); see $log" >&2
  status=1
fi
echo "run.sh: JSON in $out_dir/serve_bench.json and $out_dir/interference.json; server log $log"
exit $status
