// A dSprites-style procedural dataset (see io/convert/sprites.h).
#include "io/convert/sprites.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

#include "core/rng.h"

namespace distvae {
namespace {

// Philox stream of the per-image colour and background draws (an arbitrary fixed tag).
constexpr uint64_t kColourStream = 0x5370726974657331ull;  // "Sprites1"

bool inside(int shape, double u, double v) {
  switch (shape) {
    case 0:
      return std::max(std::abs(u), std::abs(v)) <= 1.0;
    case 1:
      return u * u + 4.0 * v * v <= 1.0;
    default: {
      const double x = 1.1 * u, y = 0.15 - 1.1 * v;
      const double a = x * x + y * y - 1.0;
      return a * a * a <= x * x * y * y * y;
    }
  }
}

double scale_value(int k) {
  return 0.5 + 0.1 * k;
}
double orientation_value(int k) {
  return 2.0 * std::numbers::pi * k / kSpriteOrientations;
}
double position_value(int k) {
  return double(k) / (kSpritePositions - 1);
}
double position_pixels(int k) {
  return kSpriteMargin + position_value(k) * (kSpriteSize - 2 * kSpriteMargin);
}

}  // namespace

SpriteFactors sprite_factors(int64_t g, bool rgb, uint64_t seed) {
  if (g < 0 || g >= kSpriteCount)
    throw std::out_of_range("sprite index " + std::to_string(g) + " outside [0, " +
                            std::to_string(kSpriteCount) + ")");
  SpriteFactors f;
  int64_t r = g;
  f.pos_y = static_cast<int>(r % kSpritePositions), r /= kSpritePositions;
  f.pos_x = static_cast<int>(r % kSpritePositions), r /= kSpritePositions;
  f.orientation = static_cast<int>(r % kSpriteOrientations), r /= kSpriteOrientations;
  f.scale = static_cast<int>(r % kSpriteScales), r /= kSpriteScales;
  f.shape = static_cast<int>(r);
  if (rgb) {
    const auto w = random_block(seed, kColourStream, static_cast<uint64_t>(g));
    f.colour = static_cast<int>(w[0] % kSpriteColours);
    f.background = static_cast<int>(w[1] % kSpriteBackgrounds);
  }
  return f;
}

int64_t sprite_grid_index(const SpriteFactors& f) {
  return (((int64_t{f.shape} * kSpriteScales + f.scale) * kSpriteOrientations + f.orientation) *
              kSpritePositions +
          f.pos_x) *
             kSpritePositions +
         f.pos_y;
}

std::vector<std::string> sprite_factor_names(bool rgb) {
  std::vector<std::string> n{"shape", "scale", "orientation", "pos_x", "pos_y"};
  if (rgb) n.insert(n.end(), {"colour", "background"});
  return n;
}

std::vector<int> sprite_factor_sizes(bool rgb) {
  std::vector<int> n{kSpriteShapes, kSpriteScales, kSpriteOrientations, kSpritePositions,
                     kSpritePositions};
  if (rgb) n.insert(n.end(), {kSpriteColours, kSpriteBackgrounds});
  return n;
}

std::vector<float> sprite_factor_values(const SpriteFactors& f, bool rgb) {
  std::vector<float> v{float(f.shape), float(scale_value(f.scale)),
                       float(orientation_value(f.orientation)), float(position_value(f.pos_x)),
                       float(position_value(f.pos_y))};
  if (rgb) v.insert(v.end(), {float(f.colour), float(sprite_background(f.background)) / 255.0f});
  return v;
}

std::vector<int32_t> sprite_factor_classes(const SpriteFactors& f, bool rgb) {
  std::vector<int32_t> v{f.shape, f.scale, f.orientation, f.pos_x, f.pos_y};
  if (rgb) v.insert(v.end(), {f.colour, f.background});
  return v;
}

std::array<uint8_t, 3> sprite_colour(int c) {
  static const std::array<uint8_t, 3> palette[kSpriteColours] = {
      {{230, 40, 40}},  {{40, 200, 60}},  {{40, 90, 240}},
      {{250, 220, 30}}, {{230, 50, 230}}, {{40, 230, 230}}};
  return palette[std::clamp(c, 0, kSpriteColours - 1)];
}

uint8_t sprite_background(int b) {
  return static_cast<uint8_t>(64 * std::clamp(b, 0, kSpriteBackgrounds - 1));
}

void render_shape_mask(int shape, double scale, double theta, double cx, double cy, int size,
                       uint8_t* out) {
  std::fill(out, out + size_t(size) * size_t(size), uint8_t{0});
  const double c = std::cos(theta), s = std::sin(theta), k = 1.0 / (scale * kSpriteUnit);
  // Only the bounding box of the circle that holds any rotation of the shape (radius 1.5 units).
  const double reach = 1.5 * scale * kSpriteUnit;
  const int i0 = std::max(0, int(std::floor(cy - reach))), i1 = std::min(size, int(cy + reach) + 1);
  const int j0 = std::max(0, int(std::floor(cx - reach))), j1 = std::min(size, int(cx + reach) + 1);
  for (int i = i0; i < i1; ++i) {
    const double dy = i + 0.5 - cy;
    for (int j = j0; j < j1; ++j) {
      const double dx = j + 0.5 - cx;
      // R(-theta) (dx, dy): the pixel in the shape's own frame.
      const double u = (c * dx + s * dy) * k, v = (-s * dx + c * dy) * k;
      if (inside(shape, u, v)) out[size_t(i) * size_t(size) + size_t(j)] = 1;
    }
  }
}

void render_sprite(const SpriteFactors& f, bool rgb, uint8_t* out) {
  uint8_t mask[kSpriteSize * kSpriteSize];
  render_shape_mask(f.shape, scale_value(f.scale), orientation_value(f.orientation),
                    position_pixels(f.pos_x), position_pixels(f.pos_y), kSpriteSize, mask);
  const int n = kSpriteSize * kSpriteSize;
  if (!rgb) {
    for (int p = 0; p < n; ++p) out[p] = mask[p] ? 255 : 0;
    return;
  }
  const std::array<uint8_t, 3> fg = sprite_colour(f.colour);
  const uint8_t bg = sprite_background(f.background);
  for (int p = 0; p < n; ++p)
    for (int ch = 0; ch < 3; ++ch) out[3 * p + ch] = mask[p] ? fg[size_t(ch)] : bg;
}

}  // namespace distvae
