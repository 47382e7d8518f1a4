// Checkpoints: a round trip is exact; a file that cannot be read is told apart from a damaged one
// (a resume passes over the second, never the first); a failed write leaves no partial file.
#include "io/hdf5/checkpoint.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>

#include "io/hdf5/h5_util.h"
#include "tests/io/io_test_util.h"

namespace distvae {
namespace {

using testing::TempDir;

Checkpoint sample() {
  Checkpoint ck;
  ck.arrays["encoder.values"] = {1.5f, -2.25f, 3.0f, 1e-30f};
  ck.arrays["empty"] = {};
  ck.ints["step"] = 1234567890123;
  ck.strings["config"] = "model:\n  latent: 8\n";
  return ck;
}

TEST(Checkpoint, RoundTripIsExact) {
  TempDir dir;
  write_checkpoint(dir / "ck.h5", sample());
  const Checkpoint back = read_checkpoint(dir / "ck.h5");
  EXPECT_EQ(back.arrays, sample().arrays);
  Checkpoint want = sample();
  want.ints["format_version"] = kCheckpointFormat;  // every write records the format
  EXPECT_EQ(back.ints, want.ints);
  EXPECT_EQ(back.strings, sample().strings);
  EXPECT_FALSE(std::filesystem::exists(dir / "ck.h5.tmp"));
}

// The file's format_version replaced by v, or removed (v < 0), as another distvae would write it.
void set_format_version(const std::string& path, int64_t v) {
  H5Handle file(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
  ASSERT_GE(file.get(), 0);
  ASSERT_GE(H5Adelete(file.get(), "format_version"), 0);
  if (v >= 0) h5_write_int_attr(file.get(), "format_version", v, path);
}

TEST(Checkpoint, FormatOneWithoutAVersionIsRead) {
  TempDir dir;
  write_checkpoint(dir / "ck.h5", sample());
  set_format_version(dir / "ck.h5", -1);
  const Checkpoint back = read_checkpoint(dir / "ck.h5");
  EXPECT_EQ(back.arrays, sample().arrays);
  EXPECT_EQ(back.ints, sample().ints);
}

TEST(Checkpoint, NewerFormatIsRefusedSayingSo) {
  TempDir dir;
  write_checkpoint(dir / "ck.h5", sample());
  set_format_version(dir / "ck.h5", kCheckpointFormat + 1);
  try {
    read_checkpoint(dir / "ck.h5");
    FAIL() << "a newer format was read";
  } catch (const CheckpointTooNew& e) {
    const std::string want =
        "written by a newer distvae (checkpoint format " + std::to_string(kCheckpointFormat + 1) +
        "; this build reads formats 1 to " + std::to_string(kCheckpointFormat) + ")";
    EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, MissingFileIsUnreadableNotCorrupt) {
  TempDir dir;
  EXPECT_THROW(read_checkpoint(dir / "nothing.h5"), CheckpointUnreadable);
}

TEST(Checkpoint, TruncatedFileIsCorrupt) {
  TempDir dir;
  write_checkpoint(dir / "ck.h5", sample());
  std::filesystem::resize_file(dir / "ck.h5", std::filesystem::file_size(dir / "ck.h5") / 3);
  EXPECT_THROW(read_checkpoint(dir / "ck.h5"), CheckpointCorrupt);
}

TEST(Checkpoint, ChangedValueFailsItsChecksum) {
  TempDir dir;
  Checkpoint ck = sample();
  ck.arrays["encoder.values"] = std::vector<float>(1000, 0.5f);
  write_checkpoint(dir / "ck.h5", ck);
  // Find the array's bytes (0.5f = 00 00 00 3f) and change one value in place.
  std::fstream f(dir / "ck.h5", std::ios::in | std::ios::out | std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const size_t at = bytes.find(std::string("\0\0\0\x3f\0\0\0\x3f", 8));
  ASSERT_NE(at, std::string::npos);
  f.seekp(std::streamoff(at + 3));
  f.put('\x40');  // 0.5f -> 2.0f
  f.close();
  try {
    read_checkpoint(dir / "ck.h5");
    FAIL() << "a changed value was read back";
  } catch (const CheckpointCorrupt& e) {
    EXPECT_NE(std::string(e.what()).find("encoder.values: checksum mismatch"), std::string::npos)
        << e.what();
  }
}

// A write that fails half-way (a file size limit: write() returns EFBIG once the file is 64 KB)
// removes its temporary file and leaves the previous checkpoint as it was.
TEST(Checkpoint, FailedWriteRemovesItsPartialFile) {
  TempDir dir;
  write_checkpoint(dir / "old.h5", sample());
  Checkpoint big = sample();
  big.arrays["encoder.values"] = std::vector<float>(1 << 20, 0.25f);  // 4 MB
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = saved;
  small.rlim_cur = 64 * 1024;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string error;
  try {
    write_checkpoint(dir / "new.h5", big);
  } catch (const std::runtime_error& e) {
    error = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_NE(error.find("new.h5"), std::string::npos) << "no error naming the checkpoint: " << error;
  EXPECT_FALSE(std::filesystem::exists(dir / "new.h5"));
  EXPECT_FALSE(std::filesystem::exists(dir / "new.h5.tmp"));
  EXPECT_EQ(read_checkpoint(dir / "old.h5").arrays, sample().arrays);
}

}  // namespace
}  // namespace distvae
