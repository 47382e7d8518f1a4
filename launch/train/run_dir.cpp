// Run directory bookkeeping: checkpoints under <run>/checkpoints, named to sort in training order.
#include "launch/train/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>

#include "core/hash.h"

namespace distvae {

namespace fs = std::filesystem;

namespace {

std::string host_name() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) return "unknown-host";
  return host;
}

std::string local_time(const char* format) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char text[64];
  std::strftime(text, sizeof text, format, &tm);
  return text;
}

}  // namespace

RunDirLock::RunDirLock(const std::string& dir) {
  const std::string path = (fs::path(dir) / ".lock").string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw std::runtime_error(path +
                             ": cannot open the run directory's lock: " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    std::ifstream in(path);
    std::string holder;
    std::getline(in, holder);
    ::close(fd_);
    fd_ = -1;
    if (error == EWOULDBLOCK)
      throw std::runtime_error(dir + " is in use by another distvae train (" +
                               (holder.empty() ? std::string("holder unknown") : holder) +
                               "); wait for it to finish, stop it, or choose another --run-dir");
    throw std::runtime_error(path + ": cannot lock the run directory: " + std::strerror(error));
  }
  const std::string me = "host " + host_name() + ", PID " + std::to_string(::getpid()) +
                         ", started " + local_time("%Y-%m-%d %H:%M:%S") + "\n";
  errno = 0;
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) != ssize_t(me.size())) {
    const std::string why = errno ? std::strerror(errno) : "short write";
    ::close(fd_);  // a constructor that throws runs no destructor: release the lock here
    fd_ = -1;
    throw std::runtime_error(path + ": cannot record the lock's holder: " + why);
  }
}

RunDirLock::~RunDirLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

std::string RunDirContents::describe() const {
  std::string s;
  if (!checkpoints.empty())
    s = std::to_string(checkpoints.size()) + " checkpoint(s) (newest " +
        fs::path(checkpoints.front()).filename().string() + ")";
  if (metrics) s += (s.empty() ? "" : " and ") + std::string("metrics.jsonl");
  return s;
}

RunDirContents inspect_run_dir(const std::string& dir) {
  RunDirContents c;
  c.checkpoints = list_checkpoints(dir);
  std::error_code ec;
  c.metrics = fs::file_size(fs::path(dir) / "metrics.jsonl", ec) > 0 && !ec;
  return c;
}

std::string move_run_aside(const std::string& dir) {
  const fs::path aside = fs::path(dir) / ("replaced-" + local_time("%Y%m%d-%H%M%S"));
  std::error_code ec;
  if (fs::exists(aside, ec))
    throw std::runtime_error(aside.string() + " already exists; try again in a second");
  fs::create_directory(aside, ec);
  if (ec) throw std::runtime_error(aside.string() + ": cannot create: " + ec.message());
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name == ".lock" || name.rfind("replaced-", 0) == 0) continue;
    fs::rename(e.path(), aside / name, ec);
    if (ec)
      throw std::runtime_error(e.path().string() + ": cannot move it to " + aside.string() + ": " +
                               ec.message());
  }
  return aside.string();
}

std::string new_run_id() {
  const auto now = std::chrono::system_clock::now().time_since_epoch().count();
  const uint64_t entropy = std::random_device{}();
  const pid_t pid = ::getpid();
  uint64_t h = fnv1a(host_name());
  h = fnv1a(&now, sizeof now, h);
  h = fnv1a(&pid, sizeof pid, h);
  h = fnv1a(&entropy, sizeof entropy, h);
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", (unsigned long long)h);
  return text;
}

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
