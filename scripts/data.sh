#!/usr/bin/env bash
# Prints a folder holding cifar-10-batches-bin/. On machines with the
# project's shared/ folder, that is the J75 copy rebuilt offline; elsewhere
# it prints data/ and the binary downloads the official archive into it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared_tool="$root/../shared/tools/cifar10-data.sh"
if [ -n "${CIFAR10_DATA_ROOT:-}" ]; then
  echo "$CIFAR10_DATA_ROOT"
elif [ -x "$shared_tool" ]; then
  "$shared_tool"
else
  echo "$root/data"
fi
