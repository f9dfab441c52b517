#!/usr/bin/env bash
# One pass on a GPU machine: build against that machine's CUDA LibTorch (the
# one inside its PyTorch wheel), check the CUDA and NCCL paths, benchmark, and
# run the test suite. Prepare .device/ first with bench/gpu_prepare.sh (the
# GPU image has none of our Debian libraries and no network).
# Usage, from the repository root there: bench/gpu_check.sh OUT_DIR [PHASE]
#   PHASE main (default): build everything, throughput against PyTorch,
#   the quick preset, world size 1 with and without an NCCL group, the
#   speed-run preset beside the same recipe in PyTorch; $PARTS (default
#   all) picks among: throughput quick overhead speedrun others;
#   PHASE more: the test suite (on a warm machine it reuses the build), or
#   the tests matching $TESTS (a ctest -R regex), each failure's output kept.
#   Writes OUT_DIR/{gpu.log,summary.txt,build.log,ctest.log}.
# Each step's own timeout keeps one phase inside a 10-minute device call.
set -uo pipefail
out="${1:?usage: bench/gpu_check.sh OUT_DIR [main|more]}"
phase="${2:-main}"
mkdir -p "$out"
root="$PWD"
dev="$root/.device"
exec > >(tee "$out/gpu.log") 2>&1
t_start=$(date +%s)
stamp() { echo "== $(( $(date +%s) - t_start )) s: $*"; }

stamp "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
ldd --version | head -1; nproc; python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda)'

# Python first: LD_LIBRARY_PATH below is for our binaries only.
torch_cmake=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
nccl_inc=$(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "include"))' 2>/dev/null)
stamp "data"
[ -s /tmp/c10/cifar-10-batches-bin/test_batch.bin ] ||
  python3 "$dev/jpeg_to_cifar_bin.py" "$dev/cifar-10-jpeg.tar.gz" /tmp/c10 >/dev/null || exit 1
export CIFAR10_DATA_ROOT=/tmp/c10

