#!/usr/bin/env bash
# Command (2) of the README: installs what is missing, builds, and runs every
# test (unit, real-data, real-process) with ctest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/layers.sh"
"$root/scripts/build.sh"
export CIFAR10_DATA_ROOT="$("$root/scripts/data.sh")"
# The tests read the real data and never download it: without it, one line
# here rather than a hundred failing tests.
if [ ! -s "$CIFAR10_DATA_ROOT/cifar-10-batches-bin/test_batch.bin" ]; then
  echo "error: no CIFAR-10 data in $CIFAR10_DATA_ROOT/cifar-10-batches-bin (the tests never download it;" \
    "hint: run scripts/run.sh once, which downloads it there, or set CIFAR10_DATA_ROOT to a folder holding it)" >&2
  exit 2
fi
cd "${BUILD_DIR:-$root/build}"
ctest --output-on-failure -j "$(nproc)" "$@"
# The tests of arithmetic (training, models, evaluation, metrics) again on another
# CPU family's kernels, the ones an AVX2 laptop gets (ATen's AVX2 code,
# OpenBLAS's Haswell GEMM, oneDNN held to AVX2): a result that holds only on
# this machine's CPU fails here, not on a user's. Skipped when arguments
# chose the tests.
if [ $# -eq 0 ]; then
  echo "test: the training, models, evaluation and metrics tests again under an AVX2 CPU's kernels"
  ATEN_CPU_CAPABILITY=avx2 OPENBLAS_CORETYPE=Haswell ONEDNN_MAX_CPU_ISA=AVX2 \
    ctest --output-on-failure -j "$(nproc)" -L '^(training|models|evaluation|metrics)$'
fi
