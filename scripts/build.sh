#!/usr/bin/env bash
# Installs what is missing, configures a Release build in build/ and builds everything with all
# cores. Safe to run again: an existing build/ is reused and only what changed is rebuilt.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh

args=(-S . -B build -DCMAKE_BUILD_TYPE=Release)
# A configured build/ keeps the generator it was made with; CMake refuses to switch.
if [[ ! -f build/CMakeCache.txt ]] && command -v ninja >/dev/null 2>&1; then
    args+=(-G Ninja)
fi
if command -v ccache >/dev/null 2>&1; then
    args+=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake "${args[@]}"
cmake --build build --parallel "$(nproc)"
