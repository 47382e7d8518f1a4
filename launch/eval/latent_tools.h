// Latent-space commands: distvae encode (posterior means and log-variances of every image, to
// HDF5, for downstream use) and distvae interpolate (decoded points on the line between two
// images' posterior means, as a PNG strip).
#pragma once

#include <string>

namespace distvae {

int encode_images(const std::string& checkpoint, const std::string& data, const std::string& out);
int interpolate(const std::string& checkpoint, const std::string& data, int64_t from, int64_t to,
                int steps, const std::string& out_png);

}  // namespace distvae
