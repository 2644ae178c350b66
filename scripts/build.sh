#!/usr/bin/env bash
# Configures (once) and builds Lumen into build/ (or $LUMEN_BUILD_DIR). Extra arguments go to
# the first CMake configure, e.g. scripts/build.sh -DLUMEN_SANITIZE=ON.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${LUMEN_BUILD_DIR:-$root/build}
"$root/scripts/install-deps.sh"
if [ ! -f "$build/CMakeCache.txt" ] || [ $# -gt 0 ]; then
    cmake -S "$root" -B "$build" -G Ninja "$@"
fi
cmake --build "$build" --parallel "$(nproc)"
