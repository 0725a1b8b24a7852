#include "filters/rate_limit/rate_limiter.h"

#include <catch2/catch.hpp>

using namespace tether;
using filters::RateDecision;
using filters::RateLimiter;

namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;

config::RateLimitConfig limit(config::RateLimitAlgorithm a, uint32_t n, int64_t perMs,
                              uint32_t burst = 0) {
  config::RateLimitConfig c;
  c.name = "t";
  c.algorithm = a;
  c.limit = n;
  c.per = std::chrono::milliseconds(perMs);
  c.burst = burst ? burst : n;
  return c;
}

/// Requests at `every` ns from `start` for `count` requests; returns how many passed.
int drive(RateLimiter& l, int64_t start, int64_t every, int count, std::string_view key = "") {
  int ok = 0;
  for (int i = 0; i < count; ++i) ok += l.acquire(key, start + i * every).allowed;
  return ok;
}

}  // namespace

TEST_CASE("token bucket: the burst at once, then the rate", "[ratelimit]") {
  RateLimiter l(limit(config::RateLimitAlgorithm::kTokenBucket, 100, 1000, 20));
  // 1000/s for 10 s against 100/s with a burst of 20: 20 + 100 * 10.
  CHECK(drive(l, kSec, kMs, 10001) == 1020);
  RateDecision d = l.acquire("", kSec + 10000 * kMs);
  CHECK_FALSE(d.allowed);
  CHECK(d.retryAfterNs > 0);
  CHECK(d.retryAfterNs <= 10 * kMs);
  // An idle bucket refills only up to the burst.
  CHECK(drive(l, 100 * kSec, 0, 50) == 20);
}

TEST_CASE("fixed window: limit per calendar window, reset at the boundary", "[ratelimit]") {
  RateLimiter l(limit(config::RateLimitAlgorithm::kFixedWindow, 10, 1000));
  CHECK(drive(l, 5 * kSec + 900 * kMs, kMs, 20) == 10);
  // The next window starts at 6 s: 10 more, although only 100 ms passed.
  CHECK(drive(l, 6 * kSec, kMs, 20) == 10);
  RateDecision d = l.acquire("", 6 * kSec + 500 * kMs);
  CHECK_FALSE(d.allowed);
  CHECK(d.retryAfterNs == 500 * kMs);
}

TEST_CASE("sliding window: exact over the last period, even across a boundary", "[ratelimit]") {
  RateLimiter l(limit(config::RateLimitAlgorithm::kSlidingWindow, 10, 1000));
  // 10 at 0.9 s: full. At 1.1 s a fixed window would reset; the sliding one still holds all
  // 10 admissions within the last second, so nothing passes until 1.9 s.
  CHECK(drive(l, 900 * kMs, 0, 10) == 10);
  CHECK(drive(l, 1100 * kMs, 10 * kMs, 70) == 0);
  RateDecision d = l.acquire("", 1899 * kMs);
  CHECK_FALSE(d.allowed);
  CHECK(d.retryAfterNs == kMs);
  // At 1.9 s the ten from 0.9 s have left the window: this one passes, 9 more may.
  RateDecision ok = l.acquire("", 1900 * kMs);
  CHECK(ok.allowed);
  CHECK(ok.remaining == 9);
}

TEST_CASE("leaky bucket: requests wait for evenly spaced slots, up to maxQueueTime",
          "[ratelimit]") {
  config::RateLimitConfig c = limit(config::RateLimitAlgorithm::kLeakyBucket, 10, 1000);
  c.maxQueueTime = std::chrono::milliseconds(350);
  RateLimiter l(c);
  std::vector<int64_t> waits;
  for (int i = 0; i < 6; ++i) {
    RateDecision d = l.acquire("", kSec);
    if (d.allowed) waits.push_back(d.waitNs);
  }
  // Slots 100 ms apart: 0, 100, 200, 300 ms fit in 350 ms; the 5th and 6th are refused.
  CHECK(waits == std::vector<int64_t>{0, 100 * kMs, 200 * kMs, 300 * kMs});
  RateDecision refused = l.acquire("", kSec);
  CHECK_FALSE(refused.allowed);
  CHECK(refused.retryAfterNs == 50 * kMs);
}

TEST_CASE("keys get their own buckets; a full key table shares one overflow bucket",
          "[ratelimit]") {
  config::RateLimitConfig c = limit(config::RateLimitAlgorithm::kTokenBucket, 1, 1000, 1);
  c.key.kind = config::RateLimitKey::Kind::kHeader;
  c.maxKeys = 16;  // one per shard
  RateLimiter l(c);
  CHECK(l.acquire("alice", kSec).allowed);
  CHECK_FALSE(l.acquire("alice", kSec).allowed);
  CHECK(l.acquire("bob", kSec).allowed);  // another caller is not starved by alice
  // Flood with random keys: memory stays at maxKeys, the rest share the overflow bucket.
  int passed = 0;
  for (int i = 0; i < 1000; ++i) passed += l.acquire("k" + std::to_string(i), kSec).allowed;
  CHECK(l.keys() <= 16);
  CHECK(l.overflowed() > 900);
  CHECK(passed < 30);
  // A period later the idle entries may be replaced by new keys.
  CHECK(l.acquire("carol", 3 * kSec).allowed);
}
