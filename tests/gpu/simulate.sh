#!/usr/bin/env bash
# Runs gpu-bundle/run.sh on this machine as if it were the bare GPU machine, as far as that goes
# without a GPU: in a private mount namespace (needs root and unshare) where
#   - Debian's Open MPI and PMIx (their folders, mpirun/orted, help files, /etc/openmpi) and every
#     library the bundle carries are hidden (an empty file bound over each), except those that this
#     script's own tools (bash, tar, xz, awk, python3, ...) load themselves;
#   - the CUDA toolkit (/usr/local/cuda) is hidden, and its cudart, cuBLAS(Lt), nvrtc, cuDNN and
#     NCCL appear only as PyTorch's CUDA 13 wheels lay them out (site-packages/nvidia/cu13/lib,
#     nvidia/cudnn/lib, nvidia/nccl/lib), which run.sh must find;
#   - LD_LIBRARY_PATH is unset.
#   bash tests/gpu/bundle.sh && OUT=/tmp/gpu-out bash tests/gpu/simulate.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bundle=$root/gpu-bundle
[[ -r $bundle/payload.tar.xz && -r $bundle/run.sh ]] || {
  echo "simulate.sh: no $bundle: run tests/gpu/bundle.sh first" >&2
  exit 1
}
if [[ ${1:-} != --inside ]]; then
  [[ $(id -u) -eq 0 ]] || { echo "simulate.sh: needs root (a mount namespace)" >&2; exit 77; }
  exec unshare --mount --propagation private bash "$0" --inside
fi

hide_file() {  # an empty file over the real one
  local real
  real=$(readlink -f "$1")
  if [[ -f $real ]]; then mount --bind /dev/null "$real" && echo "$real"; fi
}
hide_dir() { if [[ -d $1 ]]; then mount -t tmpfs -o size=1m none "$(readlink -f "$1")" && echo "$1/"; fi; }

# The CUDA libraries, as the wheels lay them out, bound in before the toolkit is hidden.
cuda_lib=$(readlink -f /usr/local/cuda/lib64)
site=$(mktemp -d /tmp/distvae-fake-site.XXXXXX)
mkdir -p "$site"/nvidia/{cu13,cudnn,nccl}/lib
for f in "$cuda_lib"/lib{cudart,cublas,cublasLt,nvrtc,nvrtc-builtins,nvJitLink}.so.* \
  "$cuda_lib"/libcudnn*.so.9 "$cuda_lib"/libnccl.so.2; do
  [[ -e $f ]] || continue
  case $(basename "$f") in
    libcudnn*) d=cudnn ;;
    libnccl*) d=nccl ;;
    *) d=cu13 ;;
  esac
  touch "$site/nvidia/$d/lib/$(basename "$f")"
  mount --bind "$(readlink -f "$f")" "$site/nvidia/$d/lib/$(basename "$f")"
done
echo "simulate.sh: CUDA libraries offered only as wheels under $site/nvidia:"
(cd "$site" && find nvidia -type f | sort | tr '\n' ' ')
echo

# The libraries of the tools run.sh uses: they stay visible.
tools=(bash tar xz gzip mawk gawk sed grep sort python3 timeout env du find tee date readlink
  ldconfig head tail wc tr cut stat ls mkdir rm cp nproc uname sleep)
keep=$(for t in "${tools[@]}"; do
  p=$(command -v "$t" 2>/dev/null) || continue
  [[ $t == python3 ]] && p=$(python3 -c 'import sys; print(sys.executable)')
  ldd "$(readlink -f "$p")" 2>/dev/null || true
done | awk '/=>/ {print $1}' | sort -u)
echo "simulate.sh: hidden:"
{
  hide_dir "$(readlink -f /usr/local/cuda)"
  ompi_bin=$(dirname "$(readlink -f "$(command -v mpirun)")")
  for f in orterun orted mpirun mpiexec ompi_info; do
    if [[ -e $ompi_bin/$f ]]; then hide_file "$ompi_bin/$f"; fi
  done
  for d in /usr/lib/x86_64-linux-gnu/{openmpi,pmix2,hwloc} /usr/share/openmpi /usr/share/pmix \
    /etc/openmpi; do
    hide_dir "$d"
  done
  # The bundled libraries, except the ones this script's tools need.
  for name in $(tar -tJf "$bundle/payload.tar.xz" | sed -n 's|^\./lib/\([^/]*\.so[^/]*\)$|\1|p'); do
    grep -qxF "$name" <<<"$keep" && continue
    for d in /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/lib; do
      if [[ -e $d/$name ]]; then hide_file "$d/$name"; break; fi
    done
  done
} | sed 's/^/  /' | tr '\n' ' '
echo
echo "simulate.sh: bundled libraries left visible (the tools load them): $(echo "$keep" |
  grep -xFf <(tar -tJf "$bundle/payload.tar.xz" | sed -n 's|^\./lib/\([^/]*\.so[^/]*\)$|\1|p') |
  tr '\n' ' ')"

export DISTVAE_NVIDIA_SITE=$site
PATH=$(tr ':' '\n' <<<"$PATH" | grep -v cuda | paste -sd:)
export PATH
unset LD_LIBRARY_PATH
rc=0
bash "$bundle/run.sh" || rc=$?
for f in "$site"/nvidia/*/lib/*; do umount "$f"; done
rm -rf "$site"
exit "$rc"
