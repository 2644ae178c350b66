#!/usr/bin/env bash
# Installs the Debian 12 packages Lumen needs to build, test and package. Idempotent: when
# everything is present it only checks and returns. Works as root or through sudo.
# The CUDA backend is optional: it is built when nvcc exists (e.g. /usr/local/cuda/bin/nvcc).
set -euo pipefail

packages=(
    build-essential cmake ninja-build ccache pkg-config git file dpkg-dev
    qt6-base-dev qt6-base-dev-tools
    libsqlite3-dev nlohmann-json3-dev libpcre2-dev zlib1g-dev libcpp-httplib-dev qtkeychain-qt6-dev
    libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
    fonts-dejavu-core
)

# Node.js and npm drive the server tests with OpenAI's client library (tests/server); any Node
# 18 or newer will do, so Debian's is installed only when there is none.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
root=$(cd "$(dirname "$0")/.." && pwd)
# The npm packages the tests pin (package-lock.json), once per lock file.
install_npm() {
    local dir="$root/tests/server"
    if [ -f "$dir/node_modules/.package-lock.json" ] && [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
        return 0
    fi
    echo "install-deps: installing the server tests' npm packages (tests/server)"
    if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error); then
        echo "install-deps: npm could not install tests/server's packages; the OpenAI client checks will be skipped" >&2
    fi
}

if [ ${#missing[@]} -eq 0 ]; then
    install_npm
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "install-deps: these packages are missing and I am not root (and there is no sudo):" >&2
    echo "  ${missing[*]}" >&2
    exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
install_npm
