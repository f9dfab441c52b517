#!/usr/bin/env bash
# Runs the README's main command three times with different seeds and prints
# wall time (training start to the final test figure), test accuracy and
# the epochs the time budget planned for each, then the medians, under a
# line naming the CPU and its AMX / AVX-512 BF16 / AVX2 flags. Run it as
# well under ONEDNN_MAX_CPU_ISA=AVX2 for a laptop's kernels.
# Usage: [SEEDS="1 2 3"] bench/cpu_quickstart.sh [EXTRA FLAGS...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/bench/cpu_flags.sh"
results=()
for seed in ${SEEDS:-1 2 3}; do
  out="$(mktemp -d)"
  OUTPUT_DIR="$out" "$root/scripts/run.sh" --seed "$seed" --skip-visualization "$@" >"$out.log" 2>&1
  line=$(/usr/bin/python3 - "$out/results/training_summary.json" "$out/results/inference_results.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
ece = json.load(open(sys.argv[2]))['calibration']['ece']
epochs = s.get('time_budget', {}).get('epochs', s['epochs_run'])
seconds = s['wall_seconds'] + s.get('eval_seconds', 0) + s.get('calibration_seconds', 0)
seconds += s.get('time_budget', {}).get('measure_seconds', 0)
print(f"{s['test']['accuracy'] * 100:.2f} {seconds:.1f} {epochs} {ece:.4f}")
PY
)
  read -r accuracy wall epochs ece <<<"$line"
  echo "seed $seed: test accuracy ${accuracy}%, training and evaluation ${wall} s, ${epochs} epochs, ECE ${ece}"
  grep '^Time budget' "$out.log" | sed 's/^/  /' || true  # the plan and its corrections
  results+=("$line")
  rm -rf "$out" "$out.log"
done
printf '%s\n' "${results[@]}" | /usr/bin/python3 -c '
import sys, statistics
rows = [tuple(map(float, l.split())) for l in sys.stdin if l.strip()]
print(f"median: test accuracy {statistics.median(r[0] for r in rows):.2f}%, training and evaluation {statistics.median(r[1] for r in rows):.1f} s, ECE {statistics.median(r[3] for r in rows):.4f}")'
