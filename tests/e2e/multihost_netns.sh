#!/usr/bin/env bash
# Multi-host training over TCP: two "hosts" are network namespaces (each with its own hostname)
# joined by a veth pair in 198.18.0.0/24. mpirun runs in host A and starts host B's daemon
# through an rsh agent that enters B's namespace; MPI traffic may only use TCP on that subnet
# (--mca btl tcp,self, btl/oob_tcp_if_include). The tiny config trains at 2 ranks (one per host)
# and at 4 (two per host), and the final parameters and optimizer state must be bitwise equal to
# the single-host run with the same number of ranks (shared memory transport).
#
# Why bitwise and not "to a tolerance": the gradients are summed by MPI_Allreduce, and Open MPI's
# coll/tuned picks the reduction algorithm from the communicator size and message size only, never
# from the transport; each algorithm adds the ranks' contributions in an order fixed by rank, not
# by arrival. The transport (vader or tcp) only moves bytes, so the same sums happen in the same
# order. (At 2 ranks any algorithm gives the same bits: one IEEE addition per element, and a + b
# == b + a.) A topology-aware collective (e.g. coll/han, which groups ranks by node) would change
# the order for more than 2 ranks; then only agreement up to float summation order could hold.
#
# Optionally the link gets tc netem delay and rate (when the kernel has sch_netem).
# Skips (exit 77) where network namespaces cannot be made (not root, no ip, no CAP_NET_ADMIN).
# Run by ctest: bash THIS BUILD SOURCE
set -euo pipefail
source "$(dirname "$0")/common.bash"
ns_a=dv$$a ns_b=dv$$b
e2e_cleanup='cleanup_netns'
cleanup_netns() {
  local ns p
  for ns in "$ns_a" "$ns_b"; do
    ip netns list 2>/dev/null | grep -qw "$ns" || continue
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}
e2e_setup multihost "$1" "$2"
trap 'exit 143' TERM INT HUP  # so the EXIT trap removes the namespaces when the test is killed
fail() { echo "FAIL: $*"; exit 1; }

# ---- two hosts -----------------------------------------------------------------------------------
[[ $(id -u) -eq 0 ]] || e2e_skip root "network namespaces need root (running as uid $(id -u))"
command -v ip >/dev/null || e2e_skip command:ip "the ip command (iproute2) is not installed"
ip netns add "$ns_a" 2>netns.err ||
  e2e_skip netns "cannot create a network namespace: $(cat netns.err)"
ip netns add "$ns_b" || fail "created one namespace but not a second"
ip link add "$ns_a" type veth peer name "$ns_b" 2>netns.err ||
  e2e_skip netns "cannot create a veth pair: $(cat netns.err)"
ip link set "$ns_a" netns "$ns_a"
ip link set "$ns_b" netns "$ns_b"
ip -n "$ns_a" addr add 198.18.0.1/24 dev "$ns_a"
ip -n "$ns_b" addr add 198.18.0.2/24 dev "$ns_b"
for ns in "$ns_a" "$ns_b"; do
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "$ns" up
done
if ip netns exec "$ns_a" tc qdisc add dev "$ns_a" root netem delay 1ms rate 1gbit 2>netem.err &&
  ip netns exec "$ns_b" tc qdisc add dev "$ns_b" root netem delay 1ms rate 1gbit 2>>netem.err; then
  echo "link: veth with netem (1 ms delay, 1 Gbit/s each way)"
else
  echo "link: veth without netem ($(head -1 netem.err)); the link is unshaped"
fi

# The rsh agent: "agent HOST COMMAND..." runs COMMAND in HOST's namespace, under HOST's hostname.
cat >rsh-agent <<EOF
#!/usr/bin/env bash
set -euo pipefail
case \$1 in
  198.18.0.1) ns=$ns_a name=host-a ;;
  198.18.0.2) ns=$ns_b name=host-b ;;
  *) echo "rsh-agent: unknown host '\$1'" >&2; exit 1 ;;
