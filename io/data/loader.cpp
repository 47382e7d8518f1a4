// The prefetching data loader: reader/decoder thread, chunk cache and ring of ready batches.
#include "io/data/loader.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <utility>

namespace distvae {
namespace {

void check_options(const LoaderOptions& o) {
  auto bad = [](const std::string& what) { throw std::runtime_error("loader: " + what); };
  if (o.world < 1 || o.rank < 0 || o.rank >= o.world)
    bad("rank " + std::to_string(o.rank) + " is outside [0, world size " + std::to_string(o.world) +
        ")");
  if (o.batch < 1) bad("batch must be at least 1, got " + std::to_string(o.batch));
  if (o.window_chunks < 0)
    bad("window_chunks must be 0 (all chunks) or more, got " + std::to_string(o.window_chunks));
  if (o.ring_batches < 1)
    bad("ring_batches must be at least 1, got " + std::to_string(o.ring_batches));
  if (o.threads < 1 || o.threads > 256)
    bad("threads must be 1..256, got " + std::to_string(o.threads));
  if (o.floats_per_image < 0) bad("floats_per_image must be 0 (H * W * C) or more");
}

}  // namespace

Loader::Loader(std::vector<std::string> paths, LoaderOptions options, DecodeFn decode,
               BatchAllocator allocator)
    : paths_(std::move(paths)),
      opt_(options),
      decode_(std::move(decode)),
      allocator_(std::move(allocator)) {
  check_options(opt_);
  if (!decode_) throw std::runtime_error("loader: no decode function given");
  if (!allocator_.alloc || !allocator_.free) {
    allocator_.alloc = [](size_t n) { return new float[n]; };
    allocator_.free = [](float* p) { delete[] p; };
  }
  thread_ = std::thread([this] { run(); });
  {
    std::unique_lock<std::mutex> lk(mu_);
    cv_done_.wait(lk, [&] { return opened_; });
    if (error_) {
      std::exception_ptr e = error_;
      lk.unlock();
      thread_.join();  // the thread returns after a failed open
      std::rethrow_exception(e);
    }
  }
  // The thread is idle until start_epoch; ring buffers are allocated here, on the caller's
  // thread (a pinned-memory allocator may need the caller's device context).
  ring_.resize(static_cast<size_t>(opt_.ring_batches));
  try {
    for (Slot& s : ring_) {
      s.data = allocator_.alloc(static_cast<size_t>(opt_.batch * floats_per_image_));
      if (!s.data) throw std::runtime_error("loader: the batch allocator returned null");
      s.index.assign(static_cast<size_t>(opt_.batch), -1);
      if (opt_.decode_on_consumer) {
        s.images.assign(static_cast<size_t>(opt_.batch), nullptr);
        if (!opt_.preload) s.bytes.resize(static_cast<size_t>(opt_.batch * image_bytes_));
      }
    }
  } catch (...) {
    shutdown();
    throw;
  }
}

Loader::~Loader() {
  shutdown();
}

void Loader::shutdown() noexcept {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_work_.notify_all();
  cv_done_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (Slot& s : ring_)
    if (s.data) allocator_.free(s.data), s.data = nullptr;
}

LoaderStats Loader::stats() const {
  LoaderStats st;
  st.read_chunk_calls = read_calls_.load();
  st.bytes_read = bytes_read_.load();
  st.stored_bytes_read = stored_bytes_.load();
  st.peak_cached_chunks = peak_cached_.load();
  return st;
}

void Loader::start_epoch(int epoch) {
  // Plan first: a bad plan throws before anything changes.
  RankPlan plan = plan_epoch(info_, opt_.seed, epoch, opt_.rank, opt_.world, opt_.batch, window_);
  {  // cancel an unfinished epoch and wait until the thread is idle
    std::unique_lock<std::mutex> lk(mu_);
    cancel_ = true;
    cv_work_.notify_all();
    cv_done_.wait(lk, [&] { return !busy_; });
  }
  // The thread is idle: the per-epoch tables may change.
  plan_ = std::move(plan);
  epoch_ = epoch;
  const size_t nchunks = plan_.chunks.size();
  std::vector<std::pair<int64_t, int32_t>> by_first(nchunks);  // (first image, plan chunk)
  for (size_t k = 0; k < nchunks; ++k)
    by_first[k] = {plan_.chunks[k].first, static_cast<int32_t>(k)};
  std::sort(by_first.begin(), by_first.end());
  pos_chunk_.resize(plan_.order.size());
  last_use_.assign(nchunks, -1);
  for (size_t p = 0; p < plan_.order.size(); ++p) {
    const int64_t g = plan_.order[p];
    auto it = std::upper_bound(by_first.begin(), by_first.end(),
                               std::make_pair(g, std::numeric_limits<int32_t>::max()));
    const int32_t k = std::prev(it)->second;  // the plan lists every chunk that supplies order
    pos_chunk_[p] = k;
    last_use_[k] = static_cast<int64_t>(p);
  }
  chunk_slot_.assign(nchunks, -1);
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (Slot& s : ring_) s.state = SlotState::free;
    produced_ = consumed_ = 0;
    error_ = nullptr;
    decode_error_ = nullptr;
    cancel_ = false;
    started_ = true;
    busy_ = true;
    ++gen_;
  }
  cv_work_.notify_all();
}

