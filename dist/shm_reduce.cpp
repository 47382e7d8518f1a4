// Shared segments are POSIX shm objects: created and reserved (posix_fallocate, so a full
// /dev/shm is an error here rather than a SIGBUS later) by their owner, mapped by the node's other
// ranks, then unlinked at once, so nothing is left in /dev/shm however the job ends.
#include "dist/shm_reduce.h"

#include <fcntl.h>
#include <immintrin.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>

namespace distvae {

struct NodeSharedReduce::Mapping {
  void* addr = nullptr;
  size_t bytes = 0;
  ~Mapping() {
    if (addr) munmap(addr, bytes);
  }
};

namespace {

size_t page_round(size_t bytes) {
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  return std::max(page, (bytes + page - 1) / page * page);
}

std::string job_prefix(uint64_t job_key) {
  char prefix[48];
  std::snprintf(prefix, sizeof prefix, "distvae-%016llx-",
                static_cast<unsigned long long>(job_key));
  return prefix;
}

std::string segment_name(uint64_t job_key, int world_rank, const char* what) {
  return "/" + job_prefix(job_key) + std::to_string(world_rank) + "-" + what;
}

// Creates (create=true) or opens a segment of `bytes`, mapped read-write; null on failure.
std::shared_ptr<NodeSharedReduce::Mapping> map_segment(const std::string& name, size_t bytes,
                                                       bool create) {
  const int fd = shm_open(name.c_str(), create ? O_CREAT | O_EXCL | O_RDWR : O_RDWR, 0600);
  if (fd < 0) return nullptr;
  if (create && posix_fallocate(fd, 0, off_t(bytes)) != 0) {
    close(fd);
    shm_unlink(name.c_str());
    return nullptr;
  }
  void* addr = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (addr == MAP_FAILED) {
    if (create) shm_unlink(name.c_str());
    return nullptr;
  }
  auto m = std::make_shared<NodeSharedReduce::Mapping>();
  m->addr = addr, m->bytes = bytes;
  return m;
}

// dst = (dst + src) * s, vectorized (the restrict tells the compiler the two never overlap).
void add_scaled(float* __restrict dst, const float* __restrict src, size_t n, float s) {
  for (size_t i = 0; i < n; ++i) dst[i] = (dst[i] + src[i]) * s;
}

// MPI_COMM_WORLD returns error codes (MpiSession sets MPI_ERRORS_RETURN): they become exceptions.
void must(int rc, const char* call) {
  if (rc != MPI_SUCCESS)
    throw std::runtime_error(std::string(call) + " failed (code " + std::to_string(rc) +
                             ") setting up the shared-memory all-reduce");
}

bool all_ranks(bool ok, MPI_Comm comm) {
  int v = ok ? 1 : 0;
  must(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MIN, comm), "MPI_Allreduce");
  return v == 1;
}

}  // namespace

NodeSharedReduce::NodeSharedReduce() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size_);
  if (world_size_ == 1) return;
  if (const char* per_node = std::getenv("DISTVAE_RANKS_PER_NODE"); per_node && *per_node)
    must(MPI_Comm_split(MPI_COMM_WORLD, rank / std::max(1, std::atoi(per_node)), rank, &node_),
         "MPI_Comm_split");
  else
    must(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node_),
         "MPI_Comm_split_type");
  MPI_Comm_rank(node_, &node_rank_);
  MPI_Comm_size(node_, &node_size_);
  must(MPI_Comm_split(MPI_COMM_WORLD, node_rank_, rank, &cross_), "MPI_Comm_split");
  node_world_ranks_.resize(size_t(node_size_));
  must(MPI_Allgather(&rank, 1, MPI_INT, node_world_ranks_.data(), 1, MPI_INT, node_),
       "MPI_Allgather");
  int sizes[2] = {node_size_, -node_size_};  // min and -max of the node sizes
  must(MPI_Allreduce(MPI_IN_PLACE, sizes, 2, MPI_INT, MPI_MIN, MPI_COMM_WORLD), "MPI_Allreduce");
  if (sizes[0] != -sizes[1] || node_size_ == 1) return;  // uneven nodes, or nothing to share

  if (rank == 0) job_key_ = (uint64_t(std::random_device{}()) << 32) ^ uint64_t(getpid());
  must(MPI_Bcast(&job_key_, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD), "MPI_Bcast");
  const std::string name = segment_name(job_key_, node_world_ranks_[0], "control");
  const size_t bytes = page_round(64);
  if (node_rank_ == 0) control_ = map_segment(name, bytes, true);
  must(MPI_Barrier(node_), "MPI_Barrier");
  if (node_rank_ != 0) control_ = map_segment(name, bytes, false);
  enabled_ = all_ranks(control_ != nullptr, MPI_COMM_WORLD);
  scratch_.resize(size_t(node_size_) * kBlock);
  if (node_rank_ == 0 && control_) shm_unlink(name.c_str());
  if (!enabled_) control_.reset();
}

