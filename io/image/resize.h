// Resampling 8-bit images to a new size (area or antialiased bilinear filter) and center crops.
#pragma once

#include <string>

#include "io/image/image.h"

namespace distvae {

enum class ResizeFilter {
  // Each output pixel is the mean of the input area it covers, partly covered input pixels
  // weighted by the covered fraction (OpenCV's INTER_AREA when shrinking). The right filter for
  // shrinking: every input pixel counts, no aliasing. When enlarging it is nearest-neighbour with
  // a blend at the pixel boundaries.
  area,
  // Triangle filter widened by the shrink factor (PIL's BILINEAR, "antialiased"): plain bilinear
  // interpolation when enlarging, a smooth low-pass when shrinking.
  bilinear,
};

// "area" or "bilinear"; throws naming the accepted values otherwise.
ResizeFilter resize_filter_from_string(const std::string& name);
const char* to_string(ResizeFilter f);

// `in` resampled to width x height (any channel count), separably: rows, then columns, in float,
// rounded to the nearest 8-bit value. Throws std::invalid_argument on an empty image or size.
Image resize(const Image& in, int width, int height, ResizeFilter filter);

// The largest centred square of `in` (the longer side's excess split evenly, the odd pixel on
// the right / bottom).
Image center_crop_square(const Image& in);

}  // namespace distvae
