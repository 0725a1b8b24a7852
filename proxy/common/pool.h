#pragma once

#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <string>

namespace tether::proxy {

/// Per-thread free lists for the small blocks every request makes and drops: streams, filters
/// and nghttp2's stream and frame records. glibc's tcache keeps 7 blocks of a size per thread,
/// so with a hundred streams in flight most of these fell through to the arena (a tenth of a
/// worker's CPU behind an h2 front end). A released block goes back on the list of its size
/// class, up to a cap of bytes per class, the rest to free(): a worker keeps at most what one
/// burst used. Lists are thread-local (no lock); a block may be released on another thread
/// than the one that took it. Sanitizer builds go straight to malloc, so ASan still sees each
/// block's lifetime.
namespace pool {

/// Blocks above this size go straight to malloc.
inline constexpr size_t kMaxPooled = 2048;
/// Free bytes one thread keeps per size class.
inline constexpr size_t kMaxFreeBytesPerClass = 128 * 1024;

/// False in sanitizer builds (every call is malloc/free).
constexpr bool enabled() {
#if defined(__SANITIZE_ADDRESS__)
  return false;
#else
  return true;
#endif
}

namespace detail {

inline constexpr size_t kGrain = 16;
inline constexpr size_t kClasses = kMaxPooled / kGrain;

struct FreeBlock {
  FreeBlock* next;
};

/// One thread's lists. Trivially destructible and constant-initialized, so the inline paths
/// below reach it without a TLS wrapper call; a separate thread-local frees what it holds
/// at thread exit.
struct Lists {
  FreeBlock* head[kClasses];
  size_t freeBytes[kClasses];
  bool open;    // blocks may be kept: set at the thread's first release...
  bool closed;  // ... and cleared for good at its exit
};
extern thread_local constinit Lists tLists;

constexpr size_t classOf(size_t n) { return n == 0 ? 0 : (n - 1) / kGrain; }

void* allocateSlow(size_t n);
void releaseSlow(void* p, size_t n) noexcept;

}  // namespace detail

/// A block of at least `n` bytes, from this thread's list when it has one.
inline void* allocate(size_t n) {
  if (enabled() && n <= kMaxPooled) {
    size_t c = detail::classOf(n);
    if (detail::FreeBlock* b = detail::tLists.head[c]) {
      detail::tLists.head[c] = b->next;
      detail::tLists.freeBytes[c] -= (c + 1) * detail::kGrain;
      return b;
    }
  }
  return detail::allocateSlow(n);
}

/// Gives back a block of `n` bytes (the size it was allocated with).
inline void release(void* p, size_t n) noexcept {
  if (enabled() && p && n <= kMaxPooled && detail::tLists.open) {
    size_t c = detail::classOf(n);
    size_t size = (c + 1) * detail::kGrain;
    if (detail::tLists.freeBytes[c] + size <= kMaxFreeBytesPerClass) {
      auto* b = static_cast<detail::FreeBlock*>(p);
      b->next = detail::tLists.head[c];
      detail::tLists.head[c] = b;
      detail::tLists.freeBytes[c] += size;
      return;
    }
  }
  detail::releaseSlow(p, n);
}
/// nghttp2's allocator on these lists (nullptr, nghttp2's default, when not enabled()).
nghttp2_mem* nghttp2Allocator();

}  // namespace pool

/// A standard allocator on the pool, for the containers every request fills (header lists,
/// filter chains).
template <typename T>
struct PoolAllocator {
  using value_type = T;
  PoolAllocator() = default;
  template <typename U>
  PoolAllocator(const PoolAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(pool::allocate(n * sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { pool::release(p, n * sizeof(T)); }
  template <typename U>
  bool operator==(const PoolAllocator<U>&) const {
    return true;
  }
};

/// A string on the pool: header names and values, small bodies in flight.
using PooledString = std::basic_string<char, std::char_traits<char>, PoolAllocator<char>>;

/// Base of the per-request objects: class-level new/delete on the pool. The sized delete gets
/// the most-derived size through a virtual destructor.
struct Pooled {
  static void* operator new(size_t n) { return pool::allocate(n); }
  static void operator delete(void* p, size_t n) noexcept { pool::release(p, n); }
};

}  // namespace tether::proxy
