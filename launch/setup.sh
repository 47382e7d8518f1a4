#!/usr/bin/env bash
# Installs every Debian package distvae needs (build, tests, demo data). Idempotent: when all are
# present it only checks and returns. Runs apt-get through sudo when not root.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config clang-format clang-tidy
  libopenmpi-dev openmpi-bin
  slurm-wlm munge iproute2
  clang libclang-rt-dev
  libhdf5-dev hdf5-tools
  libyaml-cpp-dev
  libdnnl-dev ocl-icd-opencl-dev   # oneDNN's CMake package requires OpenCL; libdnnl-dev only recommends it
  libgtest-dev libgmock-dev libbenchmark-dev
  libpng-dev libjpeg62-turbo-dev libjpeg-turbo-progs zlib1g-dev libdeflate-dev
  libcli11-dev
  nlohmann-json3-dev
  dataset-fashion-mnist
  python3 python3-numpy python3-h5py   # python/distvae_reader.py and its test
  chromium
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo)
  else
    echo "setup: these packages are missing and I am not root (and sudo is unavailable):" >&2
    echo "  ${missing[*]}" >&2
    echo "setup: install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
if ! "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/distvae-setup.log 2>&1; then
  echo "setup: apt-get install failed; see /tmp/distvae-setup.log" >&2
  tail -20 /tmp/distvae-setup.log >&2
  exit 1
fi
echo "setup: done"
