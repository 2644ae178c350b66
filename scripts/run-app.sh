#!/usr/bin/env bash
# Builds Lumen and starts the desktop app. Arguments go to the app (e.g. --database FILE).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${LUMEN_BUILD_DIR:-$root/build}
"$root/scripts/build.sh"
exec "$build/app/lumen" "$@"
