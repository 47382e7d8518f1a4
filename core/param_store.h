// One flat buffer of parameter values and one of gradients per network, with named slices and
// contiguous all-reduce buckets. Layers hold offsets into it; optimizer, all-reduce, broadcast and
// checkpoint all work on the flat spans. State that is saved but not trained (batch norm's
// running averages) sits after the trainable values, outside the gradients and the optimizer.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/bucket.h"
#include "core/tensor.h"

namespace distvae {

struct ParamSlice {
  std::string name;  // "<network>.<layer index>.<weight|bias|running_mean|running_var>"
  size_t offset = 0;
  size_t size = 0;
  Shape shape;
  bool trainable = true;
};

template <class T>
class ParamStore {
 public:
  explicit ParamStore(Backend<T>& backend) : backend_(&backend) {}
  ParamStore(const ParamStore&) = delete;
  ParamStore& operator=(const ParamStore&) = delete;
  ~ParamStore() {
    if (!external_values_) backend_->release(values_);
    if (!external_grads_) backend_->release(grads_);
  }

  // Declares a parameter tensor; returns its slice index. Only before allocate().
  size_t add(std::string name, Shape shape) { return declare(std::move(name), shape, true); }
  // Declares state that is saved and broadcast with the values but has no gradient.
  size_t add_state(std::string name, Shape shape) { return declare(std::move(name), shape, false); }
  void allocate() {
    for (ParamSlice& s : slices_)  // state after every trainable value
      if (!s.trainable) s.offset += size_;
    values_ = backend_->alloc(values_size());
    grads_ = backend_->alloc(size_);
  }

  // Moves the gradients into memory someone else provides (the node's shared memory, for the
  // all-reduce), size() elements, zeroed, host memory the backend can use. The caller's pointer
  // keeps it alive; so does this store.
  void adopt_grads(std::shared_ptr<T> buffer) {
    if (!external_grads_) backend_->release(grads_);
    external_grads_ = std::move(buffer);
    grads_ = external_grads_.get();
  }

  // Moves the values, trainable and state, into memory someone else provides (values_size()
  // elements, host memory the backend can use), copying them over.
  void adopt_values(std::shared_ptr<T> buffer) {
    backend_->copy(values_, buffer.get(), values_size());
    if (!external_values_) backend_->release(values_);
    external_values_ = std::move(buffer);
    values_ = external_values_.get();
  }

  // Trainable values: the length of the gradient buffer and of the optimizer's span.
  size_t size() const { return size_; }
  // Everything a checkpoint or the start-up broadcast carries: trainable values, then state.
  size_t values_size() const { return size_ + state_size_; }
  T* values() { return values_; }
  const T* values() const { return values_; }
  T* grads() { return grads_; }
  const T* grads() const { return grads_; }
  T* value(size_t slice) { return values_ + slices_[slice].offset; }
  T* grad(size_t slice) { return grads_ + slices_[slice].offset; }
  const std::vector<ParamSlice>& slices() const { return slices_; }
  void zero_grads() { backend_->fill(grads_, size_, T(0)); }

  // Buckets of at most max_bytes (at least one element), cut from the end of the buffer: the
  // last layers' gradients are ready first in backward, so bucket 0 covers the highest offsets.
  std::vector<Bucket> buckets(size_t max_bytes) const {
    std::vector<Bucket> out;
    const size_t per = std::max<size_t>(1, max_bytes / sizeof(T));
    for (size_t end = size_; end > 0;) {
      size_t begin = end > per ? end - per : 0;
      out.push_back({begin, end});
      end = begin;
    }
    return out;
  }

 private:
  Backend<T>* backend_;
  size_t declare(std::string name, Shape shape, bool trainable) {
    if (values_) throw std::logic_error("ParamStore::add after allocate");
    size_t& end = trainable ? size_ : state_size_;
    ParamSlice s{std::move(name), end, size_t(shape.numel()), shape, trainable};
    end += s.size;
    slices_.push_back(std::move(s));
    return slices_.size() - 1;
  }

  std::vector<ParamSlice> slices_;
  size_t size_ = 0;
  size_t state_size_ = 0;
  T* values_ = nullptr;
  T* grads_ = nullptr;
  std::shared_ptr<T> external_values_;  // set by adopt_values
  std::shared_ptr<T> external_grads_;   // set by adopt_grads
};

}  // namespace distvae
