#!/usr/bin/env bash
# Training throughput of the data-parallel path on CPU, for docs/BENCHMARKS.md:
#   plain     one process, no process group (the default at world size 1)
#   ddp-1     one worker through the launcher with a real Gloo group of one
#             (--nproc-per-node 1 --dist-backend gloo): what the gradient
#             buckets, buffer broadcast and per-step stop agreement cost
#   ddp-2     two workers, Gloo over loopback, each with half the cores
# Images/s is results/training_summary.json's images_per_second: global
# images over the time spent in training steps (validation excluded).
#
# Usage: bench/distributed_cpu.sh [BUILD_DIR] [REPEATS]
#   CIFAR10_DATA_ROOT  folder holding cifar-10-batches-bin/ (required)
#   BENCH_MODEL        model type (default cnn)
#   BENCH_TRAIN        training images per epoch (default 2560)
#   BENCH_BATCH        global batch size (default 128)
set -euo pipefail

build=${1:-build}
repeats=${2:-3}
bin="$build/cifar10"
model=${BENCH_MODEL:-cnn}
train=${BENCH_TRAIN:-2560}
batch=${BENCH_BATCH:-128}
: "${CIFAR10_DATA_ROOT:?set CIFAR10_DATA_ROOT to the folder holding cifar-10-batches-bin/}"
[[ -x "$bin" ]] || { echo "error: $bin not found (hint: pass the build folder)" >&2; exit 2; }

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# Two epochs: the first one's start-up (allocations, thread pools) is shared
# by every configuration alike; the median of the repeats is reported.
common=(--data-dir "$CIFAR10_DATA_ROOT" --model-type "$model" --epochs 2 --train-limit "$train"
        --batch-size "$batch" --validation-size 256 --skip-inference --skip-visualization
        --early-stopping-patience 0 --seed 1)

measure() {  # name, extra flags...
  local name=$1; shift
  local rates=()
  for i in $(seq "$repeats"); do
    local out="$scratch/$name-$i"
    "$bin" "${common[@]}" --output-dir "$out" "$@" > "$out.log" 2>&1 ||
      { echo "error: $name run $i failed, see below" >&2; tail -5 "$out.log" >&2; exit 1; }
    rates+=("$(sed -n 's/.*"images_per_second": \([0-9.]*\).*/\1/p' "$out/results/training_summary.json")")
  done
  local median
  median=$(printf '%s\n' "${rates[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf '| %-6s | %10.1f | %s |\n' "$name" "$median" "${rates[*]}"
  eval "rate_${name//-/_}=$median"
}

echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), nproc $(nproc)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "model $model, $train images x 2 epochs, global batch $batch, median of $repeats"
echo
echo "| run    |   images/s | all runs |"
echo "|--------|-----------:|----------|"
measure plain
measure ddp-1 --nproc-per-node 1 --dist-backend gloo
measure ddp-2 --nproc-per-node 2
echo
awk -v p="$rate_plain" -v d1="$rate_ddp_1" -v d2="$rate_ddp_2" 'BEGIN {
  printf "data-parallel overhead at world size 1: %.1f%%\n", (p / d1 - 1) * 100
  printf "speed-up of 2 workers over 1 process:   %.2fx\n", d2 / p
}'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