esac
shift
exec ip netns exec "\$ns" unshare --uts /bin/sh -c "hostname \$name && \$*"
EOF
chmod +x rsh-agent
# mpirun itself runs on host A.
on_host_a() {
  ip netns exec "$ns_a" unshare --uts /bin/sh -c 'hostname host-a && exec "$@"' sh "$@"
}
tcp_mpirun() {  # NP SLOTS_PER_HOST COMMAND...
  local np=$1 slots=$2
  shift 2
  printf '198.18.0.1 slots=%s\n198.18.0.2 slots=%s\n' "$slots" "$slots" >hosts
  on_host_a timeout 300 mpirun "${as_root[@]}" --hostfile "$tmp/hosts" -np "$np" --bind-to none \
    --mca plm_rsh_agent "$tmp/rsh-agent" --mca plm_rsh_no_tree_spawn 1 \
    --mca mpi_yield_when_idle 1 --mca btl tcp,self --mca btl_tcp_if_include 198.18.0.0/24 \
    --mca oob_tcp_if_include 198.18.0.0/24 -x OMP_NUM_THREADS=1 "$@"
}

# The ranks really are on two hosts: hostname and address as each rank sees them.
where='echo "$OMPI_COMM_WORLD_RANK $(hostname) $(ip -4 -o addr show scope global |
  awk "{print \$4}")"'
tcp_mpirun 2 1 /bin/sh -c "$where" | sort >placement.txt ||
  fail "mpirun across the namespaces failed"
cat placement.txt
printf '0 host-a 198.18.0.1/24\n1 host-b 198.18.0.2/24\n' | cmp -s - placement.txt ||
  fail "the ranks did not land one per host as expected"

# ---- train: single host vs two hosts -------------------------------------------------------------
run=("$src/configs/fmnist_vae_tiny.yaml" --quiet --set train.threads=1 --set train.sample_grid=4)
rx_bytes() { ip netns exec "$ns_b" cat "/sys/class/net/$ns_b/statistics/rx_bytes"; }
passed=0
compare() {  # NP SLOTS_PER_HOST EXTRA_SETTINGS...
  local np=$1 slots=$2
  shift 2
  local one=single-np$np two=multi-np$np
  timeout 300 mpirun "${as_root[@]}" --oversubscribe --bind-to none -np "$np" -x OMP_NUM_THREADS=1 \
    "$distvae" train "${run[@]}" "$@" --run-dir "$one" || fail "single-host run at $np ranks"
  local rx0 rx1 t0=$SECONDS
  rx0=$(rx_bytes)
  tcp_mpirun "$np" "$slots" "$distvae" train "${run[@]}" "$@" --run-dir "$tmp/$two" ||
    fail "two-host run at $np ranks"
  rx1=$(rx_bytes)
  # Each step all-reduces ~400 KB of gradients: a run moves well over 5 MB across the link.
  local mb=$(((rx1 - rx0) / 1000000))
  [[ $mb -ge 5 ]] || fail "only $mb MB crossed the veth link during the $np-rank run"
  local name=ckpt-000002.h5  # the tiny config's last epoch
  [[ -f $one/checkpoints/$name ]] || fail "single-host run at $np ranks did not write $name"
  [[ -f $two/checkpoints/$name ]] || fail "two-host run at $np ranks did not write $name"
  local d
  for d in /encoder.values /decoder.values /encoder.opt_m /encoder.opt_v /decoder.opt_m \
    /decoder.opt_v; do
    h5diff "$one/checkpoints/$name" "$two/checkpoints/$name" "$d" "$d" >/dev/null ||
      fail "$d of $name differs between the single-host and the two-host run at $np ranks"
  done
  grep -q val_elbo "$one/metrics.jsonl" || fail "no val_elbo in $one/metrics.jsonl"
  cmp -s <(grep -o '"val_elbo": [^,]*' "$one/metrics.jsonl") \
    <(grep -o '"val_elbo": [^,]*' "$two/metrics.jsonl") ||
    fail "validation ELBOs differ between the single-host and the two-host run at $np ranks"
  echo "PASS  $np ranks ($slots per host): $name bitwise equal to the single-host run," \
    "$mb MB over the link, $((SECONDS - t0)) s"
  passed=$((passed + 1))
}
compare 2 1
compare 4 2 --set train.batch=32 --set data.max_images=2048
echo "$passed passed, 0 failed"
