// Distributed equivalence (docs/design.md section 8): N ranks x batch B/N reproduce one rank x
// batch B on the same images with the same noise: gradients, 20 SGD steps and 20 Adam steps, in
// float on dnnl and in double on the reference backend; with batch norms too, whose statistics are
// all-reduced; with an autoregressive (PixelCNN) decoder too. Run under mpirun with 1, 2 or 4
// ranks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include "core/backends/reference.h"
#include "core/models/vae.h"
#include "core/optim.h"
#include "core/rng.h"
#include "dist/grad_sync.h"
#include "dist/mpi_communicator.h"
#include "tests/layer_spec.h"
#include "tests/rel_err.h"

namespace distvae {
namespace {

constexpr int kGlobalBatch = 128;

// A PixelCNN over the image and a (2, 6, 6) feature map of z: masked A then B convs.
std::vector<LayerSpec> autoregressive_decoder() {
  LayerSpec map = layer("reshape"), a = layer("conv2d", 4), b = layer("conv2d", 1);
  map.shape = {2, 6, 6};
  a.kernel = b.kernel = 3, a.padding = b.padding = 1, a.mask = "A", b.mask = "B";
  return {layer("linear", 24),     layer("tanh"),
          layer("linear", 72),     map,
          layer("autoregressive"), a,
          layer("relu"),           b};
}

VaeSpec small_spec(bool batchnorm = false, bool autoregressive = false) {
  VaeSpec s;
  s.image = Shape{1, 6, 6};
  s.latent = 4;
  s.encoder = {layer("linear", 24), layer("relu")};
  s.decoder = {layer("linear", 24), layer("tanh"), layer("linear", 36)};
  if (autoregressive) s.decoder = autoregressive_decoder();
  if (batchnorm) {  // a bias before a batch norm has no gradient (only rounding noise): none
    LayerSpec lin = layer("linear", 24);
    lin.bias = false;
    s.encoder = {lin, layer("batchnorm"), layer("relu")};
    s.decoder = {lin, layer("batchnorm"), layer("tanh"), layer("linear", 36)};
  }
  return s;
}

// Binarized images in [0, 1], the same on every rank.
template <class T>
std::vector<T> dataset(int n, int D) {
  std::vector<double> u(size_t(n) * D);
  uniform_fill(7, stream_id(rng_purpose::test, 1), 0, u.size(), u.data());
  std::vector<T> x(u.size());
  for (size_t i = 0; i < u.size(); ++i) x[i] = u[i] < 0.4 ? T(1) : T(0);
  return x;
}

// Gradients of the trained tensors, or values of every tensor (batch norm's running averages too).
template <class T>
double worst_tensor_diff(ParamStore<T>& a, ParamStore<T>& b, bool grads) {
  double w = 0;
  for (const ParamSlice& s : a.slices()) {
    if (grads && !s.trainable) continue;
    const T* pa = (grads ? a.grads() : a.values()) + s.offset;
    const T* pb = (grads ? b.grads() : b.values()) + s.offset;
    w = std::max(w, rel_err(pa, pb, s.size));
  }
  return w;
}

// How the distributed side runs. With batchnorm, sync_stats says whether its batch norms
// all-reduce their statistics (as the trainer does) or use each rank's share alone.
// shared_grads puts its gradients in the communicator's node shared memory (as the trainer does
// on CPU backends); overlap reduces buckets during backward, else all after it.
struct Split {
  bool batchnorm = false;
  bool autoregressive = false;  // the decoder
  bool sync_stats = true;
  bool shared_grads = false;
  bool overlap = true;
};

// Runs `steps` steps of the distributed model (this rank's share of each global batch, gradients
// synchronised through GradSync) next to a single-process model on the whole global batch, and
// returns the worst per-tensor difference of the gradients after step 1 and of the parameters at
// the end.
template <class T>
std::pair<double, double> run(Backend<T>& be, Communicator& comm, const std::string& opt_kind,
                              int steps, double free_bits, Split split = {}) {
  const int world = comm.size(), B = kGlobalBatch / world, rank = comm.rank();
  const VaeSpec spec = small_spec(split.batchnorm, split.autoregressive);
  const int D = int(spec.image.numel());
  const std::vector<T> data = dataset<T>(kGlobalBatch * steps, D);
  Vae<T> dist_vae(be, spec, B), ref_vae(be, spec, kGlobalBatch);
  dist_vae.init(3);
  ref_vae.init(3);
  for (Network<T>* n :
       {&dist_vae.encoder(), &dist_vae.decoder(), &ref_vae.encoder(), &ref_vae.decoder()})
    n->set_training(true);
  if (split.sync_stats)
    for (Network<T>* n : {&dist_vae.encoder(), &dist_vae.decoder()})
      n->set_stats_reduce(
          [&comm](T* sums, size_t n_sums) { comm.allreduce(sums, n_sums, ReduceOp::sum); });
  OptimizerConfig oc;
  oc.kind = opt_kind;
  oc.momentum = 0.9;
  const double lr = opt_kind == "adam" ? 1e-3 : 0.05;
  auto opt = [&](Network<T>& n) {
    return std::make_unique<OptimizerStateOwner<T>>(be, oc, n.params().size());
  };
  auto de = opt(dist_vae.encoder()), dd = opt(dist_vae.decoder());
  auto re = opt(ref_vae.encoder()), rd = opt(ref_vae.decoder());
  std::unique_ptr<GradSync> es, ds;
  if constexpr (std::is_same_v<T, float>) {
    for (Network<T>* n : {&dist_vae.encoder(), &dist_vae.decoder()}) {
      if (!split.shared_grads) continue;
      std::shared_ptr<float> shared = comm.alloc_reducible(n->params().size());
      EXPECT_EQ(bool(shared), world > 1) << "node shared memory for the gradients";
      if (shared) n->params().adopt_grads(shared);
    }
    es = std::make_unique<GradSync>(comm, dist_vae.encoder().params().grads(),
                                    dist_vae.encoder().params().buckets(1024), split.overlap);
    ds = std::make_unique<GradSync>(comm, dist_vae.decoder().params().grads(),
                                    dist_vae.decoder().params().buckets(1024), split.overlap);
  }
  std::vector<uint64_t> keys(kGlobalBatch);
  double grad_diff = 0;
  for (int t = 0; t < steps; ++t) {
    const T* global = data.data() + size_t(t) * kGlobalBatch * D;
    for (int i = 0; i < kGlobalBatch; ++i) keys[size_t(i)] = uint64_t(t * kGlobalBatch + i);
    VaeStepArgs a;
    a.seed = 11, a.beta = 0.7, a.free_bits = free_bits, a.global_batch = kGlobalBatch;
    // Single process, whole batch.
    a.noise_keys = keys.data();
    ref_vae.train_step(global, kGlobalBatch, a);
    // This rank's slots [rank B, (rank + 1) B) of the same batch.
    a.noise_keys = keys.data() + size_t(rank) * B;
    a.allreduce_sum = [&](double* v, size_t n) { comm.allreduce(v, n, ReduceOp::sum); };
    if (es) {
      es->begin_step(), ds->begin_step();
      a.encoder_ready = [&](size_t o) { es->on_ready(o); };
      a.decoder_ready = [&](size_t o) { ds->on_ready(o); };
    }
    dist_vae.train_step(global + size_t(rank) * B * D, B, a);
    if (es) {
      ds->finish(), es->finish();
    } else {
      for (Network<T>* n : {&dist_vae.encoder(), &dist_vae.decoder()})
        comm.allreduce(n->params().grads(), n->params().size(), ReduceOp::avg);
    }
    if (t == 0)
      grad_diff = std::max(
          worst_tensor_diff(dist_vae.encoder().params(), ref_vae.encoder().params(), true),
          worst_tensor_diff(dist_vae.decoder().params(), ref_vae.decoder().params(), true));
    for (auto [n, o] :
         {std::pair{&dist_vae.encoder(), de.get()}, std::pair{&dist_vae.decoder(), dd.get()},
          std::pair{&ref_vae.encoder(), re.get()}, std::pair{&ref_vae.decoder(), rd.get()}})
      optimizer_step(be, oc, o->state(), n->params().values(), n->params().grads(),
                     n->params().size(), lr);
  }
  const double param_diff =
      std::max(worst_tensor_diff(dist_vae.encoder().params(), ref_vae.encoder().params(), false),
               worst_tensor_diff(dist_vae.decoder().params(), ref_vae.decoder().params(), false));
  return {grad_diff, param_diff};
}

class Equivalence : public ::testing::Test {
 protected:
  std::unique_ptr<Communicator> comm = make_mpi_communicator();
};

TEST_F(Equivalence, FloatDnnlSgd) {
  auto be = make_backend("dnnl");
  const auto [g, p] = run<float>(*be, *comm, "sgd", 20, 0.0);
  RecordProperty("grad_rel_diff", std::to_string(g));
  RecordProperty("param_rel_diff", std::to_string(p));
  if (comm->rank() == 0) std::printf("  float/dnnl SGD: gradients %.2e, parameters %.2e\n", g, p);
  EXPECT_LT(g, 1e-5) << "gradients after one step, " << comm->size() << " ranks";
  EXPECT_LT(p, 1e-5) << "parameters after 20 SGD steps";
}

TEST_F(Equivalence, FloatDnnlAdamWithFreeBits) {
  auto be = make_backend("dnnl");
  const auto [g, p] = run<float>(*be, *comm, "adam", 20, 0.3);
  if (comm->rank() == 0) std::printf("  float/dnnl Adam: gradients %.2e, parameters %.2e\n", g, p);
  EXPECT_LT(g, 1e-5) << "gradients after one step, " << comm->size() << " ranks";
  EXPECT_LT(p, 1e-3) << "parameters after 20 Adam steps";
}

// Gradients in node shared memory, reduced there (dist/shm_reduce.h): bucket by bucket during
// backward, and in one call after it.
TEST_F(Equivalence, FloatDnnlAdamSharedGradients) {
  auto be = make_backend("dnnl");
  for (bool overlap : {true, false}) {
    const auto [g, p] =
        run<float>(*be, *comm, "adam", 20, 0.3, {.shared_grads = true, .overlap = overlap});
    if (comm->rank() == 0)
      std::printf(
          "  float/dnnl Adam, shared gradients, overlap %d: gradients %.2e, parameters %.2e\n",
          int(overlap), g, p);
    EXPECT_LT(g, 1e-5) << "gradients after one step, " << comm->size() << " ranks";
    EXPECT_LT(p, 1e-3) << "parameters after 20 Adam steps";
  }
}

TEST_F(Equivalence, DoubleReferenceSgd) {
  ReferenceBackend<double> be;
  const auto [g, p] = run<double>(be, *comm, "sgd", 20, 0.3);
  if (comm->rank() == 0)
    std::printf("  double/reference SGD: gradients %.2e, parameters %.2e\n", g, p);
  EXPECT_LT(g, 1e-10);
  EXPECT_LT(p, 1e-10);
}

TEST_F(Equivalence, AutoregressiveFloatDnnlAdam) {
  auto be = make_backend("dnnl");
  const auto [g, p] = run<float>(*be, *comm, "adam", 20, 0.3, {.autoregressive = true});
  if (comm->rank() == 0)
    std::printf("  float/dnnl Adam, autoregressive decoder: gradients %.2e, parameters %.2e\n", g,
                p);
  EXPECT_LT(g, 1e-5) << "gradients after one step, " << comm->size() << " ranks";
  EXPECT_LT(p, 1e-3) << "parameters after 20 Adam steps";
}

TEST_F(Equivalence, AutoregressiveDoubleReferenceSgd) {
  ReferenceBackend<double> be;
  const auto [g, p] = run<double>(be, *comm, "sgd", 20, 0.0, {.autoregressive = true});
  if (comm->rank() == 0)
    std::printf("  double/reference SGD, autoregressive decoder: gradients %.2e, parameters %.2e\n",
                g, p);
  EXPECT_LT(g, 1e-10);
  EXPECT_LT(p, 1e-10);
}

TEST_F(Equivalence, BatchNormFloatDnnlAdam) {
  auto be = make_backend("dnnl");
  const auto [g, p] = run<float>(*be, *comm, "adam", 20, 0.0, {.batchnorm = true});
  if (comm->rank() == 0)
    std::printf("  float/dnnl Adam, batch norm: gradients %.2e, parameters %.2e\n", g, p);
  EXPECT_LT(g, 1e-5) << "gradients after one step, " << comm->size() << " ranks";
  EXPECT_LT(p, 1e-3) << "parameters and running averages after 20 Adam steps";
}

TEST_F(Equivalence, BatchNormDoubleReferenceSgd) {
  ReferenceBackend<double> be;
  const auto [g, p] = run<double>(be, *comm, "sgd", 20, 0.0, {.batchnorm = true});
  if (comm->rank() == 0)
    std::printf("  double/reference SGD, batch norm: gradients %.2e, parameters %.2e\n", g, p);
  EXPECT_LT(g, 1e-10);
  EXPECT_LT(p, 1e-10);
}

// Without the all-reduce of its statistics, each rank's batch norm sees only its share: what the
// test above relies on is the reduction, not a coincidence.
TEST_F(Equivalence, BatchNormWithoutGlobalStatisticsDiffers) {
  if (comm->size() == 1) GTEST_SKIP() << "needs 2+ ranks";
  ReferenceBackend<double> be;
  const auto [g, p] =
      run<double>(be, *comm, "sgd", 1, 0.0, {.batchnorm = true, .sync_stats = false});
  EXPECT_GT(g, 1e-3);
}

// The comparison must be able to fail: a rank that drops its share of the batch is caught.
TEST_F(Equivalence, DetectsAWrongSplit) {
  if (comm->size() == 1) GTEST_SKIP() << "needs 2+ ranks";
  ReferenceBackend<double> be;
  const VaeSpec spec = small_spec();
  const int B = kGlobalBatch / comm->size(), D = int(spec.image.numel());
  const auto data = dataset<double>(kGlobalBatch, D);
  Vae<double> a(be, spec, B), ref(be, spec, kGlobalBatch);
  a.init(3), ref.init(3);
  std::vector<uint64_t> keys(kGlobalBatch);
  for (int i = 0; i < kGlobalBatch; ++i) keys[size_t(i)] = uint64_t(i);
  VaeStepArgs args;
  args.seed = 11, args.noise_keys = keys.data();
  ref.train_step(data.data(), kGlobalBatch, args);
  a.train_step(data.data(), B, args);  // every rank takes slot 0's images: wrong
  for (Network<double>* n : {&a.encoder(), &a.decoder()})
    comm->allreduce(n->params().grads(), n->params().size(), ReduceOp::avg);
  EXPECT_GT(worst_tensor_diff(a.decoder().params(), ref.decoder().params(), true), 1e-3);
}

}  // namespace
}  // namespace distvae
