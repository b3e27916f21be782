// spsc-ring.h — a bounded lock-free single-producer/single-consumer ring of trivially copyable
// values. One thread calls tryPush, one other thread calls tryPop; no locks, two atomics.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace diocp {

template <class T>
class SpscRing {
 public:
  /** `capacity` is rounded up to a power of two. */
  explicit SpscRing(size_t capacity) {
    size_t n = 1;
    while (n < capacity) n <<= 1;
    slots_.resize(n);
    mask_ = n - 1;
  }

  bool tryPush(const T& v) {
    size_t h = head_.load(std::memory_order_relaxed);
    if (h - tail_.load(std::memory_order_acquire) > mask_) return false;
    slots_[h & mask_] = v;
    head_.store(h + 1, std::memory_order_release);
    return true;
  }

  /** Consumer side: whether tryPop would find something (a snapshot). */
  bool empty() const { return tail_.load(std::memory_order_relaxed) == head_.load(std::memory_order_seq_cst); }

  bool tryPop(T& out) {
    size_t t = tail_.load(std::memory_order_relaxed);
    if (t == head_.load(std::memory_order_acquire)) return false;
    out = slots_[t & mask_];
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }

 private:
  std::vector<T> slots_;
  size_t mask_;
  alignas(64) std::atomic<size_t> head_{0};
  alignas(64) std::atomic<size_t> tail_{0};
};

}  // namespace diocp
