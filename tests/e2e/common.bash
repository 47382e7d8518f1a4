# Shared set-up of the end-to-end scripts (sourced, not a test itself): `e2e_setup NAME BUILD SRC`
# sets distvae, src, tmp (a fresh directory under BUILD, removed on exit, also the working
# directory) and as_root (mpirun's --allow-run-as-root when root), and converts Fashion-MNIST
# into data/fmnist-{train,validation}-*.h5; it exits 0 with "SKIP" when the dataset is missing.
# Scripts that start processes add their own clean-up to e2e_cleanup.
set -u
e2e_cleanup=":"
e2e_setup() {
  local name=$1 build=$2
  src=$3
  distvae=$build/launch/distvae
  tmp=$(mktemp -d "$build/$name.XXXXXX")
  trap 'eval "$e2e_cleanup"; rm -rf "$tmp"' EXIT
  cd "$tmp" || exit 1
  as_root=()
  [[ $(id -u) -eq 0 ]] && as_root=(--allow-run-as-root)
  local fm=/usr/share/datasets/fashion-mnist
  if [[ ! -f $fm/train-images-idx3-ubyte.gz ]]; then
    echo "SKIP: $fm missing (apt-get install dataset-fashion-mnist)"
    exit 0
  fi
  "$distvae" convert idx --images $fm/train-images-idx3-ubyte.gz \
    --labels $fm/train-labels-idx1-ubyte.gz --out data --prefix fmnist --val 10000 >/dev/null ||
    exit 1
}
