// Tests for io/convert/ordered_pipeline: consumption in index order whatever the producers' timing,
// the window bound, and errors from either side stopping the pipeline.
#include "io/convert/ordered_pipeline.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

namespace distvae {
namespace {

TEST(OrderedPipeline, ConsumesEveryItemInOrderWithinTheWindow) {
  for (int workers : {0, 1, 3, 8}) {
    const int window = 5;
    std::vector<int64_t> slot_item(window, -1);
    std::vector<int64_t> consumed;
    std::atomic<int64_t> in_flight_max{0}, done_consumed{0};
    run_ordered(
        200, workers, window,
        [&](int64_t i, int s) {
          // Later items sometimes finish first.
          if (i % 7 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
          const int64_t ahead = i - done_consumed.load();
          int64_t m = in_flight_max.load();
          while (ahead > m && !in_flight_max.compare_exchange_weak(m, ahead)) {
          }
          slot_item[size_t(s)] = i;
        },
        [&](int64_t i, int s) {
          EXPECT_EQ(slot_item[size_t(s)], i);  // the slot still holds item i
          consumed.push_back(i);
          done_consumed.store(i + 1);
        });
    ASSERT_EQ(consumed.size(), 200u);
    for (int64_t i = 0; i < 200; ++i) EXPECT_EQ(consumed[size_t(i)], i);
    EXPECT_LT(in_flight_max.load(), window) << workers << " workers";
  }
}

TEST(OrderedPipeline, AnErrorOnEitherSideStopsAndIsRethrown) {
  std::atomic<int> produced{0};
  EXPECT_THROW(run_ordered(
                   1000, 3, 4,
                   [&](int64_t i, int) {
                     ++produced;
                     if (i == 10) throw std::runtime_error("bad item 10");
                   },
                   [](int64_t, int) {}),
               std::runtime_error);
  EXPECT_LT(produced.load(), 30);
  int consumed = 0;
  try {
    run_ordered(
        1000, 2, 4, [](int64_t, int) {},
        [&](int64_t i, int) {
          ++consumed;
          if (i == 5) throw std::logic_error("stop at 5");
        });
    ADD_FAILURE() << "expected an exception";
  } catch (const std::logic_error& e) {
    EXPECT_STREQ(e.what(), "stop at 5");
  }
  EXPECT_EQ(consumed, 6);
  EXPECT_THROW(run_ordered(
                   1, 1, 0, [](int64_t, int) {}, [](int64_t, int) {}),
               std::invalid_argument);
}

}  // namespace
}  // namespace distvae
