// One flat buffer of parameter values and one of gradients per network, with named slices and
// contiguous all-reduce buckets. Layers hold offsets into it; optimizer, all-reduce, broadcast and
// checkpoint all work on the flat spans.
#pragma once

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/bucket.h"
#include "core/tensor.h"

namespace distvae {

struct ParamSlice {
  std::string name;  // "<network>.<layer index>.<weight|bias>"
  size_t offset = 0;
  size_t size = 0;
  Shape shape;
};

template <class T>
class ParamStore {
 public:
  explicit ParamStore(Backend<T>& backend) : backend_(&backend) {}
  ParamStore(const ParamStore&) = delete;
  ParamStore& operator=(const ParamStore&) = delete;
  ~ParamStore() {
    backend_->release(values_);
    backend_->release(grads_);
  }

  // Declares a parameter tensor; returns its slice index. Only before allocate().
  size_t add(std::string name, Shape shape) {
    if (values_) throw std::logic_error("ParamStore::add after allocate");
    ParamSlice s{std::move(name), size_, size_t(shape.numel()), shape};
    size_ += s.size;
    slices_.push_back(std::move(s));
    return slices_.size() - 1;
  }
  void allocate() {
    values_ = backend_->alloc(size_);
    grads_ = backend_->alloc(size_);
  }

  size_t size() const { return size_; }
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
  std::vector<ParamSlice> slices_;
  size_t size_ = 0;
  T* values_ = nullptr;
  T* grads_ = nullptr;
};

}  // namespace distvae
