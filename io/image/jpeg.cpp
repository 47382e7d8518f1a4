// Reading and writing 8-bit gray / RGB JPEG files (libjpeg-turbo through the libjpeg API).
//
// libjpeg reports fatal errors through error_exit, which must not return; ours records the
// message and longjmps back to the setjmp of the function that called into libjpeg. A longjmp
// skips destructors, so every function that calls setjmp (the *_phase functions) holds only plain
// data; the C++ objects (vectors, strings, guards) live in their callers.
#include "io/image/jpeg.h"

// jpeglib.h needs size_t and FILE declared before it.
#include <cstdio>
// clang-format off
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

#include <cerrno>
#include <csetjmp>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace distvae {
namespace {

// Shared with libjpeg's callbacks; plain data only. `err` must stay the first member: libjpeg
// hands callbacks the jpeg_error_mgr pointer, which we cast back to the whole state.
struct JpegState {
  jpeg_error_mgr err;
  std::jmp_buf jmp;
  char message[JMSG_LENGTH_MAX + 64] = "";
  bool corrupt_warning = false;
};

void on_error_exit(j_common_ptr cinfo) {
  auto* st = reinterpret_cast<JpegState*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, st->message);
  std::longjmp(st->jmp, 1);
}

// level -1: a warning about corrupt data (libjpeg goes on, filling in what is missing); other
// levels are trace messages. Nothing is printed.
void on_emit_message(j_common_ptr cinfo, int level) {
  auto* st = reinterpret_cast<JpegState*>(cinfo->err);
  // Extraneous bytes before a marker (common after some cameras' and editors' last block) lose
  // no pixel data: not counted as corruption.
  if (level < 0 && cinfo->err->msg_code != JWRN_EXTRANEOUS_DATA && !st->corrupt_warning) {
    st->corrupt_warning = true;
    (*cinfo->err->format_message)(cinfo, st->message);
  }
}

void init_errors(JpegState* st) {
  jpeg_std_error(&st->err);
  st->err.error_exit = on_error_exit;
  st->err.emit_message = on_emit_message;
}

struct JpegHeader {
  int width = 0, height = 0;    // output size, after DCT scaling
  int components = 0;           // output components: 1 (gray), 3 (RGB) or 4 (CMYK)
  bool adobe_inverted = false;  // CMYK stored inverted (Photoshop's convention)
};