std::string NodeSharedReduce::segment_prefix() const {
  return job_prefix(job_key_);
}

NodeSharedReduce::~NodeSharedReduce() {
  segments_.clear();
  control_.reset();
  if (cross_ != MPI_COMM_NULL) MPI_Comm_free(&cross_);
  if (node_ != MPI_COMM_NULL) MPI_Comm_free(&node_);
}

std::shared_ptr<float> NodeSharedReduce::alloc(size_t n) {
  if (!enabled_ || n == 0) return {};
  std::erase_if(segments_, [](const Segment& s) { return s.own.expired(); });
  const std::string what = "segment" + std::to_string(next_segment_++);
  const size_t bytes = page_round(n * sizeof(float));
  const std::string own_name =
      segment_name(job_key_, node_world_ranks_[size_t(node_rank_)], what.c_str());
  std::shared_ptr<Mapping> own = map_segment(own_name, bytes, true);
  must(MPI_Barrier(node_), "MPI_Barrier");  // every rank of the node has created its segment
  Segment s;
  s.n = n;
  bool ok = own != nullptr;
  for (int q = 0; q < node_size_; ++q) {
    std::shared_ptr<Mapping> m =
        q == node_rank_
            ? own
            : map_segment(segment_name(job_key_, node_world_ranks_[size_t(q)], what.c_str()), bytes,
                          false);
    ok = ok && m != nullptr;
    s.peers.push_back(m ? static_cast<const float*>(m->addr) : nullptr);
    s.peer_maps.push_back(std::move(m));
  }
  ok = all_ranks(ok, MPI_COMM_WORLD);  // also: every peer has mapped this rank's segment
  if (own) shm_unlink(own_name.c_str());
  if (!ok) return {};
  // The caller's pointer keeps this rank's mapping alive; the peers' live in the segment record.
  s.peer_maps[size_t(node_rank_)].reset();
  std::shared_ptr<float> buffer(static_cast<float*>(own->addr),
                                [own](float*) mutable { own.reset(); });
  s.own = buffer;
  segments_.push_back(std::move(s));
  return buffer;
}

void NodeSharedReduce::node_barrier() {
  // A counter of arrivals that only grows: barrier k is passed once it reaches k * node size.
  std::atomic_ref<uint64_t> arrivals(*static_cast<uint64_t*>(control_->addr));
  arrivals.fetch_add(1, std::memory_order_acq_rel);
  const uint64_t target = ++barriers_ * uint64_t(node_size_);
  // Spin while the others are close behind; yield the core when ranks outnumber cores.
  for (int spins = 0; arrivals.load(std::memory_order_acquire) < target; ++spins) {
    if (spins < 2000)
      _mm_pause();
    else
      sched_yield();
  }
}

std::pair<size_t, size_t> NodeSharedReduce::slice(size_t n, int node_rank) const {
  const size_t P = size_t(node_size_), q = size_t(node_rank);
  const size_t chunk = ((n + P - 1) / P + 15) / 16 * 16;  // 64-byte aligned slices
  return {std::min(n, q * chunk), std::min(n, (q + 1) * chunk)};
}

