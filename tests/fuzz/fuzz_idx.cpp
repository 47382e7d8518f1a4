// libFuzzer target: io/convert/idx (read_idx) on arbitrary bytes, plain or gzip. Every input must
// either parse into an array whose size matches its dims or throw std::runtime_error; anything else
// (a crash, a sanitizer report, another exception type, a leak) is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

#include "io/convert/idx.h"
#include "tests/fuzz/memfd_path.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static distvae::fuzz::MemFile file;
  const std::string path = file.hold(data, size);
  for (int rank : {1, 3}) {  // labels and images, the two layouts distvae reads
    try {
      const distvae::IdxArray a = distvae::read_idx(path, rank);
      size_t n = 1;
      for (uint32_t d : a.dims) n *= d;
      if (a.dims.size() != static_cast<size_t>(rank) || a.data.size() != n) std::abort();
    } catch (const std::runtime_error&) {
      // The documented way to reject a malformed file.
    }
  }
  return 0;
}
