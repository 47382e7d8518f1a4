// Tests for io/data/shard_plan: every image at most once per epoch across ranks, equal steps, the
// tail rule, window locality, determinism, and the errors.
#include "io/data/shard_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "tests/io/io_test_util.h"

namespace distvae {
namespace {

// A DatasetInfo for files of the given sizes with `chunk` images per chunk (1x1x1 images).
DatasetInfo make_info(const std::vector<int64_t>& sizes, int64_t chunk) {
  DatasetInfo info;
  info.height = info.width = info.channels = 1;
  for (size_t f = 0; f < sizes.size(); ++f) {
    ShardFileInfo fi;
    fi.path = "file" + std::to_string(f) + ".h5";
    fi.count = sizes[f];
    fi.first = info.count;
    fi.chunk_images = chunk;
    fi.num_chunks = (sizes[f] + chunk - 1) / chunk;
    info.count += sizes[f];
    info.files.push_back(fi);
  }
  return info;
}

// The chunk (index into all_chunks) holding global image g.
size_t chunk_of(const std::vector<ChunkRef>& all, int64_t g) {
  for (size_t c = 0; c < all.size(); ++c)
    if (g >= all[c].first && g < all[c].first + all[c].count) return c;
  ADD_FAILURE() << "image " << g << " is in no chunk";
  return 0;
}

struct Case {
  std::vector<int64_t> sizes;
  int64_t chunk;
  int batch, window;
};

TEST(ShardPlan, CoverageTailRuleAndWindows) {
  const std::vector<Case> cases = {
      {{1000, 777, 13}, 64, 32, 3}, {{1000, 777, 13}, 64, 32, 1}, {{100}, 7, 5, 2},
      {{50, 51, 3}, 10, 7, 4},      {{333, 1}, 16, 10, 100},
  };
  for (const Case& cs : cases) {
    const DatasetInfo info = make_info(cs.sizes, cs.chunk);
    const std::vector<ChunkRef> all = all_chunks(info);
    for (int world = 1; world <= 4; ++world) {
      for (int epoch = 0; epoch < 3; ++epoch) {
        SCOPED_TRACE("files " + std::to_string(cs.sizes.size()) + " chunk " +
                     std::to_string(cs.chunk) + " batch " + std::to_string(cs.batch) + " window " +
                     std::to_string(cs.window) + " world " + std::to_string(world) + " epoch " +
                     std::to_string(epoch));
        std::vector<int> uses(static_cast<size_t>(info.count), 0);
        std::vector<int> chunk_owner(all.size(), -1);
        int64_t steps = -1, used = 0;
        // Dealt images per rank, recomputed from the documented dealing of the chunk permutation.
        std::vector<int64_t> dealt(static_cast<size_t>(world), 0);
        for (int rank = 0; rank < world; ++rank) {
          const RankPlan p = plan_epoch(info, 42, epoch, rank, world, cs.batch, cs.window);
          const std::vector<ChunkRef> mine = deal_chunks(info, 42, epoch, rank, world);
          for (const ChunkRef& c : mine) {
            const size_t id = chunk_of(all, c.first);
            EXPECT_EQ(chunk_owner[id], -1) << "chunk dealt twice";
            chunk_owner[id] = rank;
            dealt[static_cast<size_t>(rank)] += c.count;
          }
          if (steps < 0) steps = p.steps;
          EXPECT_EQ(p.steps, steps) << "ranks disagree on steps";
          ASSERT_EQ(p.order.size(), static_cast<size_t>(p.steps * cs.batch));
          used += static_cast<int64_t>(p.order.size());
          for (int64_t g : p.order) {
            ASSERT_GE(g, 0);
            ASSERT_LT(g, info.count);
            ++uses[static_cast<size_t>(g)];
            EXPECT_EQ(chunk_owner[chunk_of(all, g)], rank) << "image from another rank's chunk";
          }
          // The plan's chunks are exactly the dealt chunks that supply a used image, in dealing
          // order.
          std::set<size_t> supplying;
          for (int64_t g : p.order) supplying.insert(chunk_of(all, g));
          std::vector<int64_t> expect_chunks, got_chunks;
          for (const ChunkRef& c : mine)
            if (supplying.count(chunk_of(all, c.first))) expect_chunks.push_back(c.first);
          for (const ChunkRef& c : p.chunks) got_chunks.push_back(c.first);
          EXPECT_EQ(got_chunks, expect_chunks);
          // Windows: position p draws from window floor(k / window) where k is the dealt index
          // of its chunk, windows never go backwards, and full windows are used whole. So the
          // dropped images are the tail of the untruncated windowed order.
          std::vector<int64_t> window_of_chunk(all.size(), -1);
          std::vector<int64_t> window_size(mine.size() / cs.window + 1, 0);
          for (size_t k = 0; k < mine.size(); ++k) {
            window_of_chunk[chunk_of(all, mine[k].first)] = static_cast<int64_t>(k) / cs.window;
            window_size[k / cs.window] += mine[k].count;
          }
          std::vector<int64_t> window_used(window_size.size(), 0);
          int64_t prev_window = 0;
          for (int64_t g : p.order) {
            const int64_t w = window_of_chunk[chunk_of(all, g)];
            EXPECT_GE(w, prev_window) << "order went back to an earlier window";
            EXPECT_LE(w, prev_window + 1);
            if (w != prev_window) {
              EXPECT_EQ(window_used[static_cast<size_t>(prev_window)],
                        window_size[static_cast<size_t>(prev_window)])
                  << "left a window before using all of it";
            }
            ++window_used[static_cast<size_t>(w)];
            prev_window = w;
          }
        }
        // Every chunk dealt to exactly one rank; every image used at most once.
        for (int owner : chunk_owner) EXPECT_GE(owner, 0);
        for (int u : uses) EXPECT_LE(u, 1);
        EXPECT_EQ(used, steps * cs.batch * world);
        // steps = min over ranks of floor(n_r / batch): the smallest rank drops n_r mod batch,
        // every rank drops n_r - steps * batch.
        const int64_t min_dealt = *std::min_element(dealt.begin(), dealt.end());
        EXPECT_EQ(steps, min_dealt / cs.batch);
        int64_t dropped = 0;
        for (int u : uses) dropped += (u == 0);
        int64_t expect_dropped = 0;
        for (int64_t n : dealt) expect_dropped += n - steps * cs.batch;
        EXPECT_EQ(dropped, expect_dropped);
        EXPECT_EQ(used + dropped, info.count);
      }
    }
  }
}

TEST(ShardPlan, DeterministicPerSeedAndEpochDifferentAcrossEpochs) {
  const DatasetInfo info = make_info({1000, 777, 13}, 64);
  for (int world : {1, 3}) {
    const RankPlan a = plan_epoch(info, 7, 0, world - 1, world, 32, 2);
    const RankPlan b = plan_epoch(info, 7, 0, world - 1, world, 32, 2);
    EXPECT_EQ(a.order, b.order);
    EXPECT_EQ(a.steps, b.steps);
    const RankPlan next_epoch = plan_epoch(info, 7, 1, world - 1, world, 32, 2);
    EXPECT_NE(a.order, next_epoch.order);
    const RankPlan other_seed = plan_epoch(info, 8, 0, world - 1, world, 32, 2);
    EXPECT_NE(a.order, other_seed.order);
  }
  // The dropped images change from epoch to epoch.
  std::set<int64_t> used0, used1;
  for (int64_t g : plan_epoch(info, 7, 0, 0, 1, 100, 2).order) used0.insert(g);
  for (int64_t g : plan_epoch(info, 7, 1, 0, 1, 100, 2).order) used1.insert(g);
  EXPECT_NE(used0, used1);
}

TEST(ShardPlan, ChunkPermutationDoesNotDependOnWorld) {
  // Dealing the world-1 chunk order round-robin gives each rank's chunks at any world size.
  const DatasetInfo info = make_info({1000, 777, 13}, 64);
  const std::vector<ChunkRef> one = deal_chunks(info, 3, 2, 0, 1);
  for (int world = 2; world <= 4; ++world)
    for (int rank = 0; rank < world; ++rank) {
      const std::vector<ChunkRef> mine = deal_chunks(info, 3, 2, rank, world);
      ASSERT_EQ(mine.size(), (one.size() - rank + world - 1) / world);
      for (size_t k = 0; k < mine.size(); ++k)
        EXPECT_EQ(mine[k].first, one[k * world + rank].first);
    }
}

TEST(ShardPlan, ImagesAreShuffledInsideWindows) {
  // window 1: images of one chunk stay together but not in file order.
  const DatasetInfo info = make_info({640}, 64);
  const RankPlan p = plan_epoch(info, 1, 0, 0, 1, 64, 1);
  bool sorted = true;
  for (size_t i = 1; i < 64; ++i) sorted = sorted && p.order[i] == p.order[i - 1] + 1;
  EXPECT_FALSE(sorted);
  const std::vector<int64_t> head(p.order.begin(), p.order.begin() + 64);
  const int64_t lo = *std::min_element(head.begin(), head.end());
  EXPECT_EQ(lo % 64, 0);
  EXPECT_EQ(*std::max_element(head.begin(), head.end()), lo + 63);
}

TEST(ShardPlan, ClearErrors) {
  const DatasetInfo five = make_info({300, 20}, 64);  // chunks 64,64,64,64,44 + 20 = 6
  const DatasetInfo info = make_info({300}, 64);      // 5 chunks
  testing::expect_error([&] { plan_epoch(info, 1, 0, 0, 8, 4, 2); },
                        {"world size 8 is larger than the 5 chunks of the dataset; reconvert with "
                         "a smaller --chunk or run fewer ranks"});
  EXPECT_NO_THROW(plan_epoch(five, 1, 0, 5, 6, 4, 2));
  // 0 steps: a rank gets fewer images than one batch.
  testing::expect_error([&] { plan_epoch(info, 1, 0, 0, 5, 50, 2); },
                        {"batch 50 is larger than the 44 images rank", "smaller batch"});
  testing::expect_error([&] { plan_epoch(info, 1, 0, 2, 2, 4, 2); }, {"rank 2"});
  testing::expect_error([&] { plan_epoch(info, 1, 0, 0, 1, 0, 2); }, {"batch"});
  testing::expect_error([&] { plan_epoch(info, 1, 0, 0, 1, 4, 0); }, {"window_chunks"});
}

}  // namespace
}  // namespace distvae
