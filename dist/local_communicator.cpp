// The single-rank communicator: every collective is the identity (avg over one rank).
#include <cstdlib>

#include "dist/communicator.h"

namespace distvae {

namespace {

class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce(float*, size_t, ReduceOp) override {}
  void allreduce(double*, size_t, ReduceOp) override {}
  uint64_t iallreduce(float*, size_t, ReduceOp) override { return next_++; }
  bool test(uint64_t) override { return true; }
  void wait(uint64_t) override {}
  void broadcast(void*, size_t, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::exit(code); }

 private:
  uint64_t next_ = 0;
};

}  // namespace

std::unique_ptr<Communicator> make_local_communicator() {
  return std::make_unique<LocalCommunicator>();
}

}  // namespace distvae
