// Reading and writing 8-bit gray / RGB PNG files (libpng).
//
// libpng reports errors by calling an error function that must not return; ours records the
// message and longjmps back to the setjmp of the function that called into libpng. A longjmp
// skips destructors, so every function that calls setjmp (the *_phase functions below) holds
// only plain data, and all C++ objects (vectors, strings, guards) live in their callers, whose
// frames a longjmp never crosses.
#include "io/image/png.h"

#include <png.h>

#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace distvae {
namespace {

// Shared with libpng's callbacks; plain data only.
struct PngState {
  png_structp png = nullptr;
  png_infop info = nullptr;
  std::jmp_buf jmp;
  char message[256] = "";
};

void on_error(png_structp png, png_const_charp msg) {
  auto* st = static_cast<PngState*>(png_get_error_ptr(png));
  std::snprintf(st->message, sizeof st->message, "%s", msg ? msg : "unknown libpng error");
  std::longjmp(st->jmp, 1);
}

void on_warning(png_structp, png_const_charp) {
  // Warnings (e.g. a bad CRC in an ancillary chunk, which libpng then skips) do not affect the
  // pixels; a library must not print them.
}

// Reading: (1) create the structs, (2) read the header and set the transforms, then the caller
// allocates the pixels, (3) decode them. Each returns false with st->message set on error.
struct PngHeader {
  png_uint_32 width = 0, height = 0;
  int channels = 0;  // after the transforms, alpha included
  size_t rowbytes = 0;
};

bool create_read_phase(PngState* st) {
  if (setjmp(st->jmp)) return false;
  st->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, st, on_error, on_warning);
  if (!st->png) {
    std::snprintf(st->message, sizeof st->message, "cannot create libpng read struct");
    return false;
  }
  st->info = png_create_info_struct(st->png);
  if (!st->info) {
    std::snprintf(st->message, sizeof st->message, "cannot create libpng info struct");
    return false;
  }
  return true;
}

