// What HMAC verification keeps between requests: the secrets read from their files (and
// re-read when they change), and the nonces already seen (replay protection).

#include <openssl/rand.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cstring>
#include <new>

#include "config/config.h"
#include "filters/auth/hmac.h"
#include "proxy/common/log.h"

namespace tether::filters::hmac {

bool SecretStore::read(const std::string& path, std::string& value, int64_t& mtime,
                       std::string& error) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    error = "cannot read secret file " + path + ": " + std::strerror(errno);
    return false;
  }
  if (!config::readFile(path, value)) {
    error = "cannot read secret file " + path;
    return false;
  }
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
  if (value.empty()) {
    error = "secret file " + path + " is empty";
    return false;
  }
  mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  return true;
}

const SecretStore::Slot* SecretStore::load(const std::string& path, std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = slots_.find(path); it != slots_.end()) return it->second.get();
  std::string value;
  int64_t mtime = 0;
  if (!read(path, value, mtime, error)) return nullptr;
  auto slot = std::make_unique<Slot>();
  slot->path_ = path;
  slot->mtime_ = mtime;
  slot->versions_.push_back(std::make_unique<HmacKey>(value));
  OPENSSL_cleanse(value.data(), value.size());
  slot->current_.store(slot->versions_.back().get(), std::memory_order_release);
  return slots_.emplace(path, std::move(slot)).first->second.get();
}

int SecretStore::reloadChanged() {
  std::lock_guard<std::mutex> lock(mu_);
  int changed = 0;
  for (auto& [path, slot] : slots_) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) continue;  // gone for now: keep the last secret
    int64_t mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    if (mtime == slot->mtime_) continue;
    std::string value, error;
    if (!read(path, value, mtime, error)) continue;  // empty or unreadable: keep the last
    slot->mtime_ = mtime;
    if (value == slot->get().secret()) continue;
    slot->versions_.push_back(std::make_unique<HmacKey>(value));
    OPENSSL_cleanse(value.data(), value.size());
    slot->current_.store(slot->versions_.back().get(), std::memory_order_release);
    // A reader holds a secret only within one synchronous check: a few versions suffice.
    while (slot->versions_.size() > 8) slot->versions_.pop_front();
    ++changed;
  }
  return changed;
}

NonceCache::NonceCache(size_t capacity) {
  size_t perShard = std::max<size_t>(1, capacity / kShards);
  // Twice the live entries, rounded up to a power of two: short probe sequences.
  size_t slots = 1;
  while (slots < perShard * 2) slots <<= 1;
  mask_ = slots - 1;
  mapBytes_ = kShards * slots * sizeof(Slot);
  // Zero-filled by the kernel: a free slot is all zeroes.
  map_ = mmap(nullptr, mapBytes_, PROT_READ | PROT_WRITE,
              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (map_ == MAP_FAILED) throw std::bad_alloc();
  madvise(map_, mapBytes_, MADV_HUGEPAGE);  // advice only: refused where THP is off
  for (size_t i = 0; i < kShards; ++i) shards_[i].slots = static_cast<Slot*>(map_) + i * slots;
  // The seed keeps callers from aiming nonces at each other's slots; it must be secret.
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&seed_), sizeof(seed_)) != 1) {
    proxy::fatal("hmac: the random generator failed");
  }
}

NonceCache::~NonceCache() { munmap(map_, mapBytes_); }

void NonceCache::prefetch(std::string_view nonce) const {
  uint64_t fp = fingerprintOf(nonce);
  __builtin_prefetch(&shards_[fp % kShards].slots[(fp >> 4) & mask_], 1);
}

uint64_t NonceCache::fingerprintOf(std::string_view nonce) const {
  // Keyed, so no one can aim nonces at each other's slots: HMAC would be overkill for 64
  // bits, a seeded FNV-1a followed by a 64-bit finalizer (splitmix) mixes well enough.
  uint64_t h = 0xcbf29ce484222325ull ^ seed_;
  for (unsigned char c : nonce) h = (h ^ c) * 0x100000001b3ull;
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h ? h : 1;  // 0 marks a free slot
}

NonceCache::Result NonceCache::add(std::string_view nonce, int64_t expiresAt, int64_t now) {
  uint64_t fp = fingerprintOf(nonce);
  Shard& s = shards_[fp % kShards];
  std::lock_guard<std::mutex> lock(s.mu);
  size_t reuse = SIZE_MAX;
  size_t i = (fp >> 4) & mask_;
  for (size_t probe = 0; probe < kMaxProbe; ++probe, i = (i + 1) & mask_) {
    uint64_t f = s.slots[i].fingerprint;
    bool expired = f != 0 && static_cast<int64_t>(s.slots[i].expiry) < now;
    if (f == fp && !expired) return Result::kReplayed;
    if (f == 0 || expired) {
      if (reuse == SIZE_MAX) reuse = i;
      if (f == 0) break;  // the end of this probe sequence: fp is not further on
    }
  }
  if (reuse == SIZE_MAX) return Result::kFull;
  if (s.slots[reuse].fingerprint == 0) ++s.used;
  s.slots[reuse] = Slot{fp, static_cast<uint32_t>(std::max<int64_t>(expiresAt, 0))};
  return Result::kAdded;
}

bool NonceCache::contains(std::string_view nonce, int64_t now) const {
  uint64_t fp = fingerprintOf(nonce);
  const Shard& s = shards_[fp % kShards];
  std::lock_guard<std::mutex> lock(s.mu);
  size_t i = (fp >> 4) & mask_;
  for (size_t probe = 0; probe < kMaxProbe; ++probe, i = (i + 1) & mask_) {
    uint64_t f = s.slots[i].fingerprint;
    if (f == 0) return false;
    if (f == fp && static_cast<int64_t>(s.slots[i].expiry) >= now) return true;
  }
  return false;
}

size_t NonceCache::size() const {
  size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    n += s.used;
  }
  return n;
}

}  // namespace tether::filters::hmac
