#include "proxy/common/pool.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

using namespace tether::proxy;

TEST_CASE("the pool hands back released blocks of the same size class", "[pool]") {
  void* a = pool::allocate(40);
  std::memset(a, 0xab, 40);
  pool::release(a, 40);
  void* b = pool::allocate(48);  // 33..48 bytes share a class
  if (pool::enabled()) CHECK(b == a);
  pool::release(b, 48);
  // Blocks above the largest class come from malloc and go back to it.
  void* big = pool::allocate(pool::kMaxPooled + 1);
  std::memset(big, 1, pool::kMaxPooled + 1);
  pool::release(big, pool::kMaxPooled + 1);
  pool::release(nullptr, 16);
}

TEST_CASE("the pool keeps a bounded number of free bytes per class", "[pool]") {
  if (!pool::enabled()) return;
  const size_t size = 1024;
  std::vector<void*> blocks;
  for (size_t i = 0; i < 2 * pool::kMaxFreeBytesPerClass / size; ++i) {
    blocks.push_back(pool::allocate(size));
  }
  for (void* p : blocks) pool::release(p, size);
  // Only the first kMaxFreeBytesPerClass bytes were kept: allocating that many again reuses
  // each kept block once, and the next one is new memory.
  std::set<void*> previous(blocks.begin(), blocks.end());
  std::vector<void*> again;
  size_t kept = pool::kMaxFreeBytesPerClass / size;
  for (size_t i = 0; i < kept; ++i) {
    again.push_back(pool::allocate(size));
    CHECK(previous.count(again.back()) == 1);
  }
  std::set<void*> distinct(again.begin(), again.end());
  CHECK(distinct.size() == kept);
  for (void* p : again) pool::release(p, size);
}

TEST_CASE("a block may be released on another thread", "[pool]") {
  // Allocated here, released there: it joins the releasing thread's list, which serves it
  // next, and it stays a whole, writable block (ASan checks the writes in its build).
  auto* p = static_cast<unsigned char*>(pool::allocate(64));
  std::memset(p, 0x5a, 64);
  void* again = nullptr;
  std::thread([&] {
    pool::release(p, 64);
    again = pool::allocate(64);
    std::memset(again, 0xa5, 64);
    pool::release(again, 64);
  }).join();
  REQUIRE(again != nullptr);
  if (pool::enabled()) CHECK(again == p);
  // This thread's own allocations go on unaffected.
  auto* q = static_cast<unsigned char*>(pool::allocate(64));
  std::memset(q, 0x11, 64);
  CHECK(q[63] == 0x11);
  pool::release(q, 64);
}

TEST_CASE("nghttp2's allocator keeps contents across realloc and zeroes calloc", "[pool]") {
  nghttp2_mem* mem = pool::nghttp2Allocator();
  if (!pool::enabled()) {
    CHECK(mem == nullptr);
    return;
  }
  REQUIRE(mem != nullptr);
  auto* p = static_cast<char*>(mem->malloc(10, mem->mem_user_data));
  std::memcpy(p, "0123456789", 10);
  p = static_cast<char*>(mem->realloc(p, 5, mem->mem_user_data));  // shrink in place
  CHECK(std::memcmp(p, "01234", 5) == 0);
  p = static_cast<char*>(mem->realloc(p, 5000, mem->mem_user_data));  // beyond the classes
  CHECK(std::memcmp(p, "01234", 5) == 0);
  p = static_cast<char*>(mem->realloc(p, 100, mem->mem_user_data));  // back into one
  CHECK(std::memcmp(p, "01234", 5) == 0);
  mem->free(p, mem->mem_user_data);
  mem->free(nullptr, mem->mem_user_data);
  auto* z = static_cast<unsigned char*>(mem->calloc(7, 9, mem->mem_user_data));
  bool zero = true;
  for (int i = 0; i < 63; ++i) zero = zero && z[i] == 0;
  CHECK(zero);
  mem->free(z, mem->mem_user_data);
  CHECK(mem->calloc(SIZE_MAX / 2, 4, mem->mem_user_data) == nullptr);
  CHECK(mem->malloc(SIZE_MAX - 4, mem->mem_user_data) == nullptr);
}
