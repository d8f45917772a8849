#!/usr/bin/env bash
# setup.sh: installs the Debian packages vkebm needs (idempotent; apt-get only, no other network),
# then configures and builds into build/. Usage: tools/setup.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config
  libvulkan-dev mesa-vulkan-drivers vulkan-validationlayers vulkan-tools
  glslc glslang-tools spirv-tools
  libsdl2-dev libpng-dev libcglm-dev libjansson-dev libcmocka-dev libgif-dev
  libjpeg62-turbo-dev     # CelebA's JPEGs (src/data/celeba.c)
  libblis-dev libopenblas-dev
  python3 python3-numpy xvfb xauth
  clang libclang-rt-dev   # tools/fuzz.sh: libFuzzer with ASan/UBSan
  openmpi-bin libopenmpi-dev   # data-parallel `mpirun -np N vkebm train` (docs/distributed.md)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

[ "${1:-}" = "--no-build" ] && exit 0
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
