#include "proxy/common/pool.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace tether::proxy::pool {

namespace detail {

thread_local constinit Lists tLists = {};

namespace {

/// Empties this thread's lists when it exits and closes them, so blocks released later
/// (by thread-exit or static destructors) go straight to free().
struct Reaper {
  ~Reaper() {
    tLists.open = false;
    tLists.closed = true;
    for (FreeBlock*& h : tLists.head) {
      while (h) std::free(std::exchange(h, h->next));
    }
  }
};

}  // namespace

void* allocateSlow(size_t n) {
  // A block of the class size, so any thread's list can take it back.
  if (enabled() && n <= kMaxPooled) n = (classOf(n) + 1) * kGrain;
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  return p;
}

void releaseSlow(void* p, size_t n) noexcept {
  if (!p) return;
  if (enabled() && n <= kMaxPooled && !tLists.open && !tLists.closed) {
    // This thread's first release: the reaper is constructed (and its exit registered),
    // then the lists open.
    static thread_local Reaper reaper;
    tLists.open = true;
    release(p, n);
    return;
  }
  std::free(p);
}

}  // namespace detail

using detail::classOf;

namespace {

// nghttp2 frees without a size: each block starts with a header holding it.
constexpr size_t kHeader = alignof(std::max_align_t);

void* nghttp2Malloc(size_t size, void*) {
  if (size > SIZE_MAX - kHeader) return nullptr;
  void* raw;
  try {
    raw = allocate(size + kHeader);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
  *static_cast<size_t*>(raw) = size;
  return static_cast<char*>(raw) + kHeader;
}

size_t blockSize(void* ptr) {
  return *reinterpret_cast<size_t*>(static_cast<char*>(ptr) - kHeader);
}

void nghttp2Free(void* ptr, void*) {
  if (ptr) release(static_cast<char*>(ptr) - kHeader, blockSize(ptr) + kHeader);
}

void* nghttp2Calloc(size_t count, size_t size, void* data) {
  if (size && count > SIZE_MAX / size) return nullptr;
  void* p = nghttp2Malloc(count * size, data);
  if (p) std::memset(p, 0, count * size);
  return p;
}

void* nghttp2Realloc(void* ptr, size_t size, void* data) {
  if (!ptr) return nghttp2Malloc(size, data);
  size_t old = blockSize(ptr);
  if (size <= old && classOf(size + kHeader) == classOf(old + kHeader)) {
    *reinterpret_cast<size_t*>(static_cast<char*>(ptr) - kHeader) = size;
    return ptr;
  }
  void* p = nghttp2Malloc(size, data);
  if (!p) return nullptr;  // the old block stays valid, as with realloc
  std::memcpy(p, ptr, old < size ? old : size);
  nghttp2Free(ptr, data);
  return p;
}

nghttp2_mem gNghttp2Mem = {nullptr, nghttp2Malloc, nghttp2Free, nghttp2Calloc, nghttp2Realloc};

}  // namespace

nghttp2_mem* nghttp2Allocator() { return enabled() ? &gNghttp2Mem : nullptr; }

}  // namespace tether::proxy::pool
