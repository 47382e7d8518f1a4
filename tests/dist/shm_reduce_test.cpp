// The node shared-memory all-reduce against MPI_Allreduce of the same numbers on private memory:
// whole buffers and sub-ranges, lengths that do not divide by the ranks (down to fewer elements
// than ranks), sum and average. Under mpirun at 1, 2 and 4 ranks, and at 4 ranks as two
// emulated nodes (DISTVAE_RANKS_PER_NODE=2), which adds the MPI pass across nodes.
#include "dist/shm_reduce.h"

#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <vector>

#include "core/rng.h"
#include "dist/mpi_communicator.h"

namespace distvae {
namespace {

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

// Values different on every rank and element, in [-1, 1).
std::vector<float> rank_values(size_t n, int rank) {
  std::vector<double> u(n);
  uniform_fill(5, stream_id(rng_purpose::test, uint64_t(rank)), 0, n, u.data());
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = float(2 * u[i] - 1);
  return v;
}

TEST(NodeSharedReduce, MatchesMpiAllreduce) {
  NodeSharedReduce shm;
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (world == 1) {
    EXPECT_FALSE(shm.enabled());  // nothing to share with one rank
    return;
  }
  ASSERT_TRUE(shm.enabled()) << "no shared memory between the ranks of this machine";
  for (size_t n : {size_t(1), size_t(3), size_t(100), size_t(4097), size_t(1 << 20) + 5}) {
    std::shared_ptr<float> buf = shm.alloc(n);
    ASSERT_TRUE(buf) << "alloc(" << n << ") failed";
    for (ReduceOp op : {ReduceOp::sum, ReduceOp::avg}) {
      // Whole buffer, then an interior range (a bucket), then a one-element range at the end.
      for (auto [lo, hi] :
           {std::pair{size_t(0), n}, std::pair{n / 3, n - n / 4}, std::pair{n - 1, n}}) {
        if (hi <= lo) continue;
        const std::vector<float> mine = rank_values(n, world_rank());
        std::copy(mine.begin(), mine.end(), buf.get());
        std::vector<float> expect(mine.begin() + lo, mine.begin() + hi);
        MPI_Allreduce(MPI_IN_PLACE, expect.data(), int(expect.size()), MPI_FLOAT, MPI_SUM,
                      MPI_COMM_WORLD);
        if (op == ReduceOp::avg)
          for (float& e : expect) e /= float(world);
        ASSERT_TRUE(shm.reduce(buf.get() + lo, hi - lo, op));
        double worst = 0;
        for (size_t i = lo; i < hi; ++i)
          worst = std::max(worst, double(std::fabs(buf.get()[i] - expect[i - lo])));
        // Summation orders differ between the two (exact at 2 ranks): a few float ulps of the
        // magnitude of a sum of `world` terms in [-1, 1).
        EXPECT_LE(worst, 4e-7 * world) << "n " << n << " range [" << lo << ", " << hi << ")";
        // Outside the range nothing moved.
        for (size_t i = 0; i < n; ++i) {
          if (i >= lo && i < hi) continue;
          ASSERT_EQ(buf.get()[i], mine[i]) << "element " << i;
        }
      }
    }
  }
}

// The split update's two halves: a reduce-scatter leaves this rank's owned slice reduced; the
// all-gather then brings every other slice from its owner, for shared and for private memory.
TEST(NodeSharedReduce, ReduceScatterThenAllGather) {
  NodeSharedReduce shm;
  if (!shm.enabled()) GTEST_SKIP() << "one rank: nothing to split";
  const size_t n = 10007;
  std::shared_ptr<float> buf = shm.alloc(n);
  ASSERT_TRUE(buf);
  const std::vector<float> mine = rank_values(n, world_rank());
  std::copy(mine.begin(), mine.end(), buf.get());
  std::vector<float> expect = mine;
  MPI_Allreduce(MPI_IN_PLACE, expect.data(), int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  ASSERT_TRUE(shm.reduce(buf.get(), n, ReduceOp::sum, false));
  const auto [lo, hi] = shm.owned_slice(n);
  EXPECT_LT(lo, hi);
  for (size_t i = lo; i < hi; ++i) ASSERT_NEAR(buf.get()[i], expect[i], 2e-6) << i;
  shm.all_gather(buf.get(), n);
  for (size_t i = 0; i < n; ++i) ASSERT_NEAR(buf.get()[i], expect[i], 2e-6) << i;
  // Private memory: each rank writes f(i) on its owned slice only, garbage elsewhere.
  const auto f = [](size_t i) { return float(i % 97) - 40.0f; };
  std::vector<float> priv(n, -1e30f);
  for (size_t i = lo; i < hi; ++i) priv[i] = f(i);
  shm.all_gather(priv.data(), n);
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(priv[i], f(i)) << i;
}

// A buffer /dev/shm cannot hold (16 TiB) fails on every rank alike, leaves nothing of this job
// behind in /dev/shm, and the next allocation still works.
TEST(NodeSharedReduce, FailedAllocationIsEmptyEverywhereAndLeavesNothing) {
  NodeSharedReduce shm;
  if (!shm.enabled()) GTEST_SKIP() << "one rank: nothing to share";
  EXPECT_FALSE(shm.alloc(size_t(1) << 42));
  MPI_Barrier(MPI_COMM_WORLD);
  size_t leftovers = 0;
  for (const auto& e : std::filesystem::directory_iterator("/dev/shm"))
    if (e.path().filename().string().rfind(shm.segment_prefix(), 0) == 0) ++leftovers;
  EXPECT_EQ(leftovers, 0u) << "segments left in /dev/shm";
  MPI_Barrier(MPI_COMM_WORLD);  // every rank has looked before any creates the next segment
  std::shared_ptr<float> buf = shm.alloc(1000);
  ASSERT_TRUE(buf);
  std::fill(buf.get(), buf.get() + 1000, 1.0f);
  ASSERT_TRUE(shm.reduce(buf.get(), 1000, ReduceOp::sum));
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  EXPECT_EQ(buf.get()[999], float(world));
}

TEST(NodeSharedReduce, LeavesPrivateMemoryToMpi) {
  NodeSharedReduce shm;
  std::vector<float> priv(64, 1.0f);
  EXPECT_FALSE(shm.reduce(priv.data(), priv.size(), ReduceOp::sum));
  EXPECT_EQ(priv[0], 1.0f);
  // A buffer that has been released is no longer taken either.
  std::shared_ptr<float> buf = shm.alloc(64);
  if (!shm.enabled()) return;
  ASSERT_TRUE(buf);
  float* raw = buf.get();
  EXPECT_TRUE(shm.reduce(raw, 64, ReduceOp::sum));
  buf.reset();
  EXPECT_FALSE(shm.reduce(raw, 64, ReduceOp::sum));
}

TEST(NodeSharedReduce, CommunicatorReducesSharedGradients) {
  std::unique_ptr<Communicator> comm = make_mpi_communicator();
  const size_t n = 3000;
  std::shared_ptr<float> buf = comm->alloc_reducible(n);
  if (comm->size() == 1) {
    EXPECT_FALSE(buf);  // one rank: the caller keeps its own memory
    return;
  }
  ASSERT_TRUE(buf);
  const std::vector<float> mine = rank_values(n, comm->rank());
  std::copy(mine.begin(), mine.end(), buf.get());
  std::vector<float> expect = mine;
  MPI_Allreduce(MPI_IN_PLACE, expect.data(), int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  // Through the non-blocking path too (the communication thread, or MPI_Iallreduce when funneled).
  comm->wait(comm->iallreduce(buf.get(), n / 2, ReduceOp::avg));
  comm->allreduce(buf.get() + n / 2, n - n / 2, ReduceOp::avg);
  for (size_t i = 0; i < n; ++i)
    ASSERT_NEAR(buf.get()[i], expect[i] / float(comm->size()), 4e-7 * comm->size()) << i;
}

}  // namespace
}  // namespace distvae
