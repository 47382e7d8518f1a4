// Reading one PNG or JPEG file and bringing it to the dataset's size and channel count.
#include "io/convert/image_prep.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "io/image/jpeg.h"
#include "io/image/png.h"

namespace distvae {
namespace {

bool looks_like_png(const uint8_t* d, size_t n) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  return n >= 8 && std::memcmp(d, sig, 8) == 0;
}

}  // namespace

std::string describe(const ImagePrep& p) {
  return "size=" + (p.size > 0 ? std::to_string(p.size) : std::string("native")) +
         " crop=" + (p.crop_center ? "center" : "none") + " filter=" + to_string(p.filter) +
         " channels=" + std::to_string(p.channels) +
         " jpeg_dct_scaling=" + (p.jpeg_dct_scaling ? "on" : "off");
}

Image prepare_image(const Image& in, const ImagePrep& p) {
  // Gray conversion first (fewer values to resample), RGB expansion last.
  Image img = p.channels == 1 ? convert_channels(in, 1) : in;
  if (p.size > 0) {
    if (p.crop_center) img = center_crop_square(img);
    img = resize(img, p.size, p.size, p.filter);
  }
  return p.channels == 3 ? convert_channels(img, 3) : img;
}

Image load_prepared_image(const std::string& path, const ImagePrep& p) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) throw std::runtime_error(path + ": read error");
  Image img;
  if (looks_like_jpeg(bytes.data(), bytes.size())) {
    const int want = p.size > 0 && p.jpeg_dct_scaling ? p.size : 0;
    img = decode_jpeg(bytes.data(), bytes.size(), path, want, want);
  } else if (looks_like_png(bytes.data(), bytes.size())) {
    bytes.clear();
    bytes.shrink_to_fit();
    img = read_png(path);
  } else {
    throw std::runtime_error(
        path + ": not a PNG or JPEG file (" +
        (bytes.empty() ? std::string("empty file") : std::string("unrecognised signature")) + ")");
  }
  return prepare_image(img, p);
}

}  // namespace distvae
