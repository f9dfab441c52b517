#!/usr/bin/env bash
# Fills .device/ (git-ignored) with what bench/gpu_check.sh needs on a GPU
# machine that has no network and none of our Debian packages: the .deb
# files of our build dependencies and the libraries they need (not libc or
# libstdc++, which the GPU image has), the data archive and its converter.
# Usage, here: bench/gpu_prepare.sh   then carry .device to the GPU machine.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dev="$root/.device"
shared="$root/../shared"
mkdir -p "$dev/debs"
cp "$shared/data/cifar-10-jpeg.tar.gz" "$shared/tools/jpeg_to_cifar_bin.py" "$dev/"
packages="libcli11-dev nlohmann-json3-dev libyaml-cpp-dev libcurl4-openssl-dev libarchive-dev libssl-dev
          libprotobuf-dev protobuf-compiler libstb-dev libjpeg62-turbo-dev libexif-dev zlib1g-dev libgtest-dev pkgconf"
# The toolchain's own libraries come with any machine that has a compiler.
skip="gcc-12-base libc-dev-bin libc6 libc6-dev libcrypt-dev libcrypt1 libgcc-s1 libstdc++6 linux-libc-dev
      libnsl-dev libnsl2 libtirpc-dev libtirpc-common libtirpc3 rpcsvc-proto"
closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
  --no-enhances $packages | grep -v '^[ <]' | sort -u | grep -vxF -f <(tr -s ' \n' '\n' <<<"$skip"))
(cd "$dev/debs" && apt-get download $closure >/dev/null)
# A checkpoint this machine's build (Debian's LibTorch 1.13) writes, for the
# GPU build (LibTorch 2.x) to resume with the same flags (bench/gpu_check.sh):
# the optimiser state must cross versions.
if [ -x "$root/build/cifar10" ]; then
  rm -rf "$dev/ckpt_cpu"
  "$root/build/cifar10" --preset quick --width 16 --epochs 1 --train-limit 1024 --validation-size 256 \
    --test-limit 200 --device cpu --skip-visualization --data-dir "$("$root/scripts/data.sh")" \
    --output-dir "$dev/ckpt_cpu" >/dev/null
else
  echo "no build/cifar10: the cross-version resume check will be skipped (run scripts/build.sh first)" >&2
fi
du -sh "$dev"
