#include "proxy/pool.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace tether::proxy::pool {

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kEnabled = false;
#else
constexpr bool kEnabled = true;
#endif

constexpr size_t kGrain = 16;
constexpr size_t kClasses = kMaxPooled / kGrain;

struct FreeBlock {
  FreeBlock* next;
};

struct Lists {
  FreeBlock* head[kClasses] = {};
  size_t freeBytes[kClasses] = {};

  ~Lists();
};

// Trivially destructible, so it stays readable after `tLists` is gone: blocks released by
// thread-exit or static destructors then go straight to free().
thread_local bool tListsGone = false;
thread_local Lists tLists;

Lists::~Lists() {
  for (FreeBlock*& h : head) {
    while (h) std::free(std::exchange(h, h->next));
  }
  tListsGone = true;
}

size_t classOf(size_t n) { return n == 0 ? 0 : (n - 1) / kGrain; }

}  // namespace

bool enabled() { return kEnabled; }

void* allocate(size_t n) {
  if (kEnabled && n <= kMaxPooled && !tListsGone) {
    size_t c = classOf(n);
    if (FreeBlock* b = tLists.head[c]) {
      tLists.head[c] = b->next;
      tLists.freeBytes[c] -= (c + 1) * kGrain;
      return b;
    }
    n = (c + 1) * kGrain;  // a block of the class size, so any list can take it back
  }
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  return p;
}

void release(void* p, size_t n) noexcept {
  if (!p) return;
  if (kEnabled && n <= kMaxPooled && !tListsGone) {
    size_t c = classOf(n);
    size_t size = (c + 1) * kGrain;
    if (tLists.freeBytes[c] + size <= kMaxFreeBytesPerClass) {
      auto* b = static_cast<FreeBlock*>(p);
      b->next = tLists.head[c];
      tLists.head[c] = b;
      tLists.freeBytes[c] += size;
      return;
    }
  }
  std::free(p);
}

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

nghttp2_mem* nghttp2Allocator() { return kEnabled ? &gNghttp2Mem : nullptr; }

}  // namespace tether::proxy::pool
