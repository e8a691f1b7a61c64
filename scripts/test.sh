#!/usr/bin/env bash
# Builds (installing what is missing) and runs every test; exits with ctest's status.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/build.sh
status=0
ctest --test-dir build --output-on-failure -j2 || status=$?
exit "$status"
