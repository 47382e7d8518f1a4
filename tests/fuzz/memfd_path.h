// A fuzz input as a file path: the readers under test take paths, so each input is written to an
// anonymous in-memory file (memfd) and handed over as /proc/self/fd/N. Nothing touches the disk.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace distvae::fuzz {

class MemFile {
 public:
  MemFile() : fd_(memfd_create("distvae-fuzz", 0)) {
    if (fd_ < 0) std::abort();  // the harness cannot run at all without it
  }
  ~MemFile() { close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;

  // Replaces the file's contents with data[0, size) and returns a path that opens it.
  std::string hold(const uint8_t* data, size_t size) {
    if (ftruncate(fd_, 0) != 0) std::abort();
    size_t done = 0;
    while (done < size) {
      const ssize_t n = pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) std::abort();
      done += static_cast<size_t>(n);
    }
    return "/proc/self/fd/" + std::to_string(fd_);
  }

 private:
  int fd_;
};

}  // namespace distvae::fuzz
