#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tether::proxy {

/// Per-key state for a protection (a rate-limit bucket, a concurrency counter), bounded:
/// at most `maxKeys` keys, in 16 shards each with a mutex held only for the lookup. When a
/// shard is full, its least recently used entry is replaced if `evictable` says it holds
/// nothing worth keeping; otherwise find() returns nullptr and the caller uses its shared
/// overflow state (counted), so random keys cannot grow memory.
template <class T>
class KeyTable {
 public:
  using Make = std::function<std::shared_ptr<T>(std::string_view key)>;
  using Evictable = std::function<bool(const T&, int64_t nowNs)>;

  KeyTable(size_t maxKeys, Make make, Evictable evictable)
      : maxPerShard_(std::max<size_t>(1, maxKeys / kShards)),
        make_(std::move(make)),
        evictable_(std::move(evictable)) {}

  std::shared_ptr<T> find(std::string_view key, int64_t nowNs) {
    Shard& shard = shards_[std::hash<std::string_view>{}(key) % kShards];
    std::lock_guard<std::mutex> lock(shard.mu);
    if (auto it = shard.index.find(key); it != shard.index.end()) {
      shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
      return it->second->second;
    }
    if (shard.lru.size() >= maxPerShard_) {
      auto& last = shard.lru.back();
      if (!evictable_(*last.second, nowNs)) {
        overflowed_.fetch_add(1, std::memory_order_relaxed);
        return nullptr;
      }
      shard.index.erase(last.first);
      shard.lru.pop_back();
    }
    shard.lru.emplace_front(std::string(key), make_(key));
    shard.index.emplace(shard.lru.front().first, shard.lru.begin());
    return shard.lru.front().second;
  }

  size_t size() const {
    size_t n = 0;
    for (const auto& s : shards_) {
      std::lock_guard<std::mutex> lock(s.mu);
      n += s.lru.size();
    }
    return n;
  }
  uint64_t overflowed() const { return overflowed_.load(std::memory_order_relaxed); }
  /// Calls f(key, value) for every entry, one shard locked at a time (for metrics).
  template <class F>
  void forEach(F f) const {
    for (const auto& s : shards_) {
      std::lock_guard<std::mutex> lock(s.mu);
      for (const auto& [key, value] : s.lru) f(key, *value);
    }
  }

 private:
  using Entry = std::pair<std::string, std::shared_ptr<T>>;
  struct Shard {
    mutable std::mutex mu;
    std::list<Entry> lru;  // most recent first
    std::unordered_map<std::string_view, typename std::list<Entry>::iterator> index;
  };
  static constexpr size_t kShards = 16;
  Shard shards_[kShards];
  size_t maxPerShard_;
  Make make_;
  Evictable evictable_;
  std::atomic<uint64_t> overflowed_{0};
};

}  // namespace tether::proxy