Loader::Batch Loader::next() {
  std::unique_lock<std::mutex> lk(mu_);
  if (!started_) throw std::logic_error("loader: next() before start_epoch()");
  if (consumed_ >= plan_.steps)
    throw std::logic_error("loader: next() past the last of the epoch's " +
                           std::to_string(plan_.steps) + " steps");
  if (decode_error_) std::rethrow_exception(decode_error_);  // failed for the epoch, as below
  const size_t s = static_cast<size_t>(consumed_ % opt_.ring_batches);
  Slot& slot = ring_[s];
  if (slot.state == SlotState::held)
    throw std::logic_error("loader: every ring slot is held; release() batches before next()");
  auto ready = [&] { return slot.state == SlotState::ready || error_ || !busy_; };
  // A posted hand-off runs even when the batch is ready, so the loader thread goes on reading.
  for (;;) {
    if (handoff_ == Handoff::posted) {
      run_handoff(lk);
      continue;
    }
    if (ready()) break;
    const auto t0 = std::chrono::steady_clock::now();
    cv_done_.wait(lk, [&] { return ready() || handoff_ == Handoff::posted; });
    wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  if (slot.state != SlotState::ready) {
    if (error_) std::rethrow_exception(error_);
    throw std::logic_error("loader: the loader thread stopped before producing batch " +
                           std::to_string(consumed_));
  }
  slot.state = SlotState::held;
  const int64_t b = consumed_++;
  if (opt_.decode_on_consumer) {
    lk.unlock();
    try {
      decode_slot(slot, b);
    } catch (...) {
      lk.lock();
      slot.state = SlotState::free;
      decode_error_ = std::current_exception();
      throw;
    }
  }
  return Batch{slot.data, slot.index.data(), opt_.batch, static_cast<int>(s)};
}

void Loader::run_handoff(std::unique_lock<std::mutex>& lk) {
  handoff_ = Handoff::running;
  const std::function<void(int64_t)>& fn = *handoff_fn_;
  const int64_t n = handoff_n_;
  lk.unlock();
  const auto t0 = std::chrono::steady_clock::now();
  std::exception_ptr err;
  try {
    opt_.decode_on_consumer(n, fn);
  } catch (...) {
    err = std::current_exception();
  }
  decode_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  lk.lock();
  handoff_error_ = err;
  handoff_ = Handoff::none;
  cv_work_.notify_all();
}

void Loader::decode_slot(Slot& slot, int64_t b) {
  constexpr int kPart = 16;  // images per task: several tasks per thread balance the load
  const int B = opt_.batch;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    opt_.decode_on_consumer((B + kPart - 1) / kPart, [&](int64_t t) {
      const int first = static_cast<int>(t) * kPart, n = std::min(kPart, B - first);
      decode_(slot.images.data() + first, slot.index.data() + first, n,
              slot.data + static_cast<size_t>(first) * static_cast<size_t>(floats_per_image_));
    });
  } catch (const std::exception& e) {
    throw decode_failure(b, e);
  }
  decode_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void Loader::release(const Batch& batch) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (batch.slot < 0 || batch.slot >= opt_.ring_batches ||
        ring_[static_cast<size_t>(batch.slot)].state != SlotState::held)
      throw std::logic_error("loader: release() of a batch that is not held");
    ring_[static_cast<size_t>(batch.slot)].state = SlotState::free;
  }
  cv_work_.notify_all();
}

// ---- the loader thread ----

