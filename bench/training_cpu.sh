#!/usr/bin/env bash
# Images per second of training on this machine, and the overhead of the
# Trainer (every callback of a real run) over a bare forward/backward/step
# loop on the same batches. Usage: bench/training_cpu.sh [BUILD_DIR]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
ninja -C "$build" bench_training >/dev/null
export CIFAR10_DATA_ROOT="${CIFAR10_DATA_ROOT:-$("$root/scripts/data.sh")}"
"$root/bench/cpu_flags.sh"
# Image counts keep each model's run to a minute or two on two cores.
# "quick": the quickstart's settings (fast net width 32, bf16 where the CPU
# has it, crop and flip).
for spec in "cnn 4096 128" "fast 4096 256" "resnet18 1024 128" "fast 4096 256 quick"; do
  set -- $spec
  "$build/bench_training" "$@" 2>/dev/null | grep -E "^(model|bare|batch|trainer)"
done
