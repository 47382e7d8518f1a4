// Resampling 8-bit images to a new size (area or antialiased bilinear filter) and center crops.
#include "io/image/resize.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace distvae {
namespace {

// The weights of one output sample: input samples [first, first + weights.size()).
struct Taps {
  int first = 0;
  std::vector<float> weights;
};

// Output sample o covers the input interval [o s, (o + 1) s), s = in / out, in input pixel units.
std::vector<Taps> area_taps(int in, int out) {
  const double s = double(in) / double(out);
  std::vector<Taps> taps(static_cast<size_t>(out));
  for (int o = 0; o < out; ++o) {
    const double lo = o * s, hi = (o + 1) * s;
    const int first = std::max(0, static_cast<int>(std::floor(lo)));
    const int last = std::min(in - 1, static_cast<int>(std::ceil(hi)) - 1);
    Taps& t = taps[static_cast<size_t>(o)];
    t.first = first;
    double total = 0;
    for (int i = first; i <= last; ++i) {
      const double w = std::min(hi, double(i + 1)) - std::max(lo, double(i));
      t.weights.push_back(static_cast<float>(std::max(0.0, w)));
      total += std::max(0.0, w);
    }
    for (float& w : t.weights) w = static_cast<float>(w / total);
  }
  return taps;
}

// Triangle filter of half-width max(1, s) centred on output sample o at (o + 0.5) s - 0.5.
std::vector<Taps> bilinear_taps(int in, int out) {
  const double s = double(in) / double(out);
  const double scale = std::max(1.0, s);  // the filter widens when shrinking
  const double support = scale;
  std::vector<Taps> taps(static_cast<size_t>(out));
  for (int o = 0; o < out; ++o) {
    const double center = (o + 0.5) * s;  // in the coordinates where pixel i spans [i, i + 1)
    const int first = std::max(0, static_cast<int>(std::floor(center - support)));
    const int last = std::min(in - 1, static_cast<int>(std::ceil(center + support)));
    Taps& t = taps[static_cast<size_t>(o)];
    t.first = first;
    double total = 0;
    for (int i = first; i <= last; ++i) {
      const double x = (i + 0.5 - center) / scale;
      const double w = std::max(0.0, 1.0 - std::abs(x));
      t.weights.push_back(static_cast<float>(w));
      total += w;
    }
    // Trim zero weights at the ends (keeps the inner loops short).
    while (!t.weights.empty() && t.weights.back() == 0.0f) t.weights.pop_back();
    size_t lead = 0;
    while (lead < t.weights.size() && t.weights[lead] == 0.0f) ++lead;
    t.weights.erase(t.weights.begin(), t.weights.begin() + static_cast<std::ptrdiff_t>(lead));
    t.first += static_cast<int>(lead);
    for (float& w : t.weights) w = static_cast<float>(w / total);
  }
  return taps;
}

std::vector<Taps> make_taps(int in, int out, ResizeFilter f) {
  return f == ResizeFilter::area ? area_taps(in, out) : bilinear_taps(in, out);
}

uint8_t to_byte(float v) {
  if (!(v > 0.0f)) return 0;
  if (v >= 255.0f) return 255;
  return static_cast<uint8_t>(v + 0.5f);
}

}  // namespace

ResizeFilter resize_filter_from_string(const std::string& name) {
  if (name == "area") return ResizeFilter::area;
  if (name == "bilinear") return ResizeFilter::bilinear;
  throw std::runtime_error("unknown resize filter '" + name + "': expected 'area' or 'bilinear'");
}

const char* to_string(ResizeFilter f) {
  return f == ResizeFilter::area ? "area" : "bilinear";
}

Image resize(const Image& in, int width, int height, ResizeFilter filter) {
  if (in.width < 1 || in.height < 1 || in.channels < 1)
    throw std::invalid_argument("resize: empty input image");
  if (width < 1 || height < 1)
    throw std::invalid_argument("resize: target size " + std::to_string(width) + "x" +
                                std::to_string(height) + " must be at least 1x1");
  const int C = in.channels;
  Image out;
  out.width = width;
  out.height = height;
  out.channels = C;
  if (width == in.width && height == in.height) {
    out.pixels = in.pixels;
    return out;
  }
  const std::vector<Taps> tx = make_taps(in.width, width, filter);
  const std::vector<Taps> ty = make_taps(in.height, height, filter);
  // Rows first: tmp (in.height, width, C) floats; then columns.
  std::vector<float> tmp(static_cast<size_t>(in.height) * static_cast<size_t>(width) *
                         static_cast<size_t>(C));
  for (int y = 0; y < in.height; ++y) {
    const uint8_t* src = in.pixels.data() + static_cast<size_t>(y) * in.width * C;
    float* dst = tmp.data() + static_cast<size_t>(y) * width * C;
    for (int x = 0; x < width; ++x) {
      const Taps& t = tx[static_cast<size_t>(x)];
      for (int c = 0; c < C; ++c) {
        float acc = 0;
        for (size_t k = 0; k < t.weights.size(); ++k)
          acc += t.weights[k] * src[(static_cast<size_t>(t.first) + k) * C + c];
        dst[static_cast<size_t>(x) * C + c] = acc;
      }
    }
  }
  out.pixels.resize(static_cast<size_t>(height) * width * C);
  const size_t row = static_cast<size_t>(width) * C;
  std::vector<float> acc(row);
  for (int y = 0; y < height; ++y) {
    const Taps& t = ty[static_cast<size_t>(y)];
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (size_t k = 0; k < t.weights.size(); ++k) {
      const float w = t.weights[k];
      const float* src = tmp.data() + (static_cast<size_t>(t.first) + k) * row;
      for (size_t i = 0; i < row; ++i) acc[i] += w * src[i];
    }
    uint8_t* dst = out.pixels.data() + static_cast<size_t>(y) * row;
    for (size_t i = 0; i < row; ++i) dst[i] = to_byte(acc[i]);
  }
  return out;
}

Image center_crop_square(const Image& in) {
  const int side = std::min(in.width, in.height);
  if (side == in.width && side == in.height) return in;
  const int x0 = (in.width - side) / 2, y0 = (in.height - side) / 2;
  Image out;
  out.width = out.height = side;
  out.channels = in.channels;
  const size_t C = static_cast<size_t>(in.channels);
  out.pixels.resize(static_cast<size_t>(side) * side * C);
  for (int y = 0; y < side; ++y)
    std::copy_n(in.pixels.data() + (static_cast<size_t>(y0 + y) * in.width + x0) * C, side * C,
                out.pixels.data() + static_cast<size_t>(y) * side * C);
  return out;
}

}  // namespace distvae
