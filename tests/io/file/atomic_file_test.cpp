// replace_file and move_into_place: the file is whole or unchanged, and no PATH.tmp is left.
#include "io/file/atomic_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace distvae {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

fs::path fresh_dir(const char* name) {
  const fs::path d = fs::path(DISTVAE_BINARY_DIR) / "test-tmp" / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

TEST(AtomicFile, ReplacesTheFileWholeAndLeavesNoTemporary) {
  const fs::path d = fresh_dir("atomic_replace");
  const std::string path = (d / "a.json").string();
  replace_file(path, "first\n");
  EXPECT_EQ(slurp(path), "first\n");
  const std::string big(3 << 20, 'x');  // several write() calls' worth
  replace_file(path, big);
  EXPECT_EQ(slurp(path), big);
  EXPECT_FALSE(fs::exists(temporary_path(path)));
  EXPECT_EQ(std::distance(fs::directory_iterator(d), fs::directory_iterator()), 1);
}

TEST(AtomicFile, AFailedRenameRemovesTheTemporaryAndKeepsWhatWasThere) {
  const fs::path d = fresh_dir("atomic_rename_fails");
  const fs::path target = d / "taken";
  fs::create_directories(target / "inside");  // rename(2) cannot put a file over a non-empty dir
  try {
    replace_file(target.string(), "text");
    FAIL() << "replace_file over a directory succeeded";
  } catch (const FileWriteError& e) {
    EXPECT_NE(e.error, 0);
    EXPECT_NE(std::string(e.what()).find(target.string()), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(temporary_path(target.string())));
  EXPECT_TRUE(fs::is_directory(target / "inside"));
}

TEST(AtomicFile, AFileThatCannotBeCreatedSaysWhy) {
  const fs::path d = fresh_dir("atomic_no_dir");
  try {
    replace_file((d / "missing" / "a.txt").string(), "text");
    FAIL() << "replace_file into a missing directory succeeded";
  } catch (const FileWriteError& e) {
    EXPECT_EQ(e.error, ENOENT);
    EXPECT_EQ(e.written, 0u);
  }
}

TEST(AtomicFile, AFullDiskLeavesNothingBehind) {
  // /dev/full: every write() fails with ENOSPC, as on a full disk; replace_file writes beside the
  // path, so point it at a directory where PATH.tmp is a link to /dev/full.
  const fs::path d = fresh_dir("atomic_full");
  const std::string path = (d / "a.bin").string();
  fs::create_symlink("/dev/full", temporary_path(path));
  try {
    replace_file(path, std::string(4096, 'x'));
    FAIL() << "replace_file onto /dev/full succeeded";
  } catch (const FileWriteError& e) {
    EXPECT_EQ(e.error, ENOSPC) << e.what();
  }
  EXPECT_FALSE(fs::exists(fs::symlink_status(temporary_path(path))));
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace distvae