bool read_header_phase(PngState* st, std::FILE* fp, PngHeader* h) {
  if (setjmp(st->jmp)) return false;
  png_init_io(st->png, fp);
  png_set_sig_bytes(st->png, 8);  // the caller has read and checked the signature
  png_read_info(st->png, st->info);
  const int color = png_get_color_type(st->png, st->info);
  const int depth = png_get_bit_depth(st->png, st->info);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(st->png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(st->png);
  if (png_get_valid(st->png, st->info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(st->png);
  if (depth == 16) png_set_scale_16(st->png);
  png_set_interlace_handling(st->png);
  png_read_update_info(st->png, st->info);
  h->width = png_get_image_width(st->png, st->info);
  h->height = png_get_image_height(st->png, st->info);
  h->channels = png_get_channels(st->png, st->info);
  h->rowbytes = png_get_rowbytes(st->png, st->info);
  return true;
}

bool read_pixels_phase(PngState* st, png_bytep* rows) {
  if (setjmp(st->jmp)) return false;
  png_read_image(st->png, rows);
  png_read_end(st->png, nullptr);  // reads trailing chunks, so their CRC errors are seen too
  return true;
}

// Writing: one phase; the caller owns the row pointers.
bool write_phase(PngState* st, std::FILE* fp, int width, int height, int channels,
                 png_bytep* rows) {
  if (setjmp(st->jmp)) return false;
  st->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, st, on_error, on_warning);
  if (!st->png) {
    std::snprintf(st->message, sizeof st->message, "cannot create libpng write struct");
    return false;
  }
  st->info = png_create_info_struct(st->png);
  if (!st->info) {
    std::snprintf(st->message, sizeof st->message, "cannot create libpng info struct");
    return false;
  }
  png_init_io(st->png, fp);
  png_set_IHDR(st->png, st->info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height),
               8, channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(st->png, st->info);
  png_write_image(st->png, rows);
  png_write_end(st->png, nullptr);
  return true;
}

struct FileCloser {
  std::FILE* fp;
  ~FileCloser() {
    if (fp) std::fclose(fp);
  }
};

struct ReadStructs {
  PngState* st;
  ~ReadStructs() {
    if (st->png) png_destroy_read_struct(&st->png, st->info ? &st->info : nullptr, nullptr);
  }
};

struct WriteStructs {
  PngState* st;
  ~WriteStructs() {
    if (st->png) png_destroy_write_struct(&st->png, st->info ? &st->info : nullptr);
  }
};

// Images beyond this many bytes are refused rather than allocated (a corrupt header can claim
// up to 2^31 x 2^31 pixels).
constexpr uint64_t kMaxPixelBytes = uint64_t{1} << 31;

}  // namespace

void write_png(const std::string& path, const uint8_t* pixels, int width, int height,
               int channels) {
  if (width < 1 || height < 1 || (channels != 1 && channels != 3))
    throw std::invalid_argument(path + ": cannot write a PNG of " + std::to_string(width) + "x" +
                                std::to_string(height) + " pixels with " +
                                std::to_string(channels) + " channels (need size >= 1, 1 or 3 " +
                                "channels)");
  std::vector<png_bytep> rows(static_cast<size_t>(height));
  const size_t stride = static_cast<size_t>(width) * static_cast<size_t>(channels);
  for (int y = 0; y < height; ++y)
    rows[static_cast<size_t>(y)] = const_cast<png_bytep>(pixels + stride * static_cast<size_t>(y));

  std::FILE* fp = std::fopen(path.c_str(), "wb");
  if (!fp) throw std::runtime_error(path + ": cannot create PNG file: " + std::strerror(errno));
  PngState st;
  bool ok = false;
  {  // fp is closed below, by hand, because its close error matters

    WriteStructs structs{&st};
    ok = write_phase(&st, fp, width, height, channels, rows.data());
  }
  const bool write_error = std::ferror(fp) != 0;
  const bool close_error = std::fclose(fp) != 0;
  if (!ok || write_error || close_error) {
    std::remove(path.c_str());
    throw std::runtime_error(path + ": writing PNG failed: " +
                             (ok ? std::string(std::strerror(errno)) : std::string(st.message)));
  }
}

Image read_png(const std::string& path) {
  std::FILE* fp = std::fopen(path.c_str(), "rb");
  if (!fp) throw std::runtime_error(path + ": cannot open PNG file: " + std::strerror(errno));
  FileCloser closer{fp};
  png_byte sig[8] = {0};
  if (std::fread(sig, 1, 8, fp) != 8 || png_sig_cmp(sig, 0, 8) != 0)
    throw std::runtime_error(path + ": not a PNG file (bad signature)");

  PngState st;
  ReadStructs structs{&st};
  PngHeader h;
  if (!create_read_phase(&st) || !read_header_phase(&st, fp, &h))
    throw std::runtime_error(path + ": corrupt PNG header: " + st.message);
  const bool alpha = h.channels == 2 || h.channels == 4;
  const int color_channels = alpha ? h.channels - 1 : h.channels;
  if (color_channels != 1 && color_channels != 3)
    throw std::runtime_error(path + ": unexpected PNG layout of " + std::to_string(h.channels) +
                             " channels after conversion");
  if (uint64_t{h.height} * h.rowbytes > kMaxPixelBytes)
    throw std::runtime_error(path + ": PNG of " + std::to_string(h.width) + "x" +
                             std::to_string(h.height) + " pixels is too large (over 2 GiB)");

  std::vector<uint8_t> raw(h.rowbytes * h.height);
  std::vector<png_bytep> rows(h.height);
  for (size_t y = 0; y < h.height; ++y) rows[y] = raw.data() + y * h.rowbytes;
  if (!read_pixels_phase(&st, rows.data()))
    throw std::runtime_error(path + ": corrupt PNG data: " + st.message);

  Image img;
  img.width = static_cast<int>(h.width);
  img.height = static_cast<int>(h.height);
  img.channels = color_channels;
  if (!alpha) {
    img.pixels = std::move(raw);
    return img;
  }
  // Composite onto black: c * a / 255, rounded.
  const size_t npix = size_t{h.width} * h.height;
  img.pixels.resize(npix * static_cast<size_t>(color_channels));
  for (size_t y = 0; y < h.height; ++y) {
    const uint8_t* src = raw.data() + y * h.rowbytes;
    uint8_t* dst = img.pixels.data() + y * h.width * static_cast<size_t>(color_channels);
    for (size_t x = 0; x < h.width; ++x) {
      const unsigned a = src[x * h.channels + color_channels];
      for (int c = 0; c < color_channels; ++c)
        dst[x * color_channels + c] =
            static_cast<uint8_t>((src[x * h.channels + c] * a + 127) / 255);
    }
  }
  return img;
}

}  // namespace distvae
