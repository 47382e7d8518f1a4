// NCCL behind the Communicator interface (CUDA builds: DISTVAE_HAVE_NCCL, set by CMakeLists.txt);
// other builds get a factory that says NCCL is not built. Every NCCL and CUDA return code checked.
#include "dist/nccl_communicator.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

#ifndef DISTVAE_HAVE_NCCL
#define DISTVAE_HAVE_NCCL 0
#endif

#if DISTVAE_HAVE_NCCL
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <vector>

#include "dist/world.h"
#endif

namespace distvae {

#if !DISTVAE_HAVE_NCCL

bool nccl_built() {
  return false;
}

std::unique_ptr<Communicator> make_nccl_communicator(Communicator&) {
  throw std::runtime_error(
      "GPU run (backend cuda): this distvae was built without CUDA and NCCL; reconfigure with "
      "-DDISTVAE_CUDA=ON (README.md, GPUs)");
}

#else

namespace {

void check_cuda(cudaError_t rc, const char* call, const char* file, int line) {
  if (rc == cudaSuccess) return;
  throw std::runtime_error("CUDA error " + std::string(cudaGetErrorName(rc)) + ": " +
                           cudaGetErrorString(rc) + " in " + call + " (" + file + ":" +
                           std::to_string(line) + ")");
}

// NCCL's description of its last error (may be empty), for messages.
std::string last_error(ncclComm_t comm) {
  const char* last = ncclGetLastError(comm);
  return last && *last ? std::string(": ") + last : std::string();
}

void check_nccl(ncclResult_t rc, ncclComm_t comm, const char* call, const char* file, int line) {
  if (rc == ncclSuccess) return;
  const std::string detail = ncclGetErrorString(rc) + last_error(comm);
  throw std::runtime_error("NCCL error " + detail + " in " + call + " (" + file + ":" +
                           std::to_string(line) + ")");
}

#define CUDA_CHECK(call) check_cuda((call), #call, __FILE__, __LINE__)
#define NCCL_CHECK(call, comm) check_nccl((call), (comm), #call, __FILE__, __LINE__)

// The stream the CUDA backend computes on (core/backends/cuda/backend_cuda.h): the calling
// thread's.
const cudaStream_t kComputeStream = cudaStreamPerThread;

// This rank's GPU: local rank modulo the visible devices (one visible device per task under
// srun --gpus-per-task=1; all of the node's under mpirun).
int pick_device() {
  int count = 0;
  const cudaError_t rc = cudaGetDeviceCount(&count);
  if (rc != cudaSuccess || count == 0) {
    cudaGetLastError();
    throw std::runtime_error(
        "GPU run (backend cuda): no CUDA device (" +
        std::string(rc == cudaSuccess ? "none visible" : cudaGetErrorString(rc)) +
        "); start one rank per GPU on GPU nodes, or use backend dnnl");
  }
  const int device = discover_placement(0).local_rank % count;
  CUDA_CHECK(cudaSetDevice(device));
  return device;
}

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(Communicator& host) : host_(host), device_(pick_device()) {
    ncclUniqueId id{};
    if (host_.rank() == 0) NCCL_CHECK(ncclGetUniqueId(&id), nullptr);
    host_.broadcast(&id, sizeof id, 0);
    const ncclResult_t rc = ncclCommInitRank(&comm_, host_.size(), id, host_.rank());
    if (rc != ncclSuccess)
      throw std::runtime_error(
          "NCCL communicator: ncclCommInitRank failed on rank " + std::to_string(host_.rank()) +
          " (device " + std::to_string(device_) + "): " + ncclGetErrorString(rc) +
          last_error(nullptr) +
          " (each rank needs its own GPU: mpirun -np <GPUs>, or srun --gpus-per-task=1)");
    try {
      CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
      CUDA_CHECK(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));
      slots_.resize(kMaxInFlight);
      for (Slot& s : slots_) CUDA_CHECK(cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming));
    } catch (...) {
      release();  // no destructor runs for a constructor that throws
      throw;
    }
  }

  ~NcclCommunicator() override { release(); }

  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }

  void allreduce(float* data, size_t n, ReduceOp op) override {
    if (!on_device(data)) return host_.allreduce(data, n, op);
    reduce_on_stream(data, n, ncclFloat, op);
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void allreduce(double* data, size_t n, ReduceOp op) override {
    if (!on_device(data)) return host_.allreduce(data, n, op);
    reduce_on_stream(data, n, ncclDouble, op);
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  uint64_t iallreduce(float* data, size_t n, ReduceOp op) override {
    Slot& s = slots_[next_ % slots_.size()];
    if (s.active) throw std::logic_error("too many gradient reductions in flight");
    s.device = on_device(data);
    if (s.device) {
      reduce_on_stream(data, n, ncclFloat, op);
      CUDA_CHECK(cudaEventRecord(s.done, stream_));
    } else {
      s.host_ticket = host_.iallreduce(data, n, op);
    }
    s.active = true;  // only once started: a failed start leaves the slot free
    return next_++;
  }

  bool test(uint64_t t) override {
    Slot& s = slots_[t % slots_.size()];
    if (!s.active) return true;
    if (!s.device) {
      if (host_.test(s.host_ticket)) s.active = false;
      return !s.active;
    }
    const cudaError_t rc = cudaEventQuery(s.done);
    if (rc == cudaErrorNotReady) {
      check_async_error();
      return false;
    }
    CUDA_CHECK(rc);
    s.active = false;
    return true;
  }

  // Device reductions: the compute stream waits for the reduction's event; the host does not.
  void wait(uint64_t t) override {
    Slot& s = slots_[t % slots_.size()];
    if (!s.active) return;
    if (s.device) {
      CUDA_CHECK(cudaStreamWaitEvent(kComputeStream, s.done, 0));
      check_async_error();
    } else {
      host_.wait(s.host_ticket);
    }
    s.active = false;
  }

  void broadcast(void* data, size_t bytes, int root) override {
    if (!on_device(data)) return host_.broadcast(data, bytes, root);
    after_compute();
    NCCL_CHECK(ncclBroadcast(data, data, bytes, ncclChar, root, comm_, stream_), comm_);
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void barrier() override { host_.barrier(); }

  [[noreturn]] void abort(int code) override {
    ncclCommAbort(comm_);  // frees peers blocked in a collective with this rank
    comm_ = nullptr;
    host_.abort(code);
    std::abort();  // not reached: host_.abort does not return
  }

 private:
  struct Slot {
    cudaEvent_t done = nullptr;
    bool active = false, device = false;
    uint64_t host_ticket = 0;
  };

  // Frees what was created; errors are ignored (called from the destructor: they only leak).
  void release() noexcept {
    if (stream_) cudaStreamSynchronize(stream_);
    for (Slot& s : slots_)
      if (s.done) cudaEventDestroy(s.done);
    if (ready_) cudaEventDestroy(ready_);
    if (stream_) cudaStreamDestroy(stream_);
    if (comm_) ncclCommDestroy(comm_);
    slots_.clear();
    ready_ = nullptr, stream_ = nullptr, comm_ = nullptr;
  }

  // Device memory (or managed) goes through NCCL; anything else is host memory.
  static bool on_device(const void* p) {
    cudaPointerAttributes a{};
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
  }

  // The communication stream waits for everything enqueued so far on the compute stream.
  void after_compute() {
    CUDA_CHECK(cudaEventRecord(ready_, kComputeStream));
    CUDA_CHECK(cudaStreamWaitEvent(stream_, ready_, 0));
  }

  void reduce_on_stream(void* data, size_t n, ncclDataType_t type, ReduceOp op) {
    after_compute();
    NCCL_CHECK(
        ncclAllReduce(data, data, n, type, op == ReduceOp::avg ? ncclAvg : ncclSum, comm_, stream_),
        comm_);
  }

  // A peer's failure surfaces as an asynchronous NCCL error, not as a failed call.
  void check_async_error() {
    ncclResult_t async = ncclSuccess;
    NCCL_CHECK(ncclCommGetAsyncError(comm_, &async), comm_);
    NCCL_CHECK(async, comm_);
  }

  Communicator& host_;
  int device_ = 0;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ready_ = nullptr;
  std::vector<Slot> slots_;
  uint64_t next_ = 0;
};

}  // namespace

bool nccl_built() {
  return true;
}

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& host) {
  return std::make_unique<NcclCommunicator>(host);
}

#endif

}  // namespace distvae
