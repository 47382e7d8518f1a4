#!/usr/bin/env bash
# Packs what the GPU machine needs into gpu-bundle/ (git-ignored), for the device tool:
#   bash tests/gpu/bundle.sh            # here: builds build-cuda/, writes gpu-bundle/
#   bash gpu-bundle/run.sh              # there, with carry: ["gpu-bundle"] (docs/gpu.md)
# The GPU machine has the NVIDIA driver, the CUDA 13 toolkit and PyTorch (with cuDNN and NCCL
# wheels), and none of this project's Debian libraries. gpu-bundle/ holds:
#   run.sh           the GPU machine's script (tests/gpu/run.sh)
#   payload.tar.xz   bin/ distvae and cuda_tests (debug info stripped); lib/ every shared library
#                    they and Open MPI need that is not glibc nor CUDA (cudart, cuBLASLt, cuDNN,
#                    NCCL and the driver come from the GPU machine); lib/fallback/ libstdc++ and
#                    libgcc_s, used only when the machine's own are too old; Open MPI 4.1's mpirun,
#                    orted, plugins and help files (OPAL_PREFIX relocates them; the InfiniBand,
#                    UCX, libfabric and OpenSHMEM plugins are left out); data/ a 6400 + 1000 image
#                    Fashion-MNIST cut; configs/; torch_peer.py; core/backend.h (read by a test)
#   MANIFEST.txt     what is in the payload, with sizes, and the build it came from
# Environment: DISTVAE_CUDA_ROOT (default /usr/local/cuda), FMNIST (the IDX folder, default
# /usr/share/datasets/fashion-mnist), BUILD (default build-cuda).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cuda_root=${DISTVAE_CUDA_ROOT:-/usr/local/cuda}
fmnist=${FMNIST:-/usr/share/datasets/fashion-mnist}
build=${BUILD:-$root/build-cuda}
bundle=$root/gpu-bundle
stage=$build/gpu-bundle-stage
train_images=6400 val_images=1000  # 50 steps of 128 per epoch; 4 epochs = 200 steps

say() { echo "bundle.sh: $*"; }

# ---- the CUDA configuration (tests/run.sh's flags) ----
say "building $build (distvae, cuda_tests) against $cuda_root"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDISTVAE_CUDA=ON \
  -DDISTVAE_CUDA_ROOT="$cuda_root" -DDISTVAE_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target distvae cuda_tests
distvae=$build/launch/distvae cuda_tests=$build/tests/cuda_tests

rm -rf "$stage" "$bundle"
mkdir -p "$stage"/{bin,lib/fallback,lib/openmpi3,lib/pmix,share,etc,data,configs,core} "$bundle"

# ---- the binaries ----
for b in "$distvae" "$cuda_tests"; do
  objcopy --strip-debug "$b" "$stage/bin/$(basename "$b")"
done

