// All-reduce through memory the ranks of a node share, for the gradient buffers.
//
// MPI_Allreduce between ranks of one node copies every byte through MPI's shared segments:
// 4.4 MB of MLP VAE gradients took 1.0-1.5 ms of a 6.5 ms step on 2 ranks. Here each rank's
// gradients already live in POSIX shared memory that its node's other ranks have mapped, so the
// reduction is two passes of plain loads with no copy in: each of the node's P ranks sums its
// 1/P of the buffer over all P ranks (reduce-scatter), then copies the other ranks' sums
// (all-gather). Across nodes, each rank all-reduces its summed 1/P with the same-numbered rank
// of every other node (MPI), between the two passes. Ranks synchronise through an atomic
// counter in a shared control block.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dist/communicator.h"

namespace distvae {

class NodeSharedReduce {
 public:
  // Collective over MPI_COMM_WORLD. Nodes are MPI_COMM_TYPE_SHARED, or blocks of
  // DISTVAE_RANKS_PER_NODE consecutive ranks when that is set (to exercise the path across
  // nodes on one machine). Disabled (enabled() false on every rank) when nodes hold different
  // numbers of ranks or the control block cannot be had.
  NodeSharedReduce();
  ~NodeSharedReduce();
  NodeSharedReduce(const NodeSharedReduce&) = delete;
  NodeSharedReduce& operator=(const NodeSharedReduce&) = delete;

  bool enabled() const { return enabled_; }
  // Every segment of this job is named /dev/shm/<segment_prefix()>...; none is left once mapped.
  std::string segment_prefix() const;
  // n floats of this rank's shared memory, mapped by the node's other ranks. Collective: every
  // rank calls it with the same n in the same order. Empty on every rank if any rank could not
  // get the memory (/dev/shm full, say). Unmapping is local: the memory lives while mapped.
  std::shared_ptr<float> alloc(size_t n);
  // All-reduces data[0, n) in place if it lies in one buffer from alloc (on every rank, at the
  // same offset); false, doing nothing, otherwise. With gather false, only this rank's slice,
  // owned_slice(n), is complete afterwards (a reduce-scatter; see all_gather). One thread at a
  // time, the same calls in the same order on every rank.
  bool reduce(float* data, size_t n, ReduceOp op, bool gather = true);
  // The part of an n-element reduction this rank sums: 1/P of it, 64-byte aligned.
  std::pair<size_t, size_t> owned_slice(size_t n) const { return slice(n, node_rank_); }
  // Copies every other node rank's owned slice of data[0, n) from that rank: directly from its
  // buffer when data lies in one from alloc, else through MPI_Allgatherv within the node (the
  // slices are the same on every node, so the node's ranks hold them all).
  void all_gather(float* data, size_t n);

  struct Mapping;  // an mmap'd segment, unmapped on destruction

 private:
  struct Segment {
    std::weak_ptr<float> own;  // this rank's buffer, held by whoever alloc gave it to
    size_t n = 0;
    std::vector<std::shared_ptr<Mapping>> peer_maps;  // the other node ranks' buffers
    std::vector<const float*> peers;  // every node rank's buffer, by node rank (self too)
  };
  void node_barrier();
  std::pair<size_t, size_t> slice(size_t n, int node_rank) const;
  const Segment* find(const float* data, size_t n, size_t* off) const;
  void copy_peer_slices(const Segment& seg, size_t off, float* data, size_t n);

  bool enabled_ = false;
  int world_size_ = 1;
  int node_rank_ = 0, node_size_ = 1;
  MPI_Comm node_ = MPI_COMM_NULL;      // the ranks of this node
  MPI_Comm cross_ = MPI_COMM_NULL;     // this node rank of every node
  std::vector<int> node_world_ranks_;  // world rank of each node rank
  uint64_t job_key_ = 0;               // makes segment names unique to the job
  uint64_t next_segment_ = 0;
  std::shared_ptr<Mapping> control_;
  uint64_t barriers_ = 0;  // node barriers this rank has passed
  std::vector<Segment> segments_;
  static constexpr size_t kBlock = 512;  // elements per pass of the sum over more than 2 ranks
  std::vector<float> scratch_;           // kBlock per node rank
};

}  // namespace distvae
