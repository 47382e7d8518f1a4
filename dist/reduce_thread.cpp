// The communication thread: pop a bucket, all-reduce it (blocking), mark it done, repeat.
#include "dist/reduce_thread.h"

#include <stdexcept>

namespace distvae {

class ReduceThread::TaskRequest final : public Request {
 public:
  TaskRequest(ReduceThread& owner, std::shared_ptr<Task> t) : owner_(owner), task_(std::move(t)) {}
  ~TaskRequest() override {
    std::unique_lock<std::mutex> lock(owner_.mu_);
    owner_.cv_.wait(lock, [&] { return task_->done; });  // the thread must not outlive the data
  }
  bool test() override {
    std::lock_guard<std::mutex> lock(owner_.mu_);
    return task_->done;
  }
  void wait() override {
    std::unique_lock<std::mutex> lock(owner_.mu_);
    owner_.cv_.wait(lock, [&] { return task_->done; });
    if (!task_->error.empty()) throw std::runtime_error(task_->error);
  }

 private:
  ReduceThread& owner_;
  std::shared_ptr<Task> task_;
};

ReduceThread::ReduceThread(int world_size) : size_(world_size) {
  // Collectives of two threads must not share a communicator: the thread gets its own.
  if (MPI_Comm_dup(MPI_COMM_WORLD, &comm_) != MPI_SUCCESS)
    throw std::runtime_error("MPI_Comm_dup failed for the gradient all-reduce thread");
  thread_ = std::thread([this] { run(); });
}

ReduceThread::~ReduceThread() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  MPI_Comm_free(&comm_);
}

std::unique_ptr<Request> ReduceThread::submit(float* data, size_t n, ReduceOp op) {
  auto t = std::make_shared<Task>();
  t->data = data, t->n = n, t->op = op;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(t);
  }
  cv_.notify_all();
  return std::make_unique<TaskRequest>(*this, std::move(t));
}

void ReduceThread::run() {
  for (;;) {
    std::shared_ptr<Task> t;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop requested and nothing left
      t = queue_.front();
      queue_.pop_front();
    }
    std::string error;
    const int rc = MPI_Allreduce(MPI_IN_PLACE, t->data, int(t->n), MPI_FLOAT, MPI_SUM, comm_);
    if (rc != MPI_SUCCESS) {
      error = "MPI_Allreduce of a gradient bucket failed (code " + std::to_string(rc) + ")";
    } else if (t->op == ReduceOp::avg) {
      const float inv = 1.0f / float(size_);
      for (size_t i = 0; i < t->n; ++i) t->data[i] *= inv;
    }
    bool drained;
    {
      std::lock_guard<std::mutex> lock(mu_);
      t->done = true;
      t->error = std::move(error);
      drained = queue_.empty();
    }
    // Waking the waiter after every bucket costs a context switch each (it usually shares the
    // core); it waits for the whole queue anyway, so wake it when the queue has drained.
    if (drained) cv_.notify_all();
  }
}

}  // namespace distvae
