#pragma once

#include <nghttp2/nghttp2.h>

#include <cstddef>

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

void* allocate(size_t n);
void release(void* p, size_t n) noexcept;
/// False in sanitizer builds (every call is malloc/free).
bool enabled();
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

/// Base of the per-request objects: class-level new/delete on the pool. The sized delete gets
/// the most-derived size through a virtual destructor.
struct Pooled {
  static void* operator new(size_t n) { return pool::allocate(n); }
  static void operator delete(void* p, size_t n) noexcept { pool::release(p, n); }
};

}  // namespace tether::proxy
