// A dSprites-style procedural dataset: binary 64x64 shapes on a full grid of generative factors,
// with an RGB variant that adds a shape colour and a background.
//
// Factors (class index, value), the grid of Matthey et al.'s dSprites:
//   shape        3   0 square, 1 ellipse, 2 heart (value: the index)
//   scale        6   0.5 + 0.1 k, k = 0..5 (value: the scale)
//   orientation 40   2 pi k / 40, k = 0..39, in radians (0 included, 2 pi not: no duplicate)
//   pos_x       32   k / 31 in [0, 1], left to right
//   pos_y       32   k / 31 in [0, 1], top to bottom
// 3 x 6 x 40 x 32 x 32 = 737,280 images; grid index = (((shape * 6 + scale) * 40 + orientation)
// * 32 + pos_x) * 32 + pos_y (pos_y fastest, as in dSprites). RGB variant only, drawn per image
// from Philox under the seed (so they are factors of variation, not of the grid):
//   colour       6   red, green, blue, yellow, magenta, cyan (value: the index)
//   background   4   gray levels 0, 64, 128, 192 (value: the level / 255)
//
// Rendering (pixel (row i, column j) sampled at its centre (j + 0.5, i + 0.5), no antialiasing,
// like dSprites): a shape of scale s, orientation t centred at (cx, cy) covers the points whose
// local coordinates (u, v) = R(-t) (x - cx, y - cy) / (s * kSpriteUnit) fall inside the unit
// shape: square max(|u|, |v|) <= 1; ellipse u^2 + (2 v)^2 <= 1; heart the classic implicit
// curve (x^2 + y^2 - 1)^3 <= x^2 y^3 at x = 1.1 u, y = 0.15 - 1.1 v (upright at t = 0). Centres
// run from kSpriteMargin to 64 - kSpriteMargin pixels, so no shape at any orientation is cut.
// Gray images are 0 outside and 255 inside; RGB ones the background level and the colour.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace distvae {

constexpr int kSpriteSize = 64;
constexpr int kSpriteShapes = 3, kSpriteScales = 6, kSpriteOrientations = 40, kSpritePositions = 32,
              kSpriteColours = 6, kSpriteBackgrounds = 4;
constexpr int64_t kSpriteCount = int64_t{kSpriteShapes} * kSpriteScales * kSpriteOrientations *
                                 kSpritePositions * kSpritePositions;  // 737,280
constexpr double kSpriteUnit = 10.0;    // half the side of the scale-1 square, in pixels
constexpr double kSpriteMargin = 15.0;  // > the largest half-extent (14.2 px) at any rotation

struct SpriteFactors {
  int shape = 0, scale = 0, orientation = 0, pos_x = 0, pos_y = 0;  // class indices
  int colour = 0, background = 0;                                   // RGB variant only
};

// The factors of grid index g in [0, kSpriteCount); colour and background (rgb) drawn from
// Philox under `seed`, keyed by g. Throws std::out_of_range outside the grid.
SpriteFactors sprite_factors(int64_t g, bool rgb, uint64_t seed);
int64_t sprite_grid_index(const SpriteFactors& f);

// The names of the factor columns: 5 (gray) or 7 (rgb).
std::vector<std::string> sprite_factor_names(bool rgb);
// Class counts per column, in the same order.
std::vector<int> sprite_factor_sizes(bool rgb);
// Values (see the table above) and class indices of one image, one per column.
std::vector<float> sprite_factor_values(const SpriteFactors& f, bool rgb);
std::vector<int32_t> sprite_factor_classes(const SpriteFactors& f, bool rgb);

// Renders the image of f: out (64, 64, rgb ? 3 : 1) uint8.
void render_sprite(const SpriteFactors& f, bool rgb, uint8_t* out);

// The mask of any shape at any continuous pose, for tests and tools: out (size, size), 1 inside
// and 0 outside. shape 0..2, scale in pixels-per-unit multiples of kSpriteUnit, theta in
// radians, (cx, cy) the centre in pixels.
void render_shape_mask(int shape, double scale, double theta, double cx, double cy, int size,
                       uint8_t* out);

// The RGB colour of palette entry c and the gray level of background b.
std::array<uint8_t, 3> sprite_colour(int c);
uint8_t sprite_background(int b);

}  // namespace distvae
