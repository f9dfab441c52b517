#!/usr/bin/env bash
# Configures and builds cifar10 (Release) into build/ (or $BUILD_DIR).
# Extra arguments go to cmake, e.g. -DCIFAR10_SANITIZE=ON. BUILD_TARGETS
# (space-separated) limits what is built; default: everything, tests too.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
# Two jobs per core at most: each LibTorch translation unit needs ~1 GB.
# shellcheck disable=SC2086  # BUILD_TARGETS is a list
ninja -C "$build" -j "$(nproc)" ${BUILD_TARGETS:-}
