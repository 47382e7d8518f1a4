# Shared set-up of the end-to-end scripts (sourced, not a test itself): `e2e_setup NAME BUILD SRC`
# sets distvae, src, tmp (a fresh directory under BUILD, removed on exit, also the working
# directory) and as_root (mpirun's --allow-run-as-root when root), and converts Fashion-MNIST
# into data/fmnist-{train,validation}-*.h5. Scripts that start processes add their own clean-up
# to e2e_cleanup.
#
# A test that cannot run here says why and exits 77, which ctest reports as skipped (never as
# passed): `e2e_skip TAG REASON`. A script that skips one case and runs the rest prints the same
# line through `e2e_skip_case TAG REASON`. TAG names what was missing, so that tests/check_skips.py
# can check it independently and fail the test command when the test should have run here:
#   root        not running as root        netns   network namespaces cannot be made
#   mount       a tmpfs cannot be mounted  slurmd  the SLURM daemons do not come up
#   data        a dataset is missing       command:NAME   a program is missing
set -u
e2e_skip_case() { echo "SKIP [$1]: ${*:2}"; }
e2e_skip() {
  e2e_skip_case "$@"
  exit 77
}
e2e_cleanup=":"
# The pid of the process that is MPI rank $2 of the run in directory $1 (not mpirun, not timeout).
rank_pid() {
  local p
  for p in $(pgrep -f -- "--run-dir $1"); do
    if tr '\0' '\n' </proc/$p/environ 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then
      echo "$p"; return
    fi
  done
}
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
  [[ -f $fm/train-images-idx3-ubyte.gz ]] ||
    e2e_skip data "$fm missing (apt-get install dataset-fashion-mnist; launch/setup.sh installs it)"
  "$distvae" convert idx --images $fm/train-images-idx3-ubyte.gz \
    --labels $fm/train-labels-idx1-ubyte.gz --out data --prefix fmnist --val 10000 >/dev/null ||
    exit 1
}
