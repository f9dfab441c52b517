#!/usr/bin/env bash
# Kill -9 sweep: a tiny CNN training (3 epochs of 8 steps) is SIGKILLed
# until POINTS kills (default 20) have landed -- at random times, inside
# checkpoint writes (held just before the rename by the test's rename()
# shim, tests/reliability/hold_rename.cpp) and just after one -- and
# resumed from checkpoints/latest_model.pt after each kill (started over
# when there is none). It checks that every checkpoint left
# behind reads back, that every run not killed finishes, and that each
# chain of runs ends with weights bit-identical to an uninterrupted run.
#   scripts/kill_sweep.sh [POINTS] [SEED]
# Takes 5-10 s per point on two cores. The 3-point version runs in the
# test suite (test_reliability, KillSweep.ThreePoints...).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$build" -j "$(nproc)" cifar10 test_reliability
export CIFAR10_DATA_ROOT="$("$root/scripts/data.sh")"
CIFAR10_KILL_POINTS="${1:-20}" CIFAR10_KILL_SEED="${2:-1}" \
  "$build/test_reliability" --gtest_filter='KillSweep.DISABLED_Many' --gtest_also_run_disabled_tests
