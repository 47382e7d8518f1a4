// All-reduce of the real gradient buckets of a VAE (GradSync over its ParamStores) against one
// plain MPI_Allreduce of the same total bytes: the buckets in private memory through MPI, and in
// node shared memory as the trainer keeps them on CPU backends (dist/shm_reduce.h), bucket by
// bucket and in one call after backward. Run under mpirun -np 2 (or more):
//   mpirun -np 2 build/bench/allreduce_bench [--config configs/fmnist_vae_mlp.yaml] [--iters 200]
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/models/vae.h"
#include "dist/grad_sync.h"
#include "dist/mpi_communicator.h"
#include "launch/config/config.h"
#include "launch/train/model_setup.h"

using namespace distvae;

namespace {

double now() {
  return MPI_Wtime();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  MpiSession mpi(&argc, &argv);
  std::string config = "configs/fmnist_vae_mlp.yaml";
  int iters = 200;
  for (int i = 1; i + 1 < argc; ++i) {
    if (!std::strcmp(argv[i], "--config"))
      config = argv[++i];
    else if (!std::strcmp(argv[i], "--iters"))
      iters = std::atoi(argv[++i]);
  }
  auto comm = make_mpi_communicator();
  const Config c = load_config(config);
  auto be = make_backend("dnnl");
  Vae<float> vae(*be, vae_spec_from(c, ImageGeom{28, 28, 1}), 8);
  Vae<float> shared(*be, vae_spec_from(c, ImageGeom{28, 28, 1}), 8);  // gradients in shared memory
  bool have_shared = true;
  for (Network<float>* n : {&shared.encoder(), &shared.decoder()}) {
    std::shared_ptr<float> g = comm->alloc_reducible(n->params().size());
    have_shared = have_shared && g;
    if (g) n->params().adopt_grads(g);
  }
  const size_t total = vae.encoder().params().size() + vae.decoder().params().size();
  const double bytes = double(total) * sizeof(float);
  if (comm->rank() == 0)
    std::printf("%d ranks, %zu gradient values (%.2f MiB) in encoder + decoder, %d iterations\n",
                comm->size(), total, bytes / (1 << 20), iters);
  // Plain: one MPI_Allreduce of all the bytes.
  std::vector<float> flat(total, 1.0f);
  std::vector<double> t_plain, t_bucket;
  for (size_t kib : {256, 512, 1024}) {
    std::vector<double> tb, tblk;
    GradSync enc(*comm, vae.encoder().params().grads(), vae.encoder().params().buckets(kib * 1024),
                 true);
    GradSync dec(*comm, vae.decoder().params().grads(), vae.decoder().params().buckets(kib * 1024),
                 true);
    const auto shared_sync = [&](Network<float>& n, bool overlap) {
      return GradSync(*comm, n.params().grads(), n.params().buckets(kib * 1024), overlap);
    };
    GradSync senc = shared_sync(shared.encoder(), true), sdec = shared_sync(shared.decoder(), true);
    GradSync wenc = shared_sync(shared.encoder(), false),
             wdec = shared_sync(shared.decoder(), false);
    std::vector<double> tsb, tsw;
    for (int it = 0; it < iters + 10; ++it) {
      comm->barrier();
      double t0 = now();
      MPI_Allreduce(MPI_IN_PLACE, flat.data(), int(total), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      const double plain = now() - t0;
      comm->barrier();
      t0 = now();
      dec.begin_step(), enc.begin_step();
      dec.finish(), enc.finish();  // every bucket started in order, then all awaited
      const double bucketed = now() - t0;
      comm->barrier();
      t0 = now();
      for (auto* ps : {&vae.decoder().params(), &vae.encoder().params()})
        for (const Bucket& bk : ps->buckets(kib * 1024))
          MPI_Allreduce(MPI_IN_PLACE, ps->grads() + bk.begin, int(bk.end - bk.begin), MPI_FLOAT,
                        MPI_SUM, MPI_COMM_WORLD);
      const double blocking = now() - t0;
      comm->barrier();
      t0 = now();
      sdec.begin_step(), senc.begin_step();
      sdec.finish(), senc.finish();
      const double shared_bucketed = now() - t0;
      comm->barrier();
      t0 = now();
      wdec.begin_step(), wenc.begin_step();
      wdec.finish(), wenc.finish();  // one reduction of each network's whole buffer
      const double shared_whole = now() - t0;
      if (it >= 10) {
        t_plain.push_back(plain), tb.push_back(bucketed), tblk.push_back(blocking);
        tsb.push_back(shared_bucketed), tsw.push_back(shared_whole);
      }
    }
    if (comm->rank() == 0) {
      const double p = median(t_plain), b = median(tb);
      std::printf(
          "buckets of %4zu KiB (%zu + %zu): %.3f ms = %.2f GB/s   plain MPI_Allreduce: "
          "%.3f ms = %.2f GB/s   bucketed/plain throughput %.0f%%\n",
          kib, enc.num_buckets(), dec.num_buckets(), b * 1e3, bytes / b / 1e9, p * 1e3,
          bytes / p / 1e9, 100.0 * p / b);
      std::printf(
          "    the same buckets with blocking MPI_Allreduce (no overlap possible): %.3f ms = "
          "%.0f%%\n",
          median(tblk) * 1e3, 100.0 * p / median(tblk));
      if (have_shared)
        std::printf(
            "    in node shared memory: the same buckets %.3f ms = %.0f%%; each network's whole "
            "buffer after backward %.3f ms = %.0f%%\n",
            median(tsb) * 1e3, 100.0 * p / median(tsb), median(tsw) * 1e3, 100.0 * p / median(tsw));
      else
        std::printf("    node shared memory: not available here\n");
    }
    t_plain.clear();
  }
  return 0;
}
