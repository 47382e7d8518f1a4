// MPI_COMM_WORLD behind the Communicator interface; every return code checked.
#include "dist/mpi_communicator.h"

#include <mpi.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "dist/reduce_thread.h"
#include "dist/shm_reduce.h"

namespace distvae {

namespace {

void check(int rc, const char* call, const char* file, int line) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw std::runtime_error(std::string(call) + " failed: " + std::string(msg, size_t(len)) + " (" +
                           file + ":" + std::to_string(line) + ")");
}
#define MPI_CHECK(call) check((call), #call, __FILE__, __LINE__)

template <class T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<float>() {
  return MPI_FLOAT;
}
template <>
MPI_Datatype mpi_type<double>() {
  return MPI_DOUBLE;
}

template <class T>
void scale(T* data, size_t n, int size) {
  const T inv = T(1) / T(size);
  for (size_t i = 0; i < n; ++i) data[i] *= inv;
}

// Non-blocking reductions through MPI_Iallreduce, for MPI libraries without THREAD_MULTIPLE:
// a fixed ring of requests indexed by ticket.
class NonblockingReductions {
 public:
  explicit NonblockingReductions(int size) : size_(size), slots_(Communicator::kMaxInFlight) {}
  uint64_t start(float* data, size_t n, ReduceOp op) {
    Slot& s = slots_[next_ % slots_.size()];
    if (s.active) throw std::logic_error("too many gradient reductions in flight");
    s = Slot{data, n, op, MPI_REQUEST_NULL, true};
    MPI_CHECK(
        MPI_Iallreduce(MPI_IN_PLACE, data, int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &s.req));
    return next_++;
  }
  bool test(uint64_t t) {
    Slot& s = slots_[t % slots_.size()];
    if (!s.active) return true;
    int flag = 0;
    MPI_CHECK(MPI_Test(&s.req, &flag, MPI_STATUS_IGNORE));
    if (flag) complete(s);
    return flag != 0;
  }
  void wait(uint64_t t) {
    Slot& s = slots_[t % slots_.size()];
    if (!s.active) return;
    MPI_CHECK(MPI_Wait(&s.req, MPI_STATUS_IGNORE));
    complete(s);
  }

 private:
  struct Slot {
    float* data = nullptr;
    size_t n = 0;
    ReduceOp op = ReduceOp::sum;
    MPI_Request req = MPI_REQUEST_NULL;
    bool active = false;
  };
  void complete(Slot& s) {
    s.active = false;
    if (s.op == ReduceOp::avg) scale(s.data, s.n, size_);
  }
  int size_;
  std::vector<Slot> slots_;
  uint64_t next_ = 0;
};

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size_));
    int level = 0;
    MPI_CHECK(MPI_Query_thread(&level));
    if (size_ > 1) shm_ = std::make_unique<NodeSharedReduce>();
    if (size_ > 1 && level >= MPI_THREAD_MULTIPLE)
      reducer_ = std::make_unique<ReduceThread>(size_, shm_.get());
    nonblocking_ = NonblockingReductions(size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allreduce(float* data, size_t n, ReduceOp op) override {
    if (!(shm_ && shm_->reduce(data, n, op))) reduce(data, n, op);
  }
  void allreduce(double* data, size_t n, ReduceOp op) override { reduce(data, n, op); }
  uint64_t iallreduce(float* data, size_t n, ReduceOp op) override {
    return reducer_ ? reducer_->submit(data, n, op) : nonblocking_.start(data, n, op);
  }
  bool test(uint64_t t) override { return reducer_ ? reducer_->done(t) : nonblocking_.test(t); }
  void wait(uint64_t t) override { reducer_ ? reducer_->wait(t) : nonblocking_.wait(t); }
  std::shared_ptr<float> alloc_reducible(size_t n) override {
    return shm_ ? shm_->alloc(n) : nullptr;
  }
  std::pair<size_t, size_t> owned_slice(size_t n) const override {
    return shm_ && shm_->enabled() ? shm_->owned_slice(n) : std::pair<size_t, size_t>{0, n};
  }
  void reduce_scatter(float* data, size_t n, ReduceOp op) override {
    if (!(shm_ && shm_->reduce(data, n, op, false))) reduce(data, n, op);
  }
  void all_gather(float* data, size_t n) override {
    if (shm_ && shm_->enabled()) shm_->all_gather(data, n);
  }
  void broadcast(void* data, size_t bytes, int root) override {
    MPI_CHECK(MPI_Bcast(data, int(bytes), MPI_BYTE, root, MPI_COMM_WORLD));
  }
  void barrier() override { MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD)); }
  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::abort();
  }

 private:
  template <class T>
  void reduce(T* data, size_t n, ReduceOp op) {
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, data, int(n), mpi_type<T>(), MPI_SUM, MPI_COMM_WORLD));
    if (op == ReduceOp::avg) scale(data, n, size_);
  }
  int rank_ = 0, size_ = 1;
  std::unique_ptr<NodeSharedReduce> shm_;  // before reducer_, which uses it
  std::unique_ptr<ReduceThread> reducer_;  // with THREAD_MULTIPLE
  NonblockingReductions nonblocking_{1};   // without it (sized in the constructor)
};

}  // namespace

int requested_thread_level() {
  const char* v = std::getenv("DISTVAE_MPI_THREAD_LEVEL");
  return v && std::string(v) == "funneled" ? MPI_THREAD_FUNNELED : MPI_THREAD_MULTIPLE;
}

MpiSession::MpiSession(int* argc, char*** argv) {
  int initialized = 0;
  MPI_CHECK(MPI_Initialized(&initialized));
  if (initialized) return;
  int provided = 0;
  // MULTIPLE lets the gradient all-reduce thread call MPI (dist/reduce_thread.h); FUNNELED is
  // the minimum (the loader thread never calls MPI), with non-blocking collectives for overlap.
  MPI_CHECK(MPI_Init_thread(argc, argv, requested_thread_level(), &provided));
  if (provided < MPI_THREAD_FUNNELED)
    throw std::runtime_error("MPI provides thread level " + std::to_string(provided) +
                             "; distvae needs at least MPI_THREAD_FUNNELED");
  // Errors come back as codes, so they become exceptions with context instead of aborts.
  MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  owns_ = true;
}

MpiSession::~MpiSession() {
  if (!owns_) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

std::string mpi_library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  if (MPI_Get_library_version(text, &len) != MPI_SUCCESS) return "unknown";
  // Open MPI: "Open MPI v4.1.4, package: ..., ident: ..."; keep the first part.
  const std::string s(text, size_t(len));
  return s.substr(0, s.find_first_of(",\n"));
}

std::unique_ptr<Communicator> make_mpi_communicator() {
  return std::make_unique<MpiCommunicator>();
}

}  // namespace distvae
