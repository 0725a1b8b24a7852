#include "filters/rate_limit/rate_limiter.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <functional>

namespace tether::filters {

RateBucket::RateBucket(const config::RateLimitConfig& c)
    : algorithm_(c.algorithm),
      periodNs_(std::chrono::duration_cast<std::chrono::nanoseconds>(c.per).count()),
      intervalNs_(std::max<int64_t>(1, periodNs_ / std::max<int64_t>(1, c.limit))),
      limit_(std::max<int64_t>(1, c.limit)),
      burst_(std::max<int64_t>(1, c.burst)),
      maxQueueNs_(std::chrono::duration_cast<std::chrono::nanoseconds>(c.maxQueueTime).count()) {
  if (algorithm_ == config::RateLimitAlgorithm::kSlidingWindow) {
    ring_.assign(static_cast<size_t>(limit_), INT64_MIN / 2);
  }
}

RateDecision RateBucket::acquire(int64_t nowNs) {
  lastUsed_.store(nowNs, std::memory_order_relaxed);
  switch (algorithm_) {
    case config::RateLimitAlgorithm::kTokenBucket:
      return tokenBucket(nowNs);
    case config::RateLimitAlgorithm::kFixedWindow:
      return fixedWindow(nowNs);
    case config::RateLimitAlgorithm::kSlidingWindow:
      return slidingWindow(nowNs);
    case config::RateLimitAlgorithm::kLeakyBucket:
      return leakyBucket(nowNs);
  }
  return {};
}

// The token bucket as GCRA: a bucket of `burst` tokens refilled one per interval is the same
// as a theoretical arrival time (TAT) that each request pushes one interval later, allowed
// while the TAT stays within burst intervals of now. One integer, one CAS.
RateDecision RateBucket::tokenBucket(int64_t nowNs) {
  const int64_t tau = burst_ * intervalNs_;
  int64_t tat = state_.load(std::memory_order_relaxed);
  while (true) {
    int64_t next = std::max(tat, nowNs) + intervalNs_;
    if (next - nowNs > tau) {
      return RateDecision{false, 0, next - nowNs - tau, 0};
    }
    if (state_.compare_exchange_weak(tat, next, std::memory_order_relaxed)) {
      return RateDecision{true, 0, 0, (tau - (next - nowNs)) / intervalNs_};
    }
  }
}

// Pacing: each admitted request takes the next free slot, one interval after the previous;
// a request whose slot is more than maxQueueTime away is rejected instead of queued.
RateDecision RateBucket::leakyBucket(int64_t nowNs) {
  int64_t next = state_.load(std::memory_order_relaxed);
  while (true) {
    int64_t slot = std::max(next, nowNs);
    int64_t wait = slot - nowNs;
    if (wait > maxQueueNs_) return RateDecision{false, 0, wait - maxQueueNs_, 0};
    if (state_.compare_exchange_weak(next, slot + intervalNs_, std::memory_order_relaxed)) {
      return RateDecision{true, wait, 0, (maxQueueNs_ - wait) / intervalNs_};
    }
  }
}

RateDecision RateBucket::fixedWindow(int64_t nowNs) {
  const int64_t window = (nowNs / periodNs_) & 0xffffffff;
  int64_t s = state_.load(std::memory_order_relaxed);
  while (true) {
    int64_t count = (s >> 32) == window ? (s & 0xffffffff) : 0;
    if (count >= limit_) {
      return RateDecision{false, 0, (nowNs / periodNs_ + 1) * periodNs_ - nowNs, 0};
    }
    if (state_.compare_exchange_weak(s, (window << 32) | (count + 1), std::memory_order_relaxed)) {
      return RateDecision{true, 0, 0, limit_ - count - 1};
    }
  }
}

// Exact over the window: the ring holds the admission times of the last `limit` admitted
// requests, oldest at the head. A request passes when the oldest of them has left the
// window, i.e. fewer than `limit` were admitted in the last period.
RateDecision RateBucket::slidingWindow(int64_t nowNs) {
  while (ringLock_.test_and_set(std::memory_order_acquire)) {
  }
  RateDecision d;
  int64_t oldest = ring_[ringHead_];
  if (nowNs - oldest < periodNs_) {
    d = RateDecision{false, 0, oldest + periodNs_ - nowNs, 0};
  } else {
    ring_[ringHead_] = nowNs;
    ringHead_ = (ringHead_ + 1) % ring_.size();
    // Times rise from the head around the ring: count those still in the window.
    size_t lo = 0, hi = ring_.size();
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (nowNs - ring_[(ringHead_ + mid) % ring_.size()] < periodNs_) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    d = RateDecision{true, 0, 0, static_cast<int64_t>(lo)};
  }
  ringLock_.clear(std::memory_order_release);
  return d;
}

RateLimiter::RateLimiter(config::RateLimitConfig config)
    : config_(std::move(config)),
      single_(config_),
      overflow_(config_),
      table_(
          config_.maxKeys,
          [this](std::string_view) { return std::make_shared<RateBucket>(config_); },
          [periodNs = std::chrono::duration_cast<std::chrono::nanoseconds>(config_.per).count()](
              const RateBucket& b, int64_t nowNs) {
            // Idle a whole period: its bucket would be full again anyway.
            return nowNs - b.lastUsed() >= periodNs;
          }) {
  if (config_.global) {
    config::RateLimitConfig local = config_;
    local.global = false;
    local.limit = config_.localFallbackLimit;
    local.burst = std::min(config_.burst, config_.localFallbackLimit);
    fallback_ = std::make_unique<RateLimiter>(local);
  }
}

namespace {

// Each algorithm as one Lua script, run atomically by Redis on its own clock (so replicas
// on other hosts agree). Times in microseconds unless said. Every script returns
// {allowed, retry after (us), remaining, wait (us)}. Times stored or passed to commands go
// through string.format('%d'): Lua 5.1 turns a bare number into a string with 14
// significant digits, which would round a microsecond timestamp to 100 us.

// The token bucket as GCRA, as RateBucket::tokenBucket does it.
constexpr const char* kGlobalTokenBucket = R"lua(
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local nxt = tat + interval
if nxt - now > tau then return {0, nxt - now - tau, 0, 0} end
redis.call('SET', KEYS[1], string.format('%d', nxt), 'PX', math.floor((nxt - now) / 1000) + 1)
return {1, 0, math.floor((tau - (nxt - now)) / interval), 0}
)lua";

// A counter per calendar window (ms on Redis's clock).
constexpr const char* kGlobalFixedWindow = R"lua(
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local per = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local w = math.floor(now / per)
local k = KEYS[1] .. ':' .. w
local c = redis.call('INCR', k)
if c == 1 then redis.call('PEXPIRE', k, per + 1000) end
if c > limit then return {0, ((w + 1) * per - now) * 1000, 0, 0} end
return {1, 0, limit - c, 0}
)lua";

