// An 8-bit image in memory, channel conversion, and sample grids made of many images.
#include "io/image/image.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace distvae {
namespace {

uint8_t to_byte(float v) {
  if (!(v > 0.0f)) return 0;  // also NaN
  if (v >= 1.0f) return 255;
  return static_cast<uint8_t>(std::lround(v * 255.0f));
}

}  // namespace

Image convert_channels(const Image& in, int channels) {
  if (channels != 1 && channels != 3)
    throw std::invalid_argument("convert_channels: channels must be 1 or 3, got " +
                                std::to_string(channels));
  if (in.channels != 1 && in.channels != 3)
    throw std::invalid_argument("convert_channels: the image has " + std::to_string(in.channels) +
                                " channels, expected 1 or 3");
  if (in.channels == channels) return in;
  Image out;
  out.width = in.width;
  out.height = in.height;
  out.channels = channels;
  const size_t npix = static_cast<size_t>(in.width) * static_cast<size_t>(in.height);
  out.pixels.resize(npix * static_cast<size_t>(channels));
  if (channels == 3) {
    for (size_t i = 0; i < npix; ++i)
      out.pixels[3 * i] = out.pixels[3 * i + 1] = out.pixels[3 * i + 2] = in.pixels[i];
  } else {
    // Integer weights summing to 1000 (299 + 587 + 114), rounded half up.
    for (size_t i = 0; i < npix; ++i) {
      const unsigned r = in.pixels[3 * i], g = in.pixels[3 * i + 1], b = in.pixels[3 * i + 2];
      out.pixels[i] = static_cast<uint8_t>((299 * r + 587 * g + 114 * b + 500) / 1000);
    }
  }
  return out;
}

Image make_grid(const float* images, int n, int C, int H, int W, int cols, int pad,
                uint8_t pad_value) {
  if (n < 1 || H < 1 || W < 1 || cols < 1 || pad < 0 || (C != 1 && C != 3))
    throw std::invalid_argument(
        "make_grid: need n, H, W, cols >= 1, pad >= 0 and C 1 or 3; got n " + std::to_string(n) +
        ", C " + std::to_string(C) + ", H " + std::to_string(H) + ", W " + std::to_string(W) +
        ", cols " + std::to_string(cols) + ", pad " + std::to_string(pad));
  if (cols > n) cols = n;
  const int rows = (n + cols - 1) / cols;
  Image grid;
  grid.channels = C;
  grid.width = cols * W + (cols + 1) * pad;
  grid.height = rows * H + (rows + 1) * pad;
  grid.pixels.assign(static_cast<size_t>(grid.width) * grid.height * C, pad_value);
  const size_t plane = static_cast<size_t>(H) * W;
  for (int k = 0; k < n; ++k) {
    const float* img = images + static_cast<size_t>(k) * C * plane;  // (C, H, W)
    const int x0 = pad + (k % cols) * (W + pad);
    const int y0 = pad + (k / cols) * (H + pad);
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x)
        for (int c = 0; c < C; ++c)
          grid.pixels[(static_cast<size_t>(y0 + y) * grid.width + (x0 + x)) * C + c] =
              to_byte(img[c * plane + static_cast<size_t>(y) * W + x]);
  }
  return grid;
}

}  // namespace distvae
