#!/usr/bin/env bash
# Command (1) of the README: installs what is missing, builds, and runs the
# main job: train, evaluate and write results. On a CPU it runs the quick
# preset (ten minutes of training and evaluation at most); with a GPU, the
# same preset runs there. Extra arguments go to cifar10, e.g. --epochs 20.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
# The binary only: the tests wait for scripts/test.sh.
BUILD_TARGETS=cifar10 "$root/scripts/build.sh"
data="$("$root/scripts/data.sh")"
out="${OUTPUT_DIR:-$root/runs/quickstart}"
"${BUILD_DIR:-$root/build}/cifar10" --preset quick --data-dir "$data" --output-dir "$out" "$@"
cat <<EOT

The original system's full configuration (ResNet-18, Adam 1e-3, 100 epochs,
rotation/shift/zoom/flip, early stopping 15, ReduceLROnPlateau):
  ${BUILD_DIR:-build}/cifar10 --model-type resnet --epochs 100 --batch-size 128 --learning-rate 0.001 --data-dir $data --output-dir runs/full
EOT
