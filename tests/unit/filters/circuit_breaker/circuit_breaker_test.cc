#include "filters/circuit_breaker/circuit_breaker.h"

#include <catch2/catch.hpp>

using namespace tether;
using filters::BreakerState;
using filters::CircuitBreaker;

namespace {

constexpr int64_t kMs = 1'000'000;

config::CircuitBreakerConfig breaker() {
  config::CircuitBreakerConfig c;
  c.name = "cb";
  c.strategy = config::BreakerStrategy::kErrorRatio;
  c.threshold = 0.5;
  c.window = std::chrono::seconds(10);
  c.minRequests = 20;
  c.openDuration = std::chrono::seconds(5);
  c.maxOpenDuration = std::chrono::seconds(60);
  c.halfOpenProbes = 3;
  c.recoveryStep = 0.1;
  c.recoveryInterval = std::chrono::seconds(10);
  return c;
}

/// `n` admitted requests at `t`, every other one failing when `halfFail`.
void traffic(CircuitBreaker& b, int64_t t, int n, bool halfFail) {
  for (int i = 0; i < n; ++i) {
    auto a = b.admit(t, 0.0);
    if (a.allowed) b.record(halfFail && i % 2 == 0, 10 * kMs, a.probe, t);
  }
}

}  // namespace

TEST_CASE("a breaker trips on the error ratio only after minRequests", "[breaker]") {
  CircuitBreaker b(breaker());
  int64_t t = 1000 * kMs;
  traffic(b, t, 18, true);  // 9 of 18 failed: 50%, but under minRequests
  CHECK(b.state() == BreakerState::kClosed);
  traffic(b, t + kMs, 2, true);  // 20 requests, 10 failures
  CHECK(b.state() == BreakerState::kOpen);
  CHECK_FALSE(b.admit(t + 2 * kMs, 0.0).allowed);
  CHECK(b.transitions(BreakerState::kClosed, BreakerState::kOpen) == 1);
}

TEST_CASE("failures older than the window do not count", "[breaker]") {
  CircuitBreaker b(breaker());
  traffic(b, 1000 * kMs, 19, true);  // 10 of 19 failed
  // 11 s later those have left the 10 s window: 20 good requests keep it closed.
  traffic(b, 12000 * kMs, 20, false);
  CHECK(b.state() == BreakerState::kClosed);
}

TEST_CASE("half-open admits several probes, closes through a ramp", "[breaker]") {
  CircuitBreaker b(breaker());
  int64_t t = 1000 * kMs;
  traffic(b, t, 20, true);
  REQUIRE(b.state() == BreakerState::kOpen);
  CHECK_FALSE(b.admit(t + 4999 * kMs, 0.0).allowed);
  // After openDuration: three concurrent probes, the fourth waits.
  int64_t h = t + 5001 * kMs;
  auto p1 = b.admit(h, 0.0), p2 = b.admit(h, 0.0), p3 = b.admit(h, 0.0), p4 = b.admit(h, 0.0);
  CHECK(b.state() == BreakerState::kHalfOpen);
  CHECK((p1.allowed && p1.probe && p2.allowed && p2.probe && p3.allowed && p3.probe));
  CHECK_FALSE(p4.allowed);
  b.record(false, 5 * kMs, true, h);
  b.record(false, 5 * kMs, true, h);
  CHECK(b.state() == BreakerState::kHalfOpen);
  b.record(false, 5 * kMs, true, h);
  CHECK(b.state() == BreakerState::kRecovering);
  // The ramp: 10% admitted now, 20% after one interval, ... 100% (closed) after nine.
  CHECK(b.admittedShare(h) == Approx(0.1));
  CHECK(b.admit(h, 0.05).allowed);
  CHECK_FALSE(b.admit(h, 0.15).allowed);
  CHECK(b.admittedShare(h + 10'000 * kMs) == Approx(0.2));
  CHECK(b.admit(h + 10'000 * kMs, 0.15).allowed);
  CHECK(b.admittedShare(h + 45'000 * kMs) == Approx(0.5));
  CHECK(b.admit(h + 90'001 * kMs, 0.99).allowed);
  CHECK(b.state() == BreakerState::kClosed);
  CHECK(b.transitions(BreakerState::kRecovering, BreakerState::kClosed) == 1);
}

TEST_CASE("a failed probe re-opens for longer; failures during the ramp re-open", "[breaker]") {
  CircuitBreaker b(breaker());
  int64_t t = 1000 * kMs;
  traffic(b, t, 20, true);
  int64_t h = t + 5001 * kMs;
  auto p = b.admit(h, 0.0);
  REQUIRE(p.probe);
  b.record(true, 5 * kMs, true, h);
  CHECK(b.state() == BreakerState::kOpen);
  CHECK(b.transitions(BreakerState::kHalfOpen, BreakerState::kOpen) == 1);
  // The second opening lasts 10 s +-20%: still open 7.9 s later, half-open after 12.1 s.
  CHECK_FALSE(b.admit(h + 7900 * kMs, 0.0).allowed);
  int64_t h2 = h + 12'100 * kMs;
  for (int i = 0; i < 3; ++i) {
    auto a = b.admit(h2, 0.0);
    REQUIRE(a.probe);
    b.record(false, kMs, true, h2);
  }
  REQUIRE(b.state() == BreakerState::kRecovering);
  // During the ramp the ratio is watched again: half of 20 admitted requests fail.
  for (int i = 0; i < 40; ++i) {
    auto a = b.admit(h2 + kMs, 0.0);  // random 0: always within the admitted share
    if (a.allowed) b.record(i % 2 == 0, kMs, false, h2 + kMs);
  }
  CHECK(b.state() == BreakerState::kOpen);
  CHECK(b.transitions(BreakerState::kRecovering, BreakerState::kOpen) == 1);
}

TEST_CASE("slow_ratio counts calls slower than slowCallThreshold", "[breaker]") {
  config::CircuitBreakerConfig c = breaker();
  c.strategy = config::BreakerStrategy::kSlowRatio;
  c.slowCallThreshold = std::chrono::milliseconds(200);
  c.recoveryStep = 1;  // no ramp
  CircuitBreaker b(c);
  int64_t t = 1000 * kMs;
  for (int i = 0; i < 20; ++i) b.record(false, (i % 2 ? 300 : 100) * kMs, false, t);
  CHECK(b.state() == BreakerState::kOpen);
  int64_t h = t + 5001 * kMs;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(b.admit(h, 0.0).probe);
    b.record(false, 50 * kMs, true, h);
  }
  CHECK(b.state() == BreakerState::kClosed);  // step 100%: no ramp
}

TEST_CASE("error_count trips on a count of failures", "[breaker]") {
  config::CircuitBreakerConfig c = breaker();
  c.strategy = config::BreakerStrategy::kErrorCount;
  c.threshold = 5;
  c.minRequests = 1;
  CircuitBreaker b(c);
  for (int i = 0; i < 4; ++i) b.record(true, kMs, false, 1000 * kMs);
  for (int i = 0; i < 100; ++i) b.record(false, kMs, false, 1000 * kMs);
  CHECK(b.state() == BreakerState::kClosed);
  b.record(true, kMs, false, 1000 * kMs);
  CHECK(b.state() == BreakerState::kOpen);
}
