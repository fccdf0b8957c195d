#!/usr/bin/env bash
# Installs the Debian 12 packages Halo builds and tests with. Safe to run again.
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config git
  libboost-dev libtomlplusplus-dev nlohmann-json3-dev libcli11-dev libpcre2-dev
  libcpp-httplib-dev libssl-dev zlib1g-dev libbrotli-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  libvulkan-dev glslc glslang-tools spirv-tools mesa-vulkan-drivers vulkan-tools vulkan-validationlayers
  python3-numpy
  clang  # builds the skeleton plugin a second time, to test a plugin from another compiler than the core's
  hipcc libamdhip64-dev  # Debian's HIP 5.2: compiles the HIP plugin's kernels for gfx1030 and gfx90a on every build
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The server's SDK tests (tests/server/js) run on Node 18.19 or later: Debian's nodejs unless one is on PATH already.
command -v node >/dev/null || missing+=(nodejs npm)

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages are installed"
else
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The openai and @anthropic-ai/sdk packages pinned in package-lock.json, installed when missing or out of date.
js_dir="$(dirname "$0")/../tests/server/js"
if [ -f "$js_dir/package-lock.json" ] &&
   { [ ! -f "$js_dir/node_modules/.package-lock.json" ] ||
     [ "$js_dir/package-lock.json" -nt "$js_dir/node_modules/.package-lock.json" ]; }; then
  echo "setup: npm ci in tests/server/js"
  (cd "$js_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi
