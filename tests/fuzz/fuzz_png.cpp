// libFuzzer target: io/image/png (read_png) on arbitrary bytes. Every input must either decode into
// an 8-bit gray or RGB image whose pixel count matches its size or throw std::runtime_error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

#include "io/image/png.h"
#include "tests/fuzz/memfd_path.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static distvae::fuzz::MemFile file;
  try {
    const distvae::Image img = distvae::read_png(file.hold(data, size));
    if (img.width < 1 || img.height < 1 || (img.channels != 1 && img.channels != 3)) std::abort();
    const size_t n = size_t(img.width) * size_t(img.height) * size_t(img.channels);
    if (img.pixels.size() != n) std::abort();
  } catch (const std::runtime_error&) {
    // The documented way to reject a malformed file.
  }
  return 0;
}
