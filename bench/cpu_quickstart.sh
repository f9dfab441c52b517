#!/usr/bin/env bash
# Runs the README's main command three times with different seeds and prints
# wall time (training start to the final test figure) and test accuracy for
# each, then the medians. Usage: bench/cpu_quickstart.sh [EXTRA FLAGS...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
echo "# $(date -u +%F) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
results=()
for seed in 1 2 3; do
  out="$(mktemp -d)"
  OUTPUT_DIR="$out" "$root/scripts/run.sh" --seed "$seed" --skip-visualization "$@" >"$out.log" 2>&1
  line=$(python3 - "$out/results/training_summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"{s['test']['accuracy'] * 100:.2f} {s['wall_seconds'] + s.get('eval_seconds', 0):.1f}")
PY
)
  echo "seed $seed: test accuracy ${line% *}%, wall ${line#* } s"
  results+=("$line")
  rm -rf "$out" "$out.log"
done
printf '%s\n' "${results[@]}" | python3 -c '
import sys, statistics
rows = [tuple(map(float, l.split())) for l in sys.stdin if l.strip()]
print(f"median: test accuracy {statistics.median(r[0] for r in rows):.2f}%, wall {statistics.median(r[1] for r in rows):.1f} s")'
