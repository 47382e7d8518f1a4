// The heartbeat writer and the stall check.
#include "dist/watchdog.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

namespace distvae {

namespace fs = std::filesystem;

namespace {

std::string heartbeat_path(const std::string& dir, int rank) {
  return dir + "/rank-" + std::to_string(rank);
}

}  // namespace

Watchdog::Watchdog(std::string dir, int rank, int world, double timeout_seconds,
                   std::function<void(const std::string&)> on_hang)
    : dir_(std::move(dir)),
      rank_(rank),
      world_(world),
      timeout_(timeout_seconds),
      on_hang_(std::move(on_hang)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  thread_ = std::thread([this] { run(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  std::error_code ec;
  fs::remove(heartbeat_path(dir_, rank_), ec);
}

void Watchdog::run() {
  using Clock = std::chrono::steady_clock;
  // Per rank: the work count last read and when it last changed (this rank's own included).
  std::vector<int64_t> seen(size_t(world_), -1);
  std::vector<Clock::time_point> changed(size_t(world_), Clock::now());
  std::unique_lock<std::mutex> lock(mu_);
  auto write_heartbeat = [&](int64_t work) {  // its modification time says this rank is alive
    std::ofstream f(heartbeat_path(dir_, rank_), std::ios::trunc);
    f << work << "\n";
  };
  write_heartbeat(work_.load());
  while (!cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_; })) {
    const int64_t mine = work_.load(std::memory_order_relaxed);
    write_heartbeat(mine);
    const auto now = Clock::now();
    if (mine != seen[size_t(rank_)]) seen[size_t(rank_)] = mine, changed[size_t(rank_)] = now;
    const double stalled = std::chrono::duration<double>(now - changed[size_t(rank_)]).count();
    if (stalled < timeout_) continue;
    // This rank has waited `timeout` seconds: read everyone's heartbeat.
    std::string stale;
    bool anyone_progressing = false;
    const auto file_now = fs::file_time_type::clock::now();
    for (int r = 0; r < world_; ++r) {
      if (r == rank_) continue;
      std::error_code ec;
      const std::string path = heartbeat_path(dir_, r);
      const auto t = fs::last_write_time(path, ec);
      const double age = ec ? -1.0 : std::chrono::duration<double>(file_now - t).count();
      if (ec || age > timeout_ / 2) {
        char buf[96];
        if (ec)
          std::snprintf(buf, sizeof buf, "%srank %d (no heartbeat file)", stale.empty() ? "" : ", ",
                        r);
        else
          std::snprintf(buf, sizeof buf, "%srank %d (last heartbeat %.0f s ago)",
                        stale.empty() ? "" : ", ", r, age);
        stale += buf;
        continue;
      }
      int64_t work = -1;
      std::ifstream(path) >> work;
      if (work != seen[size_t(r)]) seen[size_t(r)] = work, changed[size_t(r)] = now;
      if (std::chrono::duration<double>(now - changed[size_t(r)]).count() < timeout_)
        anyone_progressing = true;  // e.g. rank 0 validating while the others wait for it
    }
    if (stale.empty() && anyone_progressing) continue;
    char head[160];
    std::snprintf(head, sizeof head, "rank %d made no progress for %.0f s; ", rank_, stalled);
    on_hang_(std::string(head) +
             (stale.empty() ? "every rank is alive but none progresses (deadlock?)"
                            : "hung or dead: " + stale) +
             "; aborting the job (train.hang_timeout)");
    return;
  }
}

}  // namespace distvae
