#!/usr/bin/env bash
# The sanitizer step of scripts/test.sh, also usable alone: builds Halo with AddressSanitizer and
# UndefinedBehaviorSanitizer (HALO_SANITIZE=ON) into ./build-asan and runs the tests under them. Any finding fails:
# a memory error, a leak or undefined behaviour aborts the process, and since the engine CLI tests run the engine as
# a child whose exit code they only check for non-zero, every report also goes to build-asan/sanitizer-reports/,
# which must be empty afterwards. Extra arguments go to ctest (e.g. -R Golden).
#
# What runs: every test of the release step: core_tests (model files, config, numerics, sampler, plugin loader,
# bounded input), the tokenizer tests, op conformance, model goldens and check mode on the CPU plugin (the CPU's best
# kernels, then each kernel set forced by HALO_CPU_ISA) and on the Vulkan plugin over lavapipe, the Vulkan plugin's own tests, the
# engine CLI tests, xcheck (the engine on generated configurations against tools/ref/kimi_ref.py), and every fuzz
# target's corpus and all its mutations (HALO_SANITIZE_FUZZ_PERCENT=N replays N% of them: under the sanitizers a
# mutation costs ~10x, and the fuzz tests are three quarters of this step's test time). Libraries and plugins build
# at -O1 -g1, executables' own sources (tests, CLI, tools) at -O0 (HALO_SANITIZE_EXE_OPT), which cuts the build by a
# third at little cost in test time.
# What does not: the benchmarks and the hipcc build of the HIP plugin (not built; its kernels run here on the HIP
# host emulator, libhalo_hipemu.so, which is, through the op conformance suite only: see below). The tests that load the Khronos validation layer run with leak
# detection off (memory errors still abort): the layer leaks ~14 KB of its own C++ objects and the Vulkan loader
# unloads it before LeakSanitizer looks, so a suppression cannot name it. Mesa's lavapipe reports nothing.
# Cost on a 2-core machine: build 8-12 min, tests 8-14 min (fuzz a third of it) and the emulated HIP plugin's
# conformance ~2 min, 17-28 min in all (Xeon; Zen 5 VM); the release step before it 10-16 min (the hipcc build of the
# HIP plugin included), the whole of CI 27-44 min.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
dir=build-asan
configure=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" -DHALO_SANITIZE=ON
           -DHALO_SANITIZE_EXE_OPT=-O0 -DHALO_BUILD_BENCH=OFF -DHALO_HIP=OFF
           "-DHALO_FUZZ_RUNS_PERCENT=${HALO_SANITIZE_FUZZ_PERCENT:-100}")
if [ ! -f "$dir/CMakeCache.txt" ] && command -v ninja >/dev/null; then
  configure+=(-G Ninja)
fi
cmake -S . -B "$dir" "${configure[@]}" >/dev/null

# Findings abort (build-time tools such as the demo model generator run instrumented too); user settings come last.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:\
check_initialization_order=1:strict_init_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
HALO_BUILD_DIR=$dir bash scripts/build.sh

reports=$dir/sanitizer-reports
rm -rf "$reports"
mkdir -p "$reports"
status=0
validation='^Vulkan(Recording|Quant)\..*Validation'
run_ctest() {
  ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$PWD/$reports/asan:log_exe_name=1$1" \
  UBSAN_OPTIONS="$UBSAN_OPTIONS:log_path=$PWD/$reports/ubsan:log_exe_name=1" \
    ctest --test-dir "$dir" --output-on-failure --parallel 2 --timeout 900 "${@:2}" || status=$?
}
# The emulated HIP plugin (hipemu) runs ten times slower under the sanitizers: it is left out of the suites that run
# every plugin (its goldens, plans, prefix reuse and CLI runs are the release step's) and runs the op conformance
# suite on its own, which is where a kernel reading or writing out of bounds shows.
export HALO_TEST_SKIP_PLUGINS=hipemu
run_ctest "" -E "$validation|^hipemu_|/hipemu" "$@"
unset HALO_TEST_SKIP_PLUGINS
[ $# -eq 0 ] && run_ctest "" -R "^Plugins/Conformance\\..*/hipemu"
[ $# -eq 0 ] && run_ctest ":detect_leaks=0" -R "$validation"
shopt -s nullglob
found=("$reports"/*)
if [ ${#found[@]} -gt 0 ]; then
  for f in "${found[@]}"; do
    echo "==== sanitizer report $f"
    cat "$f"
  done
  echo "test-sanitize: ${#found[@]} sanitizer report(s) above" >&2
  status=1
fi
exit $status
