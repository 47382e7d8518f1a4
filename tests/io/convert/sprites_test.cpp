// Tests for io/convert/sprites: the factor grid (count, ranges, index round trip), pixel spot
// checks of the renderer (a square's area, the square's 90-degree symmetry, no shape cut at the
// borders) and the RGB variant's colours.
#include "io/convert/sprites.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <numeric>
#include <set>

namespace distvae {
namespace {

int count_on(const std::vector<uint8_t>& px, uint8_t on = 255) {
  return static_cast<int>(std::count(px.begin(), px.end(), on));
}

std::vector<uint8_t> render(const SpriteFactors& f, bool rgb = false) {
  std::vector<uint8_t> px(size_t(kSpriteSize * kSpriteSize * (rgb ? 3 : 1)));
  render_sprite(f, rgb, px.data());
  return px;
}

TEST(Sprites, TheGridHas737280ImagesAndEveryIndexRoundTrips) {
  EXPECT_EQ(kSpriteCount, 737280);
  EXPECT_EQ(kSpriteCount, 3 * 6 * 40 * 32 * 32);
  for (int64_t g :
       {int64_t{0}, int64_t{1}, int64_t{31}, int64_t{32}, int64_t{123457}, kSpriteCount - 1}) {
    const SpriteFactors f = sprite_factors(g, false, 1);
    EXPECT_EQ(sprite_grid_index(f), g);
  }
  const SpriteFactors last = sprite_factors(kSpriteCount - 1, false, 1);
  EXPECT_EQ(last.shape, 2);
  EXPECT_EQ(last.scale, 5);
  EXPECT_EQ(last.orientation, 39);
  EXPECT_EQ(last.pos_x, 31);
  EXPECT_EQ(last.pos_y, 31);
  EXPECT_EQ(sprite_factors(1, false, 1).pos_y, 1);  // pos_y varies fastest, as in dSprites
  EXPECT_THROW(sprite_factors(kSpriteCount, false, 1), std::out_of_range);
  EXPECT_THROW(sprite_factors(-1, false, 1), std::out_of_range);
}

TEST(Sprites, FactorValuesAndClassesStayInTheirRanges) {
  const auto sizes = sprite_factor_sizes(true);
  ASSERT_EQ(sizes, (std::vector<int>{3, 6, 40, 32, 32, 6, 4}));
  ASSERT_EQ(sprite_factor_names(false).size(), 5u);
  std::vector<float> lo(7, 1e9f), hi(7, -1e9f);
  std::vector<std::set<int>> seen(7);
  for (int64_t g = 0; g < kSpriteCount; g += 97) {
    const SpriteFactors f = sprite_factors(g, true, 5);
    const auto v = sprite_factor_values(f, true);
    const auto c = sprite_factor_classes(f, true);
    for (size_t k = 0; k < 7; ++k) {
      ASSERT_GE(c[k], 0);
      ASSERT_LT(c[k], sizes[k]);
      seen[k].insert(c[k]);
      lo[k] = std::min(lo[k], v[k]);
      hi[k] = std::max(hi[k], v[k]);
    }
  }
  for (size_t k = 0; k < 7; ++k) EXPECT_EQ(int(seen[k].size()), sizes[k]) << "factor " << k;
  EXPECT_FLOAT_EQ(lo[1], 0.5f);  // scale
  EXPECT_FLOAT_EQ(hi[1], 1.0f);
  EXPECT_FLOAT_EQ(lo[2], 0.0f);  // orientation in [0, 2 pi)
  EXPECT_NEAR(hi[2], 2 * std::numbers::pi * 39 / 40, 1e-5);
  EXPECT_FLOAT_EQ(lo[3], 0.0f);  // positions in [0, 1]
  EXPECT_FLOAT_EQ(hi[3], 1.0f);
  EXPECT_FLOAT_EQ(hi[6], 192.0f / 255.0f);  // background level
}

TEST(Sprites, ACentredSquareCoversItsArea) {
  // Scale 1: side 2 * kSpriteUnit = 20 px; centred on a pixel corner, at orientation 0 it covers
  // exactly 20 x 20 pixel centres; rotated, 400 within a perimeter's worth of pixels.
  std::vector<uint8_t> mask(64 * 64);
  render_shape_mask(0, 1.0, 0.0, 32.0, 32.0, 64, mask.data());
  EXPECT_EQ(count_on(mask, 1), 400);
  render_shape_mask(0, 0.5, 0.0, 32.0, 32.0, 64, mask.data());
  EXPECT_EQ(count_on(mask, 1), 100);
  render_shape_mask(0, 1.0, 0.3, 32.0, 32.0, 64, mask.data());
  EXPECT_NEAR(count_on(mask, 1), 400, 4 * 20 * 0.5);
  // The grid's square at scale index 5 (1.0), any orientation and position: 400 px +- edges.
  for (int o : {0, 7, 13, 25}) {
    SpriteFactors f;
    f.shape = 0, f.scale = 5, f.orientation = o, f.pos_x = 15, f.pos_y = 16;
    EXPECT_NEAR(count_on(render(f)), 400, 40) << "orientation " << o;
  }
  // The ellipse (half-axes 1 and 0.5 units): pi * 10 * 5 = 157 px at scale 1.
  render_shape_mask(1, 1.0, 0.0, 32.0, 32.0, 64, mask.data());
  EXPECT_NEAR(count_on(mask, 1), std::numbers::pi * 50, 12);
}

TEST(Sprites, TheSquareLooksTheSameRotatedBy90Degrees) {
  // Orientation index 10 of 40 is 90 degrees: the square maps onto itself. Pixels whose centre
  // sits exactly on an edge may flip by floating-point rounding: allow a few.
  for (int scale : {0, 3, 5})
    for (int px : {0, 11, 31}) {
      SpriteFactors a;
      a.shape = 0, a.scale = scale, a.orientation = 3, a.pos_x = px, a.pos_y = 31 - px;
      SpriteFactors b = a;
      b.orientation = 13;
      const auto ia = render(a), ib = render(b);
      int diff = 0;
      for (size_t i = 0; i < ia.size(); ++i) diff += ia[i] != ib[i];
      EXPECT_LE(diff, 2) << "scale " << scale << " pos " << px;
      EXPECT_GT(count_on(ia), 50);
    }
  // The heart is not symmetric under 90 degrees: the check above can fail.
  SpriteFactors h;
  h.shape = 2, h.scale = 5, h.pos_x = h.pos_y = 16;
  SpriteFactors h90 = h;
  h90.orientation = 10;
  const auto ih = render(h), ih90 = render(h90);
  int diff = 0;
  for (size_t i = 0; i < ih.size(); ++i) diff += ih[i] != ih90[i];
  EXPECT_GT(diff, 30);
}

TEST(Sprites, NoShapeIsCutAtTheBorders) {
  // The same shape, scale and orientation covers the same number of pixels (up to sampling)
  // in the corners as in the middle, and never touches the outermost pixel ring.
  for (int shape = 0; shape < 3; ++shape)
    for (int o : {0, 5, 10, 15, 33}) {
      SpriteFactors f;
      f.shape = shape, f.scale = 5, f.orientation = o, f.pos_x = f.pos_y = 16;
      const int mid = count_on(render(f));
      for (auto [x, y] : {std::pair{0, 0}, std::pair{31, 0}, std::pair{0, 31}, std::pair{31, 31}}) {
        f.pos_x = x, f.pos_y = y;
        const auto img = render(f);
        EXPECT_NEAR(count_on(img), mid, 0.1 * mid) << shape << " " << o << " " << x << "," << y;
        for (int i = 0; i < 64; ++i) {
          ASSERT_EQ(img[size_t(i)], 0);
          ASSERT_EQ(img[size_t(63 * 64 + i)], 0);
          ASSERT_EQ(img[size_t(i * 64)], 0);
          ASSERT_EQ(img[size_t(i * 64 + 63)], 0);
        }
      }
    }
}

TEST(Sprites, PositionsMoveTheShape) {
  SpriteFactors f;
  f.shape = 1, f.scale = 2, f.pos_x = 0, f.pos_y = 31;  // left, bottom
  const auto img = render(f);
  double sx = 0, sy = 0;
  int n = 0;
  for (int i = 0; i < 64; ++i)
    for (int j = 0; j < 64; ++j)
      if (img[size_t(i * 64 + j)]) sx += j + 0.5, sy += i + 0.5, ++n;
  ASSERT_GT(n, 0);
  EXPECT_NEAR(sx / n, kSpriteMargin, 0.5);
  EXPECT_NEAR(sy / n, 64 - kSpriteMargin, 0.5);
}

TEST(Sprites, RgbImagesUseTheirColourAndBackground) {
  std::vector<int> colours(kSpriteColours, 0), backgrounds(kSpriteBackgrounds, 0);
  for (int64_t g = 0; g < 6000; ++g) {
    const SpriteFactors f = sprite_factors(g * 97, true, 3);
    ++colours[size_t(f.colour)];
    ++backgrounds[size_t(f.background)];
    if (g % 500 != 0) continue;
    const auto img = render(f, true);
    const auto fg = sprite_colour(f.colour);
    const uint8_t bg = sprite_background(f.background);
    EXPECT_EQ(img[0], bg);  // a corner is background
    const auto gray = render(f, false);
    for (size_t p = 0; p < gray.size(); ++p)
      for (size_t c = 0; c < 3; ++c) ASSERT_EQ(img[3 * p + c], gray[p] ? fg[c] : bg);
  }
  for (int c : colours) EXPECT_NEAR(c, 1000, 150);  // uniform draws
  for (int b : backgrounds) EXPECT_NEAR(b, 1500, 200);
  // Deterministic in the seed, different across seeds.
  EXPECT_EQ(sprite_factors(77, true, 3).colour, sprite_factors(77, true, 3).colour);
  int differ = 0;
  for (int64_t g = 0; g < 100; ++g)
    differ += sprite_factors(g, true, 3).colour != sprite_factors(g, true, 4).colour;
  EXPECT_GT(differ, 50);
}

}  // namespace
}  // namespace distvae
