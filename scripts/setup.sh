#!/usr/bin/env bash
# Installs every Debian package cifar10 needs to build, test and plot.
# Idempotent: does nothing when all are present. Needs root for apt-get;
# as another user it names the command to run instead.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libgloo-dev libopenblas0-pthread    # LibTorch 1.13 (CPU), c10d's Gloo headers, a fast BLAS
  libcurl4-openssl-dev libarchive-dev libssl-dev   # download, extraction, MD5
  nlohmann-json3-dev libcli11-dev libyaml-cpp-dev  # JSON, flags, YAML config files
  libprotobuf-dev protobuf-compiler                # TensorBoard event files
  libstb-dev                                       # PNG/BMP decoding, JPEG headers, PNG writing
  libjpeg62-turbo-dev                              # JPEG pixels (stb's decoder has UB on corrupt data)
  libexif-dev                                      # JPEG orientation (EXIF) in predict
  zlib1g-dev                                       # CRC checks of .tar.gz downloads and checkpoints
  libgtest-dev                                     # tests
  gnuplot-nox                                      # plots (pngcairo terminal)
  python3 python3-pil python3-numpy                # test HTTP server; J75 data rebuild
  python3-torch python3-torchvision                # .pth files written by torch.save for the tests
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing packages: ${missing[*]}" >&2
  echo "setup: run as root: sudo $0   (or: sudo apt-get install -y ${missing[*]})" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