stamp "Debian packages into /tmp/sysroot"
sys=/tmp/sysroot
mkdir -p "$sys" /tmp/rtlib
for f in "$dev"/debs/*.deb; do dpkg -x "$f" "$sys"; done
# At run time only the libraries this machine lacks come from the sysroot.
for d in "$sys/usr/lib/x86_64-linux-gnu" "$sys/lib/x86_64-linux-gnu"; do
  [ -d "$d" ] || continue
  for so in "$d"/lib*.so.*; do
    ldconfig -p | grep -q "^[[:space:]]$(basename "$so") " || cp -a "$so" /tmp/rtlib/
  done
done
export LD_LIBRARY_PATH="/tmp/rtlib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PKG_CONFIG_SYSROOT_DIR="$sys"
export PKG_CONFIG_LIBDIR="$sys/usr/lib/x86_64-linux-gnu/pkgconfig:$sys/usr/share/pkgconfig"
pkgconf=$(command -v pkg-config || echo "$sys/usr/bin/pkgconf")

stamp "configure"
b="$root/build-gpu"  # ignored by git, so a warm machine keeps it between calls
cmake -S . -B $b -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch_cmake;$sys/usr" \
  -DCMAKE_POLICY_VERSION_MINIMUM=3.5 \
  -DProtobuf_PROTOC_EXECUTABLE="$sys/usr/bin/protoc" -DPKG_CONFIG_EXECUTABLE="$pkgconf" \
  -DCIFAR10_NCCL_INCLUDE_DIR="$nccl_inc" >"$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
stamp "build"
build_errors() { grep -E "error|FAILED" "$out/build.log" | grep -v "^In file" | sort -u | head -30; }
# The binary and the benchmark first: a test that fails to compile on this
# LibTorch must not cost the benchmarks of a device session.
ninja -C $b cifar10 bench_training >>"$out/build.log" 2>&1 || { build_errors; exit 1; }
ninja -k 0 -C $b all >>"$out/build.log" 2>&1 || { echo "some tests did not build:"; build_errors; } | tee -a "$out/summary.txt"
$b/cifar10 --version

summary() {  # NAME SUMMARY_JSON
  python3 - "$@" <<'PY' | tee -a "$out/summary.txt"
import json, sys
s = json.load(open(sys.argv[2]))
t = s.get("test", {})
print(f"{sys.argv[1]}: test {t.get('accuracy', 0) * 100:.2f}% (top3 {t.get('top3_accuracy', 0) * 100:.2f}%), "
      f"epochs {s.get('epochs_run')}, train {s.get('train_seconds', 0):.1f} s, "
      f"wall+eval {s.get('wall_seconds', 0) + s.get('eval_seconds', 0):.1f} s, {s.get('images_per_second', 0):.0f} img/s, "
      f"device {s.get('device')}")
PY
}
train() {  # NAME FLAGS...
  local name=$1; shift
  stamp "train $name: $*"
  timeout 150 $b/cifar10 --data-dir /tmp/c10 --output-dir /tmp/runs/$name --skip-visualization "$@" \
    >/tmp/runs-$name.log 2>&1 || { echo "$name failed: $(tail -3 /tmp/runs-$name.log)" | tee -a "$out/summary.txt"; return; }
  grep -E "^(Epoch|Test|test|Device|device)" /tmp/runs-$name.log | tail -4
  summary "$name" /tmp/runs/$name/results/training_summary.json
}
mkdir -p /tmp/runs

parts="${PARTS:-throughput quick overhead speedrun others}"
part() { [[ " $parts " == *" $1 "* ]]; }
if [ "$phase" = main ]; then
if part throughput; then
stamp "ResNet-18 throughput: ours (bench_training) and PyTorch eager on this machine"
timeout 120 $b/bench_training resnet18 20000 512 2>&1 | grep -E "^(model|bare|ops|optimizer|trainer)" | tee -a "$out/summary.txt"
# The foreach optimisers against torch::optim on this GPU (to float
# precision), and checkpoints' optimiser state on this LibTorch.
timeout 60 $b/test_training --gtest_filter='Optimizers.*:Checkpoint.*' 2>&1 | grep -E "^\[ +(OK|FAILED|SKIPPED) " | tee -a "$out/summary.txt"
timeout 120 python3 "$root/bench/resnet18_torch.py" | tee -a "$out/summary.txt"
fi

# The README's main command (quick preset).
part quick && train quick --preset quick
# The data-parallel path at world size 1 (an NCCL group of one) against the
# plain one, same settings: what buckets and stop agreement cost on a GPU.
# Alternating, $ROUNDS of each (3), $OVERHEAD_EPOCHS epochs (6), rates of the
# epochs after the first (cuDNN's autotuning and CUDA's start fall in the
# first), and their medians over all runs of a kind. "polled" is
# ours (stream-ordered gradient waits, polled host reads); "blocking" sets
# TORCH_NCCL_BLOCKING_WAIT=1, which makes every wait block the host, as
# every wait did until 2026-11-27 (in 2.x a wait given a timeout blocks).
epoch_rates() {  # LOG: img/s of every epoch after the first
  grep -oE "^Epoch ([2-9]|[1-9][0-9]+)/[0-9]+ - [^-]+ - [0-9]+ img/s" "$1" | grep -oE "[0-9]+ img/s" |
    awk '{print $1}' | tr '\n' ' '
}
if part overhead; then
epochs=${OVERHEAD_EPOCHS:-6}
for i in $(seq "${ROUNDS:-3}"); do
  train plain_e${epochs}_$i --preset quick --epochs $epochs
  echo "plain_e${epochs}_$i epoch img/s: $(epoch_rates /tmp/runs-plain_e${epochs}_$i.log)" | tee -a "$out/summary.txt"
  for wait in polled blocking; do
    name=nccl_w1_e${epochs}_${i}_$wait
    stamp "NCCL process group, world size 1 ($name)"
    blocking=0; [ $wait = blocking ] && blocking=1
    TORCH_NCCL_BLOCKING_WAIT=$blocking WORLD_SIZE=1 RANK=0 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 \
      MASTER_PORT=$((29550 + 2 * i + blocking)) timeout 120 $b/cifar10 --data-dir /tmp/c10 --output-dir /tmp/runs/$name \
      --skip-visualization --preset quick --epochs $epochs --dist-backend nccl >/tmp/runs-$name.log 2>&1
    tail -2 /tmp/runs-$name.log
    # The group is shut down before exit (compat::shutdown_backend): no warning.
    echo "$name: destroy_process_group warnings: $(grep -c destroy_process_group /tmp/runs-$name.log)" |
      tee -a "$out/summary.txt"
    summary $name /tmp/runs/$name/results/training_summary.json
    echo "$name epoch img/s: $(epoch_rates /tmp/runs-$name.log)" | tee -a "$out/summary.txt"
  done
done
python3 - "$out/summary.txt" <<'PY' | tee -a "$out/summary.txt"
import re, statistics, sys
rates = {}
for line in open(sys.argv[1]):
    m = re.match(r"(plain|nccl_w1)_e\d+_\d+(?:_(\w+))? epoch img/s: (.*)", line)
    if m:
        rates.setdefault(m.group(2) or "plain", []).extend(float(x) for x in m.group(3).split())
plain = statistics.median(rates["plain"])
for kind, r in rates.items():
    med = statistics.median(r)
    print(f"median epoch img/s {kind}: {med:.0f} over {len(r)} epochs, {100 * (plain / med - 1):+.1f}% time against plain")
PY
fi

# A best checkpoint evaluated alone: an evaluation without training once
# kept its model on the CPU and stopped on CUDA batches. And on the CPU: a
# checkpoint written on a GPU names cuda:0 storages.
for run in quick plain_e${OVERHEAD_EPOCHS:-6}_1; do
  ckpt=/tmp/runs/$run/checkpoints/best_model.pt
  [ -s $ckpt ] || continue
  stamp "evaluate $ckpt alone, on cuda and on the cpu"
  for device in cuda cpu; do  # not $dev, the bundle's folder
    timeout 90 $b/cifar10 --skip-training --load-model $ckpt --data-dir /tmp/c10 \
      --device $device --test-limit 2000 --output-dir /tmp/runs/eval_alone_$device --skip-visualization \
      >/tmp/runs-eval_alone_$device.log 2>&1
    echo "eval_alone_$device ($run): exit $? $(grep -E '^(error|Test)' /tmp/runs-eval_alone_$device.log | tail -1)" |
      tee -a "$out/summary.txt"
  done
  break
done

if part speedrun; then
# --preset speedrun over $SEEDS seeds (5), each beside bench/speedrun_torch.py
# (the same recipe in PyTorch eager) on the same GPU, data and seed. Our
# training time is train_seconds (steps and per-epoch validation; CUDA's
# start and cuDNN's autotuning fall in the first epoch, shown apart).
for seed in $(seq 1 "${SEEDS:-5}"); do
  train speedrun_$seed --preset speedrun --seed $seed
  timeout 120 python3 "$root/bench/speedrun_torch.py" /tmp/c10 --seed $seed | tee -a "$out/summary.txt"
done
python3 - "$out/summary.txt" <<'PY' | tee -a "$out/summary.txt"
import re, statistics, sys
ours, theirs = [], []
for line in open(sys.argv[1]):
    m = re.match(r"speedrun_\d+: test ([\d.]+)%.*train ([\d.]+) s", line)
    if m: ours.append((float(m.group(1)), float(m.group(2))))
    m = re.match(r"speedrun_torch: seed \d+, test ([\d.]+)%, train ([\d.]+) s", line)
    if m: theirs.append((float(m.group(1)), float(m.group(2))))
for name, rows in (("ours", ours), ("pytorch", theirs)):
    if rows:
        print(f"speedrun {name}: mean test {statistics.mean(r[0] for r in rows):.2f}% over {len(rows)} seeds, "
              f"median train {statistics.median(r[1] for r in rows):.2f} s")
PY
fi

if part others; then
train fast64_e10 --preset quick --width 64 --epochs 10 --batch-size 512 --learning-rate 0.4
# ResNet-18 with the original's recipe: whole epochs, augmentation included.
train resnet18_adam_e3 --model-type resnet --epochs 3 --batch-size 512
# A checkpoint the CPU build (LibTorch 1.13) wrote, resumed here (2.x).
if [ -s "$dev/ckpt_cpu/checkpoints/latest_model.pt" ]; then
  stamp "resume a LibTorch 1.13 checkpoint"
  timeout 90 $b/cifar10 --resume "$dev/ckpt_cpu/checkpoints/latest_model.pt" --preset quick --width 16 --epochs 2 \
    --train-limit 1024 --validation-size 256 --test-limit 200 --device cuda --data-dir /tmp/c10 \
    --output-dir /tmp/runs/resume_cpu --skip-visualization >/tmp/runs-resume_cpu.log 2>&1
  echo "resume_cpu_checkpoint: exit $? $(grep -E '^(error|Test)' /tmp/runs-resume_cpu.log | tail -1)" |
    tee -a "$out/summary.txt"
fi
# --deterministic on CUDA: every model family twice, bit for bit.
stamp "deterministic runs on CUDA"
timeout 120 $b/test_e2e --gtest_filter='Train.DeterministicFlagRepeatsRunsBitExactly' 2>&1 |
  grep -E "^\[ +(OK|FAILED) |Failure|error" | head -20 | tee -a "$out/summary.txt"
fi
else
# Six at a time: twelve processes of 16 threads each on 16 cores (and one
# GPU) ran the slowest tests past their limit.
# Without $TESTS, the tests that use the GPU most come first (whole runs,
# training, evaluation), then the rest, in one time budget.
deadline=$(( $(date +%s) + ${CTEST_SECONDS:-240} ))
run_ctest() {
  local left=$(( deadline - $(date +%s) ))
  [ "$left" -gt 10 ] || { echo "no time left for ctest $*" >>"$out/ctest.log"; return; }
  stamp "ctest $*"
  (cd $b && timeout "$left" ctest -j "${CTEST_JOBS:-6}" --timeout 300 --output-on-failure "$@" >>"$out/ctest.log" 2>&1)
}
gpu_labels='e2e|training|evaluation'
if [ -n "${TESTS:-}" ]; then run_ctest -R "$TESTS"; else run_ctest -L "$gpu_labels"; run_ctest -LE "$gpu_labels"; fi
grep -E "tests passed|tests failed|\*\*\*|Failed|no time left" "$out/ctest.log" | head -60
fi
stamp "done"
