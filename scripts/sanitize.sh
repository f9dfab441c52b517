#!/usr/bin/env bash
# Builds cifar10 and its unit tests with AddressSanitizer + UBSan (g++,
# -DCIFAR10_SANITIZE=ON) in build-sanitize/ and runs them. Too slow for CI
# on two cores (a full instrumented build plus tests); run it before a
# release or after touching parsers and file handling.
#   [SANITIZE_JOBS=N] scripts/sanitize.sh [CTEST_LABEL_REGEX]
#   labels default: common|config|data|training|evaluation|reporting|models;
#   '.*' for every label. SANITIZE_JOBS (default 1): tests at once.
# LibTorch, protobuf and the other Debian libraries are not instrumented:
# ASan still checks every access our code makes (and their malloc/free and
# memcpy), not the accesses inside them. See docs/RELIABILITY.md.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SANITIZE_BUILD_DIR:-$root/build-sanitize}"
labels="${1:-common|config|data|training|evaluation|reporting|models}"

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCIFAR10_SANITIZE=ON >/dev/null
ninja -C "$build" -j "$(nproc)"
export CIFAR10_DATA_ROOT="$("$root/scripts/data.sh")"

# detect_leaks with suppressions: LibTorch, OpenMP and protobuf keep
#   per-process registries and pools until exit (scripts/lsan.supp); leaks
#   in our code still fail the run.
# detect_container_overflow=0: std::vector annotations need every library
#   that touches a vector instrumented; LibTorch's are not, so vectors it
#   fills look overflowed.
# halt_on_error / abort_on_error: the first report fails the test.
# verify_asan_link_order=0: the kill tests preload a shim that holds
#   rename() (tests/reliability/hold_rename.cpp), so the ASan runtime is not
#   the first library; the shim defines nothing ASan intercepts.
export ASAN_OPTIONS="detect_leaks=1:detect_container_overflow=0:halt_on_error=1:abort_on_error=1:verify_asan_link_order=0:${ASAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$root/scripts/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
cd "$build"
# One test at a time by default: each instrumented test process needs
# ~1-2 GB, and a data-parallel test starts several.
ctest --output-on-failure -L "$labels" -j "${SANITIZE_JOBS:-1}" --timeout 1800