void Loader::run() {
  try {
    Hdf5OpenOptions open;
    open.chunk_cache_bytes = 0;  // whole chunks are read once each: HDF5's cache would only grow
    dataset_ = std::make_unique<Hdf5Dataset>(paths_, open);
    info_ = first_images(dataset_->info(), opt_.max_images);
    image_bytes_ = info_.image_bytes();
    floats_per_image_ = opt_.floats_per_image > 0 ? opt_.floats_per_image : image_bytes_;
    int64_t chunks = 0;
    for (const ShardFileInfo& f : info_.files)
      max_chunk_images_ = std::max(max_chunk_images_, f.chunk_images), chunks += f.num_chunks;
    // 0 or more than there are: one window of all chunks, a full shuffle of the rank's images.
    window_ = static_cast<int>(
        opt_.window_chunks == 0 ? chunks : std::min<int64_t>(opt_.window_chunks, chunks));
    const size_t ib = static_cast<size_t>(image_bytes_), batch = static_cast<size_t>(opt_.batch);
    if (!opt_.preload) {
      const size_t W = static_cast<size_t>(window_);
      cache_.resize(W * static_cast<size_t>(max_chunk_images_) * ib);
      slot_chunk_.assign(W, -1);
      staging_.resize(batch * ib);
      raw_.resize(W);
      scratch_.resize(W);
      raw_mask_.assign(W, 0);
      load_free_.reserve(W);
      load_list_.reserve(W);
      load_decode_.reserve(W);
      for (size_t f = 0; f < info_.files.size(); ++f)
        decodable_.push_back(can_decode(dataset_->image_filters(f)));
      pool_ = std::make_unique<WorkerPool>(opt_.decode_on_consumer ? 0 : opt_.threads - 1);
    }
    ptrs_.assign(batch, nullptr);
    ptr_slot_.assign(batch, -1);
  } catch (...) {
    std::lock_guard<std::mutex> lk(mu_);
    error_ = std::current_exception();
    opened_ = true;
    cv_done_.notify_all();
    return;
  }
  std::unique_lock<std::mutex> lk(mu_);
  opened_ = true;
  cv_done_.notify_all();
  int64_t seen = 0;
  for (;;) {
    cv_work_.wait(lk, [&] { return stop_ || gen_ != seen; });
    if (stop_) return;
    seen = gen_;
    lk.unlock();
    std::exception_ptr err;
    try {
      produce_epoch();
    } catch (...) {
      err = std::current_exception();
    }
    lk.lock();
    if (err && !cancel_ && !stop_) error_ = err;
    busy_ = false;
    cv_done_.notify_all();
  }
}

bool Loader::cancelled() {
  std::lock_guard<std::mutex> lk(mu_);
  return stop_ || cancel_;
}

void Loader::produce_epoch() {
  if (opt_.preload && !preload_done_) {
    preload_all();
    if (!preload_done_) return;  // cancelled
  }
  std::fill(slot_chunk_.begin(), slot_chunk_.end(), -1);
  cached_ = 0;
  const int B = opt_.batch;
  for (int64_t b = 0; b < plan_.steps; ++b) {
    Slot& slot = ring_[static_cast<size_t>(b % opt_.ring_batches)];
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_work_.wait(lk, [&] { return stop_ || cancel_ || slot.state == SlotState::free; });
      if (stop_ || cancel_) return;
    }
    // The slot is free: the caller does not touch it until it is marked ready.
    for (int j = 0; j < B; ++j) {
      const int64_t pos = b * B + j;
      slot.index[static_cast<size_t>(j)] = plan_.order[static_cast<size_t>(pos)];
      ptrs_[static_cast<size_t>(j)] = image_ptr(pos, j);
    }
    if (opt_.decode_on_consumer) {  // next() decodes; the cache's slots are reused before
      const size_t ib = static_cast<size_t>(image_bytes_);
      for (size_t j = 0; j < static_cast<size_t>(B); ++j) {
        slot.images[j] = ptrs_[j];
        if (opt_.preload) continue;  // the preloaded copy stays
        std::memcpy(slot.bytes.data() + j * ib, ptrs_[j], ib);
        slot.images[j] = slot.bytes.data() + j * ib;
      }
    } else {
      try {
        decode_(ptrs_.data(), slot.index.data(), B, slot.data);  // out: (B, floats_per_image)
      } catch (const std::exception& e) {
        throw decode_failure(b, e);
      }
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      slot.state = SlotState::ready;
      ++produced_;
    }
    cv_done_.notify_all();
  }
}

