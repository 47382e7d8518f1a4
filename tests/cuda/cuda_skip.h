// The skip every GPU test starts with: on a machine without a usable CUDA device the test reports
// "skipped: no CUDA device (<reason>)" through GoogleTest, never passes silently.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "core/backends/cuda_status.h"

#define SKIP_WITHOUT_CUDA_DEVICE()                                \
  do {                                                            \
    std::string why_;                                             \
    if (::distvae::cuda_device_count(&why_) == 0)                 \
      GTEST_SKIP() << "skipped: no CUDA device (" << why_ << ")"; \
  } while (0)
