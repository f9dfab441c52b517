#!/usr/bin/env bash
# Command (2) of the README: installs what is missing, builds, and runs every
# test (unit, real-data, real-process) with ctest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
export CIFAR10_DATA_ROOT="$("$root/scripts/data.sh")"
cd "${BUILD_DIR:-$root/build}"
ctest --output-on-failure -j "$(nproc)" "$@"