void Loader::preload_all() {
  const size_t ib = static_cast<size_t>(image_bytes_);
  try {
    preloaded_.resize(static_cast<size_t>(info_.count) * ib);  // (count, H, W, C)
  } catch (const std::bad_alloc&) {
    throw std::runtime_error("out of memory holding the " + std::to_string(info_.count) +
                             " training images in memory (" +
                             std::to_string(static_cast<size_t>(info_.count) * ib / 1000000) +
                             " MB); set data.preload: off to stream them from disk instead");
  }
  for (const ChunkRef& c : all_chunks(info_)) {
    if (cancelled()) return;
    int64_t n = 0;
    try {
      n = dataset_->read_chunk(c.file, c.chunk,
                               preloaded_.data() + static_cast<size_t>(c.first) * ib);
    } catch (const std::exception& e) {
      fail_chunk(c, e);
    }
    read_calls_.fetch_add(1);
    bytes_read_.fetch_add(n * image_bytes_);
  }
  preload_done_ = true;
}

const uint8_t* Loader::image_ptr(int64_t pos, int j) {
  const size_t ib = static_cast<size_t>(image_bytes_);
  const int64_t g = plan_.order[static_cast<size_t>(pos)];
  if (opt_.preload) {
    ptr_slot_[static_cast<size_t>(j)] = -1;
    return preloaded_.data() + static_cast<size_t>(g) * ib;
  }
  const int32_t k = pos_chunk_[static_cast<size_t>(pos)];
  const ChunkRef& c = plan_.chunks[static_cast<size_t>(k)];
  if (chunk_slot_[static_cast<size_t>(k)] < 0) load_chunks(pos, j, k);
  const int32_t s = chunk_slot_[static_cast<size_t>(k)];
  ptr_slot_[static_cast<size_t>(j)] = s;
  return cache_.data() + (static_cast<size_t>(s) * static_cast<size_t>(max_chunk_images_) +
                          static_cast<size_t>(g - c.first)) *
                             ib;
}

void Loader::load_chunks(int64_t pos, int j, int32_t k) {
  const size_t ib = static_cast<size_t>(image_bytes_);
  const int32_t W = window_;
  const auto nchunks = static_cast<int32_t>(plan_.chunks.size());
  // Slots free at pos: empty, or holding a chunk with no use at or after pos.
  std::vector<int32_t>& free_slots = load_free_;
  free_slots.clear();
  for (int32_t t = 0; t < W; ++t) {
    const int64_t held = slot_chunk_[static_cast<size_t>(t)];
    if (held < 0 || last_use_[static_cast<size_t>(held)] < pos) free_slots.push_back(t);
  }
  if (free_slots.empty())
    throw std::logic_error("loader: more than window_chunks chunks are in use at once");
  // Chunk k, then the chunks of its window not read yet and still needed (each chunk is read
  // once per epoch, so "not in the cache and used at or after pos" means "not read yet").
  std::vector<std::pair<int32_t, int32_t>>& loads = load_list_;  // (plan chunk, slot)
  loads.clear();
  loads.emplace_back(k, free_slots[0]);
  for (int32_t c = k + 1; c < nchunks && c / W == k / W && loads.size() < free_slots.size(); ++c)
    if (chunk_slot_[static_cast<size_t>(c)] < 0 && last_use_[static_cast<size_t>(c)] >= pos)
      loads.emplace_back(c, free_slots[loads.size()]);

  for (const auto& [c, s] : loads) {
    const int64_t old = slot_chunk_[static_cast<size_t>(s)];
    if (old >= 0) {
      // Images of the batch being assembled that still point into the slot move to staging.
      for (int jj = 0; jj < j; ++jj)
        if (ptr_slot_[static_cast<size_t>(jj)] == s) {
          uint8_t* dst = staging_.data() + static_cast<size_t>(jj) * ib;
          std::memcpy(dst, ptrs_[static_cast<size_t>(jj)], ib);
          ptrs_[static_cast<size_t>(jj)] = dst;
          ptr_slot_[static_cast<size_t>(jj)] = -1;
        }
      chunk_slot_[static_cast<size_t>(old)] = -1;
      slot_chunk_[static_cast<size_t>(s)] = -1;
    } else {
      ++cached_;
      if (cached_ > peak_cached_.load()) peak_cached_.store(cached_);
    }
  }
  auto base = [&](int32_t s) {
    return cache_.data() + static_cast<size_t>(s) * static_cast<size_t>(max_chunk_images_) * ib;
  };
  // Reads on this thread (HDF5); chunks of decodable files are read as stored and decoded below.
  std::vector<size_t>& to_decode = load_decode_;
  to_decode.clear();
  for (size_t i = 0; i < loads.size(); ++i) {
    const auto [c, s] = loads[i];
    const ChunkRef& ref = plan_.chunks[static_cast<size_t>(c)];
    int64_t n = 0;
    try {
      if (decodable_[ref.file]) {
        n = dataset_->read_chunk_raw(ref.file, ref.chunk, raw_[static_cast<size_t>(s)],
                                     raw_mask_[static_cast<size_t>(s)]);
        stored_bytes_.fetch_add(static_cast<int64_t>(raw_[static_cast<size_t>(s)].size()));
        to_decode.push_back(i);
      } else {
        n = dataset_->read_chunk(ref.file, ref.chunk, base(s));  // base: (n, H, W, C)
      }
    } catch (const std::exception& e) {
      fail_chunk(ref, e);
    }
    read_calls_.fetch_add(1);
    bytes_read_.fetch_add(n * image_bytes_);
    if (n != ref.count)
      throw std::runtime_error("loader: chunk " + std::to_string(ref.chunk) + " of " +
                               info_.files[ref.file].path + " returned " + std::to_string(n) +
                               " images, expected " + std::to_string(ref.count));
  }
  // Decompression on the loader thread and the helpers, or on the caller.
  parallel_decode(static_cast<int64_t>(to_decode.size()), [&](int64_t t) {
    const auto [c, s] = loads[to_decode[static_cast<size_t>(t)]];
    const ChunkRef& ref = plan_.chunks[static_cast<size_t>(c)];
    const ShardFileInfo& fi = info_.files[ref.file];
    const std::vector<uint8_t>& raw = raw_[static_cast<size_t>(s)];
    // out: (chunk_images, H, W, C), the file's full chunk (its tail is padding in a last chunk)
    decode_chunk(dataset_->image_filters(ref.file), raw.data(), raw.size(),
                 raw_mask_[static_cast<size_t>(s)], 1, base(s),
                 static_cast<size_t>(fi.chunk_images) * ib, scratch_[static_cast<size_t>(s)],
                 chunk_context(ref));
  });
  for (const auto& [c, s] : loads) {
    slot_chunk_[static_cast<size_t>(s)] = c;
    chunk_slot_[static_cast<size_t>(c)] = s;
  }
}