const NodeSharedReduce::Segment* NodeSharedReduce::find(const float* data, size_t n,
                                                        size_t* off) const {
  for (const Segment& s : segments_) {
    const std::shared_ptr<float> own = s.own.lock();
    if (own && data >= own.get() && data + n <= own.get() + s.n) {
      *off = size_t(data - own.get());
      return &s;
    }
  }
  return nullptr;
}

bool NodeSharedReduce::reduce(float* data, size_t n, ReduceOp op, bool gather) {
  if (!enabled_) return false;
  size_t off = 0;
  const Segment* seg = find(data, n, &off);
  if (!seg) return false;
  const size_t P = size_t(node_size_), me = size_t(node_rank_);
  const float scale = op == ReduceOp::avg ? 1.0f / float(world_size_) : 1.0f;
  int nodes = 1;
  MPI_Comm_size(cross_, &nodes);

  node_barrier();  // every rank's data is final
  // This rank's slice, summed over the node by pairs in node-rank order: ((p0 + p1) + (p2 + p3))
  // for 4, the order of 2 nodes of 2 through MPI, so a sum does not depend on how the ranks are
  // spread over nodes of powers of two.
  const auto [lo, hi] = slice(n, node_rank_);
  const float within_node = nodes == 1 ? scale : 1.0f;
  if (P == 2) {  // a + b == b + a: this rank's own value first
    add_scaled(data + lo, seg->peers[1 - me] + off + lo, hi - lo, within_node);
  } else {
    for (size_t i = lo; i < hi; i += kBlock) {
      const size_t m = std::min(kBlock, hi - i);
      for (size_t q = 0; q < P; ++q)
        std::copy_n(seg->peers[q] + off + i, m, scratch_.data() + q * kBlock);
      for (size_t stride = 1; stride < P; stride *= 2)
        for (size_t q = 0; q + stride < P; q += 2 * stride) {
          float* s = scratch_.data() + q * kBlock;
          const float* t = s + stride * kBlock;
          for (size_t j = 0; j < m; ++j) s[j] += t[j];
        }
      for (size_t j = 0; j < m; ++j) data[i + j] = scratch_[j] * within_node;
    }
  }
  if (nodes > 1 && hi > lo) {
    const int rc = MPI_Allreduce(MPI_IN_PLACE, data + lo, int(hi - lo), MPI_FLOAT, MPI_SUM, cross_);
    if (rc != MPI_SUCCESS)
      throw std::runtime_error("MPI_Allreduce across nodes of a gradient slice failed");
    for (size_t i = lo; i < hi; ++i) data[i] *= scale;
  }
  node_barrier();  // every slice is summed; nobody reads this rank's other slices any more
  if (gather) copy_peer_slices(*seg, off, data, n);
  return true;
}

void NodeSharedReduce::copy_peer_slices(const Segment& seg, size_t off, float* data, size_t n) {
  for (int q = 0; q < node_size_; ++q) {
    if (q == node_rank_) continue;
    const auto [lo, hi] = slice(n, q);
    const float* src = seg.peers[size_t(q)] + off;
    std::copy(src + lo, src + hi, data + lo);
  }
  node_barrier();  // nobody reads this rank's buffer any more: it may be written again
}

void NodeSharedReduce::all_gather(float* data, size_t n) {
  if (!enabled_) return;
  size_t off = 0;
  if (const Segment* seg = find(data, n, &off)) {
    node_barrier();  // every owner has written its slice
    copy_peer_slices(*seg, off, data, n);
    return;
  }
  // Private memory (the optimizer's moments, at a checkpoint): through MPI, within the node.
  std::vector<int> counts(static_cast<size_t>(node_size_)), displs(counts.size());
  for (int q = 0; q < node_size_; ++q) {
    const auto [lo, hi] = slice(n, q);
    counts[size_t(q)] = int(hi - lo), displs[size_t(q)] = int(lo);
  }
  if (MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, counts.data(), displs.data(),
                     MPI_FLOAT, node_) != MPI_SUCCESS)
    throw std::runtime_error("MPI_Allgatherv of the optimizer state's slices failed");
}

}  // namespace distvae
