// Run directory bookkeeping: checkpoints under <run>/checkpoints, named to sort in training order.
#include "launch/train/run_dir.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

namespace distvae {

namespace fs = std::filesystem;

void prepare_run_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(fs::path(dir) / "checkpoints", ec);
  if (ec) throw std::runtime_error(dir + ": cannot create the run directory: " + ec.message());
  if (::access(dir.c_str(), W_OK) != 0)
    throw std::runtime_error(dir + ": the run directory is not writable");
}

std::string checkpoint_path(const std::string& dir, int epoch, int64_t step_in_epoch) {
  char name[64];
  if (step_in_epoch > 0)
    std::snprintf(name, sizeof name, "ckpt-%06d.s%09lld.h5", epoch, (long long)step_in_epoch);
  else
    std::snprintf(name, sizeof name, "ckpt-%06d.h5", epoch);
  return (fs::path(dir) / "checkpoints" / name).string();
}

std::vector<std::string> list_checkpoints(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(dir) / "checkpoints", ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("ckpt-", 0) == 0 && e.path().extension() == ".h5") out.push_back(e.path().string());
  }
  std::sort(out.rbegin(), out.rend());
  return out;
}

void prune_checkpoints(const std::string& dir, int keep) {
  const auto all = list_checkpoints(dir);
  for (size_t i = size_t(keep); i < all.size(); ++i) fs::remove(all[i]);
  // A *.tmp is a checkpoint whose writer died before the rename; it is never read.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(dir) / "checkpoints", ec))
    if (e.path().extension() == ".tmp") fs::remove(e.path(), ec);
}

}  // namespace distvae