# ---- Open MPI 4.1 (Debian's layout, relocated under the payload) ----
ompi_pkglib=$(ompi_info --path pkglibdir --parsable | sed 's/.*://')
ompi_pkgdata=$(ompi_info --path pkgdatadir --parsable | sed 's/.*://')
ompi_sysconf=$(ompi_info --path sysconfdir --parsable | sed 's/.*://')
ompi_bindir=$(ompi_info --path bindir --parsable | sed 's/.*://')
pmix_lib=$(ldconfig -p | awk '/libpmix.so.2 / && !f {print $NF; f = 1}')
pmix_root=$(dirname "$(dirname "$(readlink -f "$pmix_lib")")")  # .../pmix2
for p in orterun orted; do cp "$ompi_bindir/$p" "$stage/bin/"; done
ln -s orterun "$stage/bin/mpirun"
# Plugins that need InfiniBand, UCX, libfabric or PSM libraries (and OpenSHMEM's) stay behind: one
# node, shared memory and TCP are all the GPU machine runs.
for f in "$ompi_pkglib"/*.so; do
  case $(basename "$f") in
    *ucx* | *ofi* | *openib* | *psm* | *uct* | *atomic_* | *memheap_* | *scoll_* | *spml_* | *sshmem_*)
      continue ;;
  esac
  cp "$f" "$stage/lib/openmpi3/"
done
cp -r "$ompi_pkgdata" "$stage/share/openmpi"
cp "$ompi_sysconf"/openmpi-mca-params.conf "$stage/etc/"
if [[ -d $pmix_root/lib/pmix ]]; then cp "$pmix_root"/lib/pmix/*.so "$stage/lib/pmix/"; fi
if [[ -d $pmix_root/share/pmix ]]; then cp -r "$pmix_root/share/pmix" "$stage/share/pmix"; fi
[[ -e /etc/pmix-mca-params.conf ]] && cp /etc/pmix-mca-params.conf "$stage/etc/"

# ---- every shared library these need, except glibc's and CUDA's ----
# glibc and the dynamic loader come with every Linux; CUDA's libraries (cudart, cuBLAS(Lt), cuDNN,
# NCCL, nvrtc, nvJitLink) and the driver's must be the GPU machine's own. libstdc++ and libgcc_s
# go to lib/fallback/: run.sh uses them only where the machine's are older than the build's.
skip_re='^(linux-vdso|ld-linux|libc|libm|libdl|libpthread|librt|libresolv|libutil|libanl|libnsl)\.so'
skip_re+='|^lib(cuda|cudart|cublas|cublasLt|cudnn[a-z_]*|nccl|nvrtc|nvJitLink|nvidia-[a-z-]*)\.so'
fallback_re='^lib(stdc\+\+|gcc_s)\.so'
objects=("$stage"/bin/{distvae,cuda_tests,orterun,orted} "$stage"/lib/openmpi3/*.so)
[[ -n $(compgen -G "$stage/lib/pmix/*.so") ]] && objects+=("$stage"/lib/pmix/*.so)
declare -A seen
missing=()
while read -r name path; do
  [[ -n ${seen[$name]:-} || $name =~ $skip_re ]] && continue
  seen[$name]=1
  if [[ $path == "not" || ! -e $path ]]; then missing+=("$name"); continue; fi
  dest=$stage/lib
  [[ $name =~ $fallback_re ]] && dest=$stage/lib/fallback
  cp -L "$path" "$dest/$name"
done < <(for o in "${objects[@]}"; do ldd "$o"; done | awk '/=>/ {print $1, $3}' | sort -u)
if ((${#missing[@]})); then
  say "error: not found here: ${missing[*]}" >&2
  exit 1
fi

# ---- a small Fashion-MNIST: the first train_images + val_images of the training IDX files ----
python3 - "$fmnist" "$build/fmnist-cut" $((train_images + val_images)) <<'PY'
import gzip, os, struct, sys
src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(out, exist_ok=True)
for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
    with gzip.open(os.path.join(src, name + ".gz"), "rb") as f:
        magic, = struct.unpack(">I", f.read(4))
        dims = struct.unpack(">" + "I" * (magic & 0xFF), f.read(4 * (magic & 0xFF)))
        per = 1
        for d in dims[1:]:
            per *= d
        body = f.read(n * per)
    assert dims[0] >= n and len(body) == n * per, (name, dims)
    with open(os.path.join(out, name), "wb") as f:
        f.write(struct.pack(">I", magic) + struct.pack(">" + "I" * len(dims), n, *dims[1:]) + body)
PY
"$distvae" convert idx --images "$build/fmnist-cut/train-images-idx3-ubyte" \
  --labels "$build/fmnist-cut/train-labels-idx1-ubyte" --out "$stage/data" --prefix fmnist \
  --val "$val_images" --overwrite

cp configs/fmnist_vae_mlp.yaml configs/fmnist_vae_conv.yaml "$stage/configs/"
cp bench/peer/torch_peer.py "$stage/"
cp core/backend.h "$stage/core/"  # BackendPrimitives reads it under the build's source folder
cat >"$stage/BUILD_INFO" <<INFO
source_dir=$root
commit=$(git -C "$root" rev-parse HEAD)$(git -C "$root" diff --quiet HEAD -- . ':!gpu-bundle' || echo ' + uncommitted changes')
built=$(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n), $(sed -n 's/^PRETTY_NAME=//p' /etc/os-release | tr -d '"'), $(ldd --version | sed -n 1p)
cuda_root=$cuda_root ($("$cuda_root/bin/nvcc" --version | grep -o 'release [0-9.]*'))
cudnn_built=$(readlink -f "$cuda_root"/lib64/libcudnn.so.9 2>/dev/null || true)
nccl_built=$(readlink -f "$cuda_root"/lib/libnccl.so.2 2>/dev/null || true)
cuda_test_filter=$(sed -n 's/.*set(DISTVAE_CUDA_TEST_FILTER "\(.*\)").*/\1/p' tests/CMakeLists.txt)
INFO

# ---- pack ----
raw=$(du -sb "$stage" | cut -f1)
say "packing $((raw / 1048576)) MiB (xz -9)"
XZ_OPT="-9 -T$(nproc)" tar -C "$stage" -cJf "$bundle/payload.tar.xz" .
cp tests/gpu/run.sh "$bundle/run.sh"
{
  cat "$stage/BUILD_INFO"
  echo
  echo "payload.tar.xz: $(stat -c %s "$bundle/payload.tar.xz") bytes packed, $raw bytes unpacked"
  echo
  (cd "$stage" && find . -type f -printf '%10s  %p\n' | sort -k2)
} >"$bundle/MANIFEST.txt"
du -sb "$bundle"/* | while read -r n f; do say "$(basename "$f"): $n bytes"; done
bytes() { find "$@" -maxdepth 1 -type f -printf '%s\n' | awk '{n += $1} END {print n + 0}'; }
say "  unpacked: bin/ $(bytes "$stage/bin"), lib/ $(bytes "$stage/lib") (libdnnl" \
  "$(stat -c %s "$stage"/lib/libdnnl.so.*)), lib/fallback/ $(bytes "$stage/lib/fallback")," \
  "Open MPI plugins and help $(bytes "$stage"/lib/{openmpi3,pmix} "$stage"/share/*)," \
  "data/ $(bytes "$stage/data") bytes"
say "unpacked total: $raw bytes; gpu-bundle/ total: $(du -sb "$bundle" | cut -f1) bytes"
say "next, on the GPU machine (device tool): command 'bash gpu-bundle/run.sh', carry [\"gpu-bundle\"]"
