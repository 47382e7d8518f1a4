#!/usr/bin/env bash
# Data-parallel training with mpirun, on this machine or over the hosts of a hostfile.
#   launch/mpirun.sh NP CONFIG.yaml [HOSTFILE] [-- distvae train options]
# One rank per core by default (threads per rank = cores / ranks per node, or OMP_NUM_THREADS).
# Every host needs the same build path and the data files at the same paths (a shared file
# system); the run directory is written by rank 0 only.
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: $0 NP CONFIG.yaml [HOSTFILE] [-- distvae train options]" >&2
  exit 2
fi
np=$1 config=$2
shift 2
hostfile=()
if [[ $# -gt 0 && $1 != -- ]]; then hostfile=(--hostfile "$1"); shift; fi
[[ ${1:-} == -- ]] && shift
root=$(cd "$(dirname "$0")/.." && pwd)
as_root=()
[[ $(id -u) -eq 0 ]] && as_root=(--allow-run-as-root)
# Open MPI may give the ranks a pseudo-terminal even when this script's output goes to a file:
# tell rank 0 what the user actually sees, so a log gets plain lines and a terminal a live one.
DISTVAE_TTY=$([[ -t 1 ]] && echo 1 || echo 0)
export DISTVAE_TTY
exec mpirun "${as_root[@]}" "${hostfile[@]}" -np "$np" --bind-to core --map-by core \
  -x OMP_NUM_THREADS -x LD_LIBRARY_PATH -x DISTVAE_TTY \
  "$root/build/launch/distvae" train "$config" "$@"
