#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/rules.h"
#include "proxy/common/key_table.h"

struct redisReply;

namespace tether::filters {

/// What a rate limiter says about one request.
struct RateDecision {
  bool allowed = true;
  int64_t waitNs = 0;        // leaky_bucket: admitted, but hold the request this long first
  int64_t retryAfterNs = 0;  // rejected: when the next request would pass
  int64_t remaining = 0;     // requests left in the current window / bucket (>= 0)
};

/// The state of one bucket (one key of one rule). Every algorithm runs on atomics with
/// compare-and-swap, so workers share a bucket without a lock; the sliding window, which
/// must remember each admitted request's time, takes a spinlock held for a few loads.
class RateBucket {
 public:
  explicit RateBucket(const config::RateLimitConfig& c);
  RateDecision acquire(int64_t nowNs);
  /// Loop time of the last use, for LRU eviction.
  int64_t lastUsed() const { return lastUsed_.load(std::memory_order_relaxed); }

 private:
  RateDecision tokenBucket(int64_t nowNs);
  RateDecision fixedWindow(int64_t nowNs);
  RateDecision slidingWindow(int64_t nowNs);
  RateDecision leakyBucket(int64_t nowNs);

  config::RateLimitAlgorithm algorithm_;
  int64_t periodNs_;
  int64_t intervalNs_;  // periodNs / limit: one request's share of the period
  int64_t limit_;
  int64_t burst_;
  int64_t maxQueueNs_;
  // token_bucket and leaky_bucket (GCRA): the theoretical arrival time of the next request.
  // fixed_window: window index (high 32 bits) and count (low 32 bits). Updated by
  // compare-and-swap, so it is exact across workers: no admission is lost or doubled.
  std::atomic<int64_t> state_{0};
  // sliding_window: the admission times of the last `limit` requests, a ring.
  std::vector<int64_t> ring_;
  size_t ringHead_ = 0;
  std::atomic_flag ringLock_ = ATOMIC_FLAG_INIT;
  std::atomic<int64_t> lastUsed_{0};  // relaxed: eviction order may be a little off
};

/// One RateLimit rule's state: a single bucket (key: none) or a bounded table of buckets by
/// key. The table holds at most maxKeys keys; a new key replaces the least recently used
/// one if that one has been idle for a whole period (its bucket would be full again anyway),
/// otherwise it shares one overflow bucket (counted), so random keys cannot grow memory.
/// Shared by every worker; created on the control loop and kept across reloads that do not
/// change the rule.
class RateLimiter {
 public:
  explicit RateLimiter(config::RateLimitConfig config);
  RateDecision acquire(std::string_view key, int64_t nowNs);
  const config::RateLimitConfig& config() const { return config_; }

  // mode: global. The counters live in Redis; these build the command and read its answer.
  /// The Lua script, Redis key and arguments for `key`.
  const char* globalScript() const;
  std::string globalKey(std::string_view key) const;
  std::vector<std::string> globalArgs() const;
  /// Reads the script's answer; false when it is not one (treat as Redis unavailable).
  static bool parseGlobalReply(const ::redisReply* reply, RateDecision& out);
  /// Redis unreachable or too slow: the per-process fallback limit decides, and is counted.
  RateDecision acquireFallback(std::string_view key, int64_t nowNs);
  uint64_t fallbacks() const { return fallbacks_.load(std::memory_order_relaxed); }
  uint64_t overflowed() const { return table_.overflowed(); }
  size_t keys() const { return table_.size(); }

 private:
  config::RateLimitConfig config_;
  RateBucket single_;    // key: none
  RateBucket overflow_;  // keys beyond maxKeys
  proxy::KeyTable<RateBucket> table_;
  std::unique_ptr<RateLimiter> fallback_;  // global mode: the local limit used without Redis
  std::atomic<uint64_t> fallbacks_{0};
};

}  // namespace tether::filters
