#!/usr/bin/env bash
# Installs the Debian 12 packages Lumen needs to build, test and package. Idempotent: when
# everything is present it only checks and returns. Works as root or through sudo.
# The CUDA backend is optional: it is built when nvcc exists (e.g. /usr/local/cuda/bin/nvcc).
set -euo pipefail

packages=(
    build-essential cmake ninja-build ccache pkg-config git file dpkg-dev
    qt6-base-dev qt6-base-dev-tools
    libsqlite3-dev nlohmann-json3-dev libpcre2-dev zlib1g-dev
    libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
    fonts-dejavu-core
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
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
