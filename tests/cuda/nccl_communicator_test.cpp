// The NCCL communicator under mpirun (1 or 2 ranks, one GPU each): device buffers reduced and
// broadcast through NCCL, host buffers through MPI, and bucketed gradient sync (dist/grad_sync)
// over device gradients. Without a GPU the start-up refuses with the reason, and the rest skips.
#include "dist/nccl_communicator.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/param_store.h"
#include "dist/grad_sync.h"
#include "dist/mpi_communicator.h"
#include "tests/cuda/cuda_skip.h"

namespace distvae {
namespace {

TEST(NcclCommunicatorTest, StartsOnAGpuOrRefusesWithTheReason) {
  ASSERT_TRUE(nccl_built());
  const std::unique_ptr<Communicator> mpi = make_mpi_communicator();
  std::string why;
  if (cuda_device_count(&why) > 0) {
    const std::unique_ptr<Communicator> nccl = make_nccl_communicator(*mpi);
    EXPECT_EQ(nccl->rank(), mpi->rank());
    EXPECT_EQ(nccl->size(), mpi->size());
    return;
  }
  try {
    make_nccl_communicator(*mpi);
    FAIL() << "expected an exception without a GPU";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no CUDA device"), std::string::npos) << e.what();
  }
}

// A GPU-run fixture: the MPI communicator, NCCL over it (which selects this rank's GPU) and the
// CUDA backend on that GPU, in that order.
class NcclOnGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIP_WITHOUT_CUDA_DEVICE();
    mpi_ = make_mpi_communicator();
    nccl_ = make_nccl_communicator(*mpi_);
    be_ = make_backend("cuda");
  }
  Communicator& comm() { return *nccl_; }
  Backend<float>& be() { return *be_; }

  std::unique_ptr<Communicator> mpi_, nccl_;
  std::unique_ptr<Backend<float>> be_;
};

TEST_F(NcclOnGpu, AllreduceOfDeviceBuffersSumsAndAverages) {
  const int r = comm().rank(), p = comm().size();
  const size_t n = 1000;
  std::vector<float> h(n);
  for (size_t i = 0; i < n; ++i) h[i] = float(r + 1) * float(i % 7);
  float* d = be().alloc(n);
  be().to_device(h.data(), d, n);
  comm().allreduce(d, n, ReduceOp::sum);
  std::vector<float> out(n);
  be().to_host(d, out.data(), n);
  const float ranks_sum = float(p * (p + 1) / 2);
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(out[i], ranks_sum * float(i % 7)) << i;

  // non-blocking, average; the wait orders the backend's stream after it, no host sync needed
  be().to_device(h.data(), d, n);
  const uint64_t t = comm().iallreduce(d, n, ReduceOp::avg);
  comm().wait(t);
  be().to_host(d, out.data(), n);
  for (size_t i = 0; i < n; ++i) ASSERT_FLOAT_EQ(out[i], ranks_sum / float(p) * float(i % 7)) << i;
  be().release(d);
}

TEST_F(NcclOnGpu, HostBuffersGoThroughMpi) {
  double v[3] = {1.0, double(comm().rank()), 2.5};
  comm().allreduce(v, 3, ReduceOp::sum);
  const int p = comm().size();
  EXPECT_EQ(v[0], double(p));
  EXPECT_EQ(v[1], double(p * (p - 1) / 2));
  EXPECT_EQ(v[2], 2.5 * p);
  int token = comm().rank() == 0 ? 42 : 0;
  comm().broadcast(&token, sizeof token, 0);
  EXPECT_EQ(token, 42);
}

TEST_F(NcclOnGpu, BroadcastOfADeviceBuffer) {
  const size_t n = 257;
  std::vector<float> h(n, float(comm().rank() + 10));
  float* d = be().alloc(n);
  be().to_device(h.data(), d, n);
  comm().broadcast(d, n * sizeof(float), 0);
  be().to_host(d, h.data(), n);
  for (float x : h) ASSERT_EQ(x, 10.0f);
  be().release(d);
}

// The trainer's path: a flat gradient buffer on the GPU, cut into buckets, reduced as backward
// reports them ready, averaged over ranks.
TEST_F(NcclOnGpu, BucketedGradSyncAveragesDeviceGradients) {
  ParamStore<float> ps(be());
  ps.add("a.weight", Shape{300, 7});
  ps.add("b.weight", Shape{1000});
  ps.allocate();
  const int r = comm().rank(), p = comm().size();
  std::vector<float> g(ps.size());
  for (size_t i = 0; i < g.size(); ++i) g[i] = float((r + 1) * int(i % 11));
  be().to_device(g.data(), ps.grads(), g.size());
  GradSync sync(comm(), ps.grads(), ps.buckets(1024), /*overlap=*/true);
  ASSERT_GT(sync.num_buckets(), 2u);
  sync.begin_step();
  sync.on_ready(ps.size() / 2);  // the upper half is final: its buckets start now
  sync.finish();
  std::vector<float> out(ps.size());
  be().to_host(ps.grads(), out.data(), out.size());
  const float mean_factor = float(p + 1) / 2.0f;
  for (size_t i = 0; i < out.size(); ++i) ASSERT_FLOAT_EQ(out[i], mean_factor * float(i % 11)) << i;
}

}  // namespace
}  // namespace distvae
