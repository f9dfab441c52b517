#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/*_fuzz.cpp) with clang-14, ASan and
# UBSan in their own build folder, and runs each for SECONDS (default 600),
# one after another, printing executions and coverage per target.
#   scripts/fuzz.sh [SECONDS] [TARGET...]     e.g. scripts/fuzz.sh 120 image_fuzz
# Past findings (fuzz/regressions/<name>/) are replayed first. Inputs found
# interesting are added to fuzz/corpus/<name>/ only with
# FUZZ_KEEP_CORPUS=1 (else a scratch copy is used, so the committed seed
# corpus stays small); crashes land in $FUZZ_OUT (default build-fuzz/findings).
# The normal g++ build is not touched.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-600}"
shift || true
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
out="${FUZZ_OUT:-$build/findings}"

# clang-14 and its compiler-rt (libFuzzer, sanitizer runtimes) are only
# needed here, so they are installed here rather than by setup.sh.
if ! command -v clang++-14 >/dev/null || ! dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q "install ok installed"; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "fuzz: needs clang-14 and libclang-rt-14-dev: sudo apt-get install -y clang-14 libclang-rt-14-dev" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang-14 libclang-rt-14-dev >/dev/null
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$root"/fuzz/*_fuzz.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi

CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCIFAR10_FUZZ=ON -DCIFAR10_TESTS=OFF >/dev/null
ninja -C "$build" -j "$(nproc)" make_corpus "${targets[@]}"

# LibTorch's static registries are allocated once and never freed: LSan
# would report them at exit of every input that first touched them.
export LSAN_OPTIONS="suppressions=$root/scripts/lsan.supp:print_suppressions=0"
# Container-overflow checks need every library instrumented; LibTorch
# and protobuf are not, and their std::vector writes look like overflows.
export ASAN_OPTIONS="detect_container_overflow=0:${ASAN_OPTIONS:-}"
mkdir -p "$out"
failed=0
for target in "${targets[@]}"; do
  name="${target%_fuzz}"
  seeds="$root/fuzz/corpus/$name"
  [ -d "$seeds" ] || "$build/make_corpus" "$root/fuzz/corpus" >/dev/null
  if [ "${FUZZ_KEEP_CORPUS:-0}" = 1 ]; then
    corpus="$seeds"
  else
    corpus="$build/corpus/$name"
    mkdir -p "$corpus"
    cp -n "$seeds"/* "$corpus"/
  fi
  dict=()
  [ -f "$root/fuzz/$name.dict" ] && dict=(-dict="$root/fuzz/$name.dict")
  log="$out/$name.log"
  # Inputs that once crashed a target (fuzz/regressions/<name>/) run first:
  # each must now pass.
  if compgen -G "$root/fuzz/regressions/$name/*" >/dev/null; then
    if ! "$build/$target" "$root"/fuzz/regressions/"$name"/* >"$out/$name-regressions.log" 2>&1; then
      echo "== $target: a fixed finding is back: see $out/$name-regressions.log" >&2
      failed=1
      continue
    fi
    echo "== $target: $(ls "$root/fuzz/regressions/$name" | wc -l) past findings replayed, all pass"
  fi
  echo "== $target: ${seconds}s"
  # -timeout 10: an input taking longer is a hang; -rss_limit_mb 2048 and
  # -malloc_limit_mb 2048: an allocation past 2 GB is a finding (the
  # biggest legitimate one, a 64 MP image, is 192 MB).
  set +e
  "$build/$target" "$corpus" "${dict[@]}" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=2048 -max_len="${FUZZ_MAX_LEN:-16384}" -print_final_stats=1 \
    -artifact_prefix="$out/$name-" >"$log" 2>&1
  status=$?
  set -e
  { grep -E "^#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb" "$log" || true; } | sed 's/^/  /'
  { grep -oE "cov: [0-9]+ ft: [0-9]+" "$log" || true; } | tail -1 | sed 's/^/  final /'
  if [ $status -ne 0 ]; then
    echo "  FINDING (exit $status): see $log and $out/$name-*" >&2
    { grep -E "ERROR|FUZZ FINDING|runtime error|SUMMARY|ParseDictionaryFile" "$log" || true; } | head -5 | sed 's/^/  /' >&2
    failed=1
  fi
done
exit $failed
