// Sample-quality figures that need no downloaded network (issue: model families side by side):
// the kernel MMD between generated and test images, and class coverage by nearest labelled
// training image. Images are rows of D intensities in [0, 1] on the host.
#pragma once

#include <cstdint>
#include <vector>

#include "core/backend.h"

namespace distvae {

struct Mmd {
  double mmd2 = 0;       // unbiased estimate of MMD^2 with k(a, b) = exp(-|a - b|^2 / (2 s^2))
  double bandwidth = 0;  // s, by the median heuristic on the pooled sample
};
Mmd gaussian_mmd(Backend<float>& be, const float* x, int64_t n, const float* y, int64_t m, int D);

// For each query row, the label of its nearest reference row (Euclidean distance).
std::vector<int> nearest_labels(Backend<float>& be, const float* query, int64_t n, const float* ref,
                                int64_t m, const std::vector<int>& ref_labels, int D);

// Class histogram (fractions over classes [0, k)) and KL(gen || test) of two label lists.
std::vector<double> class_histogram(const std::vector<int>& labels, int k);
double histogram_kl(const std::vector<double>& p, const std::vector<double>& q);

}  // namespace distvae