// Reading: (1) header, scaling and start of decompression, then the caller allocates the
// pixels, (2) scanlines. Each returns false with st->message set on error.
bool header_phase(JpegState* st, jpeg_decompress_struct* cinfo, const uint8_t* data, size_t size,
                  int min_w, int min_h, JpegHeader* h) {
  if (setjmp(st->jmp)) return false;
  jpeg_create_decompress(cinfo);
  jpeg_mem_src(cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(cinfo, TRUE);
  switch (cinfo->jpeg_color_space) {
    case JCS_GRAYSCALE:
      cinfo->out_color_space = JCS_GRAYSCALE;
      break;
    case JCS_CMYK:
    case JCS_YCCK:
      cinfo->out_color_space = JCS_CMYK;
      h->adobe_inverted = cinfo->saw_Adobe_marker;
      break;
    default:
      cinfo->out_color_space = JCS_RGB;
  }
  if (min_w > 0 && min_h > 0) {
    const long w = static_cast<long>(cinfo->image_width),
               hh = static_cast<long>(cinfo->image_height);
    unsigned denom = 1;
    for (unsigned d : {8u, 4u, 2u}) {
      if ((w + d - 1) / d >= min_w && (hh + d - 1) / d >= min_h) {
        denom = d;
        break;
      }
    }
    cinfo->scale_num = 1;
    cinfo->scale_denom = denom;
  }
  cinfo->dct_method = JDCT_ISLOW;  // the accurate integer IDCT: the same pixels everywhere
  jpeg_start_decompress(cinfo);
  h->width = static_cast<int>(cinfo->output_width);
  h->height = static_cast<int>(cinfo->output_height);
  h->components = cinfo->output_components;
  return true;
}

bool scanline_phase(JpegState* st, jpeg_decompress_struct* cinfo, uint8_t* out, size_t stride) {
  if (setjmp(st->jmp)) return false;
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = out + stride * cinfo->output_scanline;
    jpeg_read_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_decompress(cinfo);
  return true;
}

bool write_phase(JpegState* st, jpeg_compress_struct* cinfo, std::FILE* fp, const uint8_t* pixels,
                 int width, int height, int channels, int quality) {
  if (setjmp(st->jmp)) return false;
  jpeg_create_compress(cinfo);
  jpeg_stdio_dest(cinfo, fp);
  cinfo->image_width = static_cast<JDIMENSION>(width);
  cinfo->image_height = static_cast<JDIMENSION>(height);
  cinfo->input_components = channels;
  cinfo->in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(cinfo);
  jpeg_set_quality(cinfo, quality, TRUE);
  jpeg_start_compress(cinfo, TRUE);
  const size_t stride = static_cast<size_t>(width) * static_cast<size_t>(channels);
  while (cinfo->next_scanline < cinfo->image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(pixels + stride * cinfo->next_scanline);
    jpeg_write_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_compress(cinfo);
  return true;
}

struct Decompressor {
  jpeg_decompress_struct* cinfo;
  ~Decompressor() { jpeg_destroy_decompress(cinfo); }
};

struct Compressor {
  jpeg_compress_struct* cinfo;
  ~Compressor() { jpeg_destroy_compress(cinfo); }
};

// Decoded images beyond this many bytes are refused rather than allocated.
constexpr uint64_t kMaxPixelBytes = uint64_t{1} << 31;

}  // namespace

bool looks_like_jpeg(const uint8_t* data, size_t size) {
  return size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;
}

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& path, int min_width,
                  int min_height) {
  if (!looks_like_jpeg(data, size))
    throw std::runtime_error(path + ": not a JPEG file (no FF D8 FF start-of-image marker)");
  JpegState st;
  init_errors(&st);
  jpeg_decompress_struct cinfo;
  std::memset(&cinfo, 0, sizeof cinfo);
  cinfo.err = &st.err;
  Decompressor guard{&cinfo};
  JpegHeader h;
  if (!header_phase(&st, &cinfo, data, size, min_width, min_height, &h))
    throw std::runtime_error(path + ": corrupt JPEG header: " + st.message);
  if (st.corrupt_warning) throw std::runtime_error(path + ": corrupt JPEG data: " + st.message);
  const size_t stride = static_cast<size_t>(h.width) * static_cast<size_t>(h.components);
  if (static_cast<uint64_t>(stride) * static_cast<uint64_t>(h.height) > kMaxPixelBytes)
    throw std::runtime_error(path + ": JPEG of " + std::to_string(h.width) + "x" +
                             std::to_string(h.height) + " pixels is too large (over 2 GiB)");
  std::vector<uint8_t> raw(stride * static_cast<size_t>(h.height));
  if (!scanline_phase(&st, &cinfo, raw.data(), stride))
    throw std::runtime_error(path + ": corrupt JPEG data: " + st.message);
  if (st.corrupt_warning) throw std::runtime_error(path + ": corrupt JPEG data: " + st.message);

  Image img;
  img.width = h.width;
  img.height = h.height;
  if (h.components != 4) {
    img.channels = h.components;
    img.pixels = std::move(raw);
    return img;
  }
  // CMYK to RGB: R = (255 - C) (255 - K) / 255 for plain CMYK; Adobe files store the inverted
  // values, so there R = C K / 255.
  img.channels = 3;
  const size_t npix = static_cast<size_t>(h.width) * static_cast<size_t>(h.height);
  img.pixels.resize(npix * 3);
  for (size_t i = 0; i < npix; ++i) {
    unsigned c[4];
    for (int k = 0; k < 4; ++k) c[k] = raw[4 * i + k];
    if (!h.adobe_inverted)
      for (unsigned& v : c) v = 255 - v;
    for (int k = 0; k < 3; ++k)
      img.pixels[3 * i + k] = static_cast<uint8_t>((c[k] * c[3] + 127) / 255);
  }
  return img;
}

Image read_jpeg(const std::string& path, int min_width, int min_height) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot open JPEG file: " + std::strerror(errno));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) throw std::runtime_error(path + ": cannot read JPEG file");
  return decode_jpeg(bytes.data(), bytes.size(), path, min_width, min_height);
}

void write_jpeg(const std::string& path, const uint8_t* pixels, int width, int height, int channels,
                int quality) {
  if (width < 1 || height < 1 || (channels != 1 && channels != 3) || quality < 1 || quality > 100)
    throw std::invalid_argument(path + ": cannot write a JPEG of " + std::to_string(width) + "x" +
                                std::to_string(height) + " pixels, " + std::to_string(channels) +
                                " channels, quality " + std::to_string(quality) +
                                " (need size >= 1, 1 or 3 channels, quality 1..100)");
  std::FILE* fp = std::fopen(path.c_str(), "wb");
  if (!fp) throw std::runtime_error(path + ": cannot create JPEG file: " + std::strerror(errno));
  JpegState st;
  init_errors(&st);
  jpeg_compress_struct cinfo;
  std::memset(&cinfo, 0, sizeof cinfo);
  cinfo.err = &st.err;
  bool ok = false;
  {
    Compressor guard{&cinfo};
    ok = write_phase(&st, &cinfo, fp, pixels, width, height, channels, quality);
  }
  const bool write_error = std::ferror(fp) != 0;
  const bool close_error = std::fclose(fp) != 0;
  if (!ok || write_error || close_error) {
    std::remove(path.c_str());
    throw std::runtime_error(path + ": writing JPEG failed: " +
                             (ok ? std::string(std::strerror(errno)) : std::string(st.message)));
  }
}

}  // namespace distvae
