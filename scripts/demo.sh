#!/usr/bin/env bash
# Fresh Debian 12 to a running engine: installs dependencies, builds, and generates text with the built-in demo model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh --target engine halo_cpu demo_model
./build/bin/engine backends
./build/bin/engine --prompt "Once upon a time" --max-tokens 32 "$@"