// Exact over the window: a sorted set of the admission times of the last period (at most
// `limit` members), as RateBucket::slidingWindow keeps them in a ring.
constexpr const char* kGlobalSlidingWindow = R"lua(
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local per = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - per))
local c = redis.call('ZCARD', KEYS[1])
if c >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, math.max(1, tonumber(oldest[2]) + per - now), 0, 0}
end
local seq = redis.call('INCR', KEYS[1] .. ':seq')
redis.call('ZADD', KEYS[1], string.format('%d', now), seq)
local ttl = math.floor(per / 1000) + 1000
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[1] .. ':seq', ttl)
return {1, 0, limit - c - 1, 0}
)lua";

// Pacing, as RateBucket::leakyBucket: the next free slot; a request whose slot is more than
// maxQueueTime away is rejected, else it takes the slot and waits for it (on a timer in the
// sidecar that asked).
constexpr const char* kGlobalLeakyBucket = R"lua(
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local interval = tonumber(ARGV[1])
local maxq = tonumber(ARGV[2])
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < now then slot = now end
local wait = slot - now
if wait > maxq then return {0, wait - maxq, 0, 0} end
redis.call('SET', KEYS[1], string.format('%d', slot + interval), 'PX', math.floor((wait + interval) / 1000) + 1)
return {1, 0, math.floor((maxq - wait) / interval), wait}
)lua";

}  // namespace

const char* RateLimiter::globalScript() const {
  switch (config_.algorithm) {
    case config::RateLimitAlgorithm::kTokenBucket:
      return kGlobalTokenBucket;
    case config::RateLimitAlgorithm::kFixedWindow:
      return kGlobalFixedWindow;
    case config::RateLimitAlgorithm::kSlidingWindow:
      return kGlobalSlidingWindow;
    case config::RateLimitAlgorithm::kLeakyBucket:
      return kGlobalLeakyBucket;
  }
  return kGlobalTokenBucket;
}

std::string RateLimiter::globalKey(std::string_view key) const {
  std::string k = "tether:rl:" + config_.name + ":";
  k += key;
  return k;
}

std::vector<std::string> RateLimiter::globalArgs() const {
  int64_t perUs = std::chrono::duration_cast<std::chrono::microseconds>(config_.per).count();
  int64_t interval = std::max<int64_t>(1, perUs / std::max<uint32_t>(1, config_.limit));
  switch (config_.algorithm) {
    case config::RateLimitAlgorithm::kFixedWindow:
      return {std::to_string(std::max<int64_t>(1, perUs / 1000)), std::to_string(config_.limit)};
    case config::RateLimitAlgorithm::kSlidingWindow:
      return {std::to_string(perUs), std::to_string(config_.limit)};
    case config::RateLimitAlgorithm::kLeakyBucket:
      return {
          std::to_string(interval),
          std::to_string(
              std::chrono::duration_cast<std::chrono::microseconds>(config_.maxQueueTime).count())};
    case config::RateLimitAlgorithm::kTokenBucket:
      break;
  }
  return {std::to_string(interval),
          std::to_string(interval * std::max<uint32_t>(1, config_.burst))};
}

bool RateLimiter::parseGlobalReply(const redisReply* reply, RateDecision& out) {
  if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 4) return false;
  for (size_t i = 0; i < 4; ++i) {
    if (reply->element[i]->type != REDIS_REPLY_INTEGER) return false;
  }
  // Durations come in microseconds; an answer outside [0, a day] is not one our script
  // gives (and would overflow in nanoseconds): the local fallback decides instead.
  constexpr long long kMaxMicros = 86'400'000'000LL;
  for (size_t i : {1, 3}) {
    long long us = reply->element[i]->integer;
    if (us < 0 || us > kMaxMicros) return false;
  }
  out.allowed = reply->element[0]->integer == 1;
  out.retryAfterNs = reply->element[1]->integer * 1000;
  out.remaining = reply->element[2]->integer;
  out.waitNs = reply->element[3]->integer * 1000;
  return true;
}

RateDecision RateLimiter::acquireFallback(std::string_view key, int64_t nowNs) {
  fallbacks_.fetch_add(1, std::memory_order_relaxed);
  return fallback_->acquire(key, nowNs);
}

RateDecision RateLimiter::acquire(std::string_view key, int64_t nowNs) {
  if (config_.key.kind == config::RateLimitKey::Kind::kNone) return single_.acquire(nowNs);
  std::shared_ptr<RateBucket> b = table_.find(key, nowNs);
  return b ? b->acquire(nowNs) : overflow_.acquire(nowNs);
}

}  // namespace tether::filters