std::string Loader::chunk_context(const ChunkRef& c) const {
  return "loader: reading chunk " + std::to_string(c.chunk) + " (images " +
         std::to_string(c.first) + ".." + std::to_string(c.first + c.count - 1) + ") of " +
         info_.files[c.file].path;
}

std::runtime_error Loader::decode_failure(int64_t b, const std::exception& e) const {
  const int B = opt_.batch;
  std::string files;
  for (int j = 0; j < B; ++j) {
    const size_t k = static_cast<size_t>(pos_chunk_[static_cast<size_t>(b * B + j)]);
    const std::string& path = info_.files[plan_.chunks[k].file].path;
    if (files.find(path) == std::string::npos) files += (files.empty() ? "" : ", ") + path;
  }
  return std::runtime_error("loader: decode failed on batch " + std::to_string(b) + " of epoch " +
                            std::to_string(epoch_) + " (images from " + files + "): " + e.what());
}

void Loader::parallel_decode(int64_t n, const std::function<void(int64_t)>& fn) {
  if (!opt_.decode_on_consumer) return pool_->parallel_for(n, fn);
  std::unique_lock<std::mutex> lk(mu_);
  handoff_fn_ = &fn, handoff_n_ = n, handoff_error_ = nullptr, handoff_ = Handoff::posted;
  cv_done_.notify_all();
  // A caller in start_epoch or the destructor is not in next(): take back what it did not run.
  cv_work_.wait(lk, [&] {
    return handoff_ == Handoff::none || (handoff_ == Handoff::posted && (stop_ || cancel_));
  });
  if (handoff_ == Handoff::posted) {
    handoff_ = Handoff::none;
    throw std::runtime_error("loader: epoch cancelled");  // dropped by run(): cancel_ or stop_
  }
  if (handoff_error_) std::rethrow_exception(std::exchange(handoff_error_, nullptr));
}

void Loader::fail_chunk(const ChunkRef& c, const std::exception& e) const {
  throw std::runtime_error(chunk_context(c) + ": " + e.what());
}

}  // namespace distvae
