#!/usr/bin/env bash
# Installs the Debian 12 packages kiln builds, tests and benchmarks with, and only those that
# are missing: a second run changes nothing and needs no network.
set -euo pipefail

packages=(
    build-essential cmake ninja-build ccache pkg-config
    libhalide14-0-dev libfmt-dev nlohmann-json3-dev libcli11-dev libsqlite3-dev libxgboost-dev
    libgtest-dev googletest libbenchmark-dev
    libdnnl-dev libopenblas-dev
    libonnx-dev libprotobuf-dev libonnx-testdata
    python3-torchvision python3-numpy
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
)

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "install-deps: dpkg-query not found; kiln's scripts expect Debian 12 (apt)" >&2
    exit 1
fi

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then missing+=("$p"); fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-deps: all ${#packages[@]} packages are installed"
    exit 0
fi

sudo=()
if [[ "$(id -u)" -ne 0 ]]; then sudo=(sudo); fi
echo "install-deps: installing ${missing[*]}"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
