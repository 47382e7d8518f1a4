// Reading the launcher's environment: Open MPI's OMPI_COMM_WORLD_LOCAL_*, SLURM's, OpenMP's.
#include "dist/world.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

namespace distvae {

namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  return (end && *end == '\0' && x > 0 && x < 1 << 20) ? int(x) : fallback;
}

}  // namespace

LocalPlacement discover_placement(int config_threads) {
  LocalPlacement p;
  p.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", env_int("SLURM_LOCALID", 0));
  p.local_size = env_int("OMPI_COMM_WORLD_LOCAL_SIZE", env_int("SLURM_NTASKS_PER_NODE", 1));
  if (config_threads > 0) {
    p.threads = config_threads, p.threads_from = "train.threads";
  } else if (int s = env_int("SLURM_CPUS_PER_TASK", 0); s > 0) {
    p.threads = s, p.threads_from = "SLURM_CPUS_PER_TASK";
  } else if (int o = env_int("OMP_NUM_THREADS", 0); o > 0) {
    p.threads = o, p.threads_from = "OMP_NUM_THREADS";
  } else {
    const long cores = sysconf(_SC_NPROCESSORS_ONLN);
    p.threads = std::max(1, int(cores) / std::max(1, p.local_size));
    p.threads_from = "cores / ranks per node";
  }
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  cpu_set_t mask;
  const int allowed = sched_getaffinity(0, sizeof mask, &mask) == 0 ? CPU_COUNT(&mask) : 1;
  p.spare_cpu = allowed > p.threads && long(p.local_size) * p.threads < online;
  return p;
}

bool overlap_enabled(const std::string& setting, const LocalPlacement& p) {
  return setting == "true" || (setting == "auto" && p.spare_cpu);
}

bool decode_on_compute(const std::string& setting, const LocalPlacement& p) {
  return setting == "compute" || (setting == "auto" && !p.spare_cpu && p.threads > 1);
}

}  // namespace distvae
