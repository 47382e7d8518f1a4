// The per-epoch shard plan: chunk permutation, dealing to ranks, windowed image shuffle.
#include "io/data/shard_plan.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "core/rng.h"

namespace distvae {
namespace {

// Fisher-Yates on v[0, n) with the uniforms of elements offset, offset+1, ... of `stream`:
// for i = n-1 .. 1, j = floor(u_i (i+1)) (clamped to i against rounding), swap(v[i], v[j]).
// `draws` is scratch, resized to n.
void fisher_yates(int64_t* v, size_t n, uint64_t seed, uint64_t stream, uint64_t offset,
                  std::vector<double>& draws) {
  if (n < 2) return;
  draws.resize(n);
  uniform_fill(seed, stream, offset, n, draws.data());
  for (size_t i = n - 1; i > 0; --i) {
    size_t j = static_cast<size_t>(draws[i] * static_cast<double>(i + 1));
    if (j > i) j = i;
    std::swap(v[i], v[j]);
  }
}

void check_args(int epoch, int rank, int world) {
  if (world < 1 || rank < 0 || rank >= world)
    throw std::runtime_error("shard plan: rank " + std::to_string(rank) +
                             " is outside [0, world size " + std::to_string(world) + ")");
  if (epoch < 0) throw std::runtime_error("shard plan: epoch must be at least 0");
}

void check_world(size_t num_chunks, int world) {
  if (static_cast<size_t>(world) > num_chunks)
    throw std::runtime_error("world size " + std::to_string(world) + " is larger than the " +
                             std::to_string(num_chunks) +
                             " chunks of the dataset; reconvert with a smaller --chunk or run "
                             "fewer ranks");
}

// Step 1: the permutation of all chunk ids, from (seed, epoch) only.
std::vector<int64_t> chunk_permutation(size_t num_chunks, uint64_t seed, int epoch) {
  std::vector<int64_t> perm(num_chunks);
  for (size_t c = 0; c < num_chunks; ++c) perm[c] = static_cast<int64_t>(c);
  std::vector<double> draws;
  fisher_yates(perm.data(), perm.size(), seed,
               stream_id(rng_purpose::chunk_shuffle, static_cast<uint64_t>(epoch)), 0, draws);
  return perm;
}

}  // namespace

std::vector<ChunkRef> all_chunks(const DatasetInfo& info) {
  std::vector<ChunkRef> chunks;
  for (size_t f = 0; f < info.files.size(); ++f) {
    const ShardFileInfo& fi = info.files[f];
    for (int64_t c = 0; c < fi.num_chunks; ++c) {
      ChunkRef ref;
      ref.file = static_cast<uint32_t>(f);
      ref.chunk = c;
      ref.first = fi.first + c * fi.chunk_images;
      ref.count = std::min(fi.chunk_images, fi.count - c * fi.chunk_images);
      chunks.push_back(ref);
    }
  }
  return chunks;
}

std::vector<ChunkRef> deal_chunks(const DatasetInfo& info, uint64_t seed, int epoch, int rank,
                                  int world) {
  check_args(epoch, rank, world);
  const std::vector<ChunkRef> chunks = all_chunks(info);
  check_world(chunks.size(), world);
  const std::vector<int64_t> perm = chunk_permutation(chunks.size(), seed, epoch);
  // Step 2: permuted chunk k goes to rank k % world.
  std::vector<ChunkRef> mine;
  for (size_t k = static_cast<size_t>(rank); k < chunks.size(); k += static_cast<size_t>(world))
    mine.push_back(chunks[static_cast<size_t>(perm[k])]);
  return mine;
}

RankPlan plan_epoch(const DatasetInfo& info, uint64_t seed, int epoch, int rank, int world,
                    int batch, int window_chunks) {
  check_args(epoch, rank, world);
  if (batch < 1) throw std::runtime_error("shard plan: batch must be at least 1");
  if (window_chunks < 1) throw std::runtime_error("shard plan: window_chunks must be at least 1");
  const std::vector<ChunkRef> chunks = all_chunks(info);
  check_world(chunks.size(), world);
  const std::vector<int64_t> perm = chunk_permutation(chunks.size(), seed, epoch);

  // 4. Steps: the same on every rank, from every rank's image count under the dealing of 2.
  std::vector<int64_t> images(static_cast<size_t>(world), 0);
  for (size_t k = 0; k < chunks.size(); ++k)
    images[k % static_cast<size_t>(world)] += chunks[static_cast<size_t>(perm[k])].count;
  int64_t steps = images[0] / batch;
  size_t rank_min = 0;
  for (size_t q = 1; q < images.size(); ++q)
    if (images[q] / batch < steps) steps = images[q] / batch, rank_min = q;
  if (steps == 0)
    throw std::runtime_error(
        "batch " + std::to_string(batch) + " is larger than the " +
        std::to_string(images[rank_min]) + " images rank " + std::to_string(rank_min) +
        " receives in epoch " + std::to_string(epoch) + " (" + std::to_string(info.count) +
        " images in " + std::to_string(chunks.size()) + " chunks dealt to " +
        std::to_string(world) + " ranks); use a smaller batch, fewer ranks or more data");

  // 2. + 3. This rank's chunks, then its images shuffled window by window.
  const std::vector<ChunkRef> mine = deal_chunks(info, seed, epoch, rank, world);
  std::vector<int64_t> order;
  order.reserve(static_cast<size_t>(images[static_cast<size_t>(rank)]));
  const uint64_t window_stream = stream_id(
      rng_purpose::window_shuffle,
      static_cast<uint64_t>(epoch) * static_cast<uint64_t>(world) + static_cast<uint64_t>(rank));
  std::vector<double> draws;
  for (size_t w = 0; w < mine.size(); w += static_cast<size_t>(window_chunks)) {
    const size_t start = order.size();
    const size_t end = std::min(mine.size(), w + static_cast<size_t>(window_chunks));
    for (size_t k = w; k < end; ++k)
      for (int64_t i = 0; i < mine[k].count; ++i) order.push_back(mine[k].first + i);
    fisher_yates(order.data() + start, order.size() - start, seed, window_stream, start, draws);
  }

  // 4. Drop the tail, and the chunks that no longer supply an image.
  RankPlan plan;
  plan.steps = steps;
  order.resize(static_cast<size_t>(steps * batch));
  std::vector<int64_t> used(order);
  std::sort(used.begin(), used.end());
  for (const ChunkRef& c : mine) {
    auto it = std::lower_bound(used.begin(), used.end(), c.first);
    if (it != used.end() && *it < c.first + c.count) plan.chunks.push_back(c);
  }
  plan.order = std::move(order);
  return plan;
}

DatasetInfo first_images(const DatasetInfo& info, int64_t max_images) {
  if (max_images <= 0 || max_images >= info.count) return info;
  DatasetInfo out = info;
  out.files.clear();
  out.count = 0;
  for (const ShardFileInfo& f : info.files) {
    const int64_t room = max_images - out.count;
    if (room <= 0) break;
    ShardFileInfo g = f;
    if (f.count > room) {
      const int64_t whole = (room / f.chunk_images) * f.chunk_images;
      if (whole == 0 && out.count > 0) break;
      g.count = std::max(whole, std::min(f.count, f.chunk_images));
      g.num_chunks = (g.count + g.chunk_images - 1) / g.chunk_images;
    }
    g.first = out.count;
    out.count += g.count;
    out.files.push_back(g);
  }
  return out;
}

}  // namespace distvae
