#include "filters/router/retry_policy.h"

#include <catch2/catch.hpp>

using namespace tether;
using namespace tether::filters;

TEST_CASE("retryOn tokens compile and match failures", "[retry]") {
  std::string bad;
  RetryOn r = parseRetryOn({"connect-failure", "503", "unavailable"}, &bad);
  CHECK(bad.empty());
  CHECK(r.matches(AttemptFailure::kConnectFailure, 0));
  CHECK_FALSE(r.matches(AttemptFailure::kReset, 0));
  CHECK(r.matches(AttemptFailure::kStatus, 503));
  CHECK_FALSE(r.matches(AttemptFailure::kStatus, 500));
  RetryOn g = parseRetryOn({"gateway-error"});
  CHECK(g.matches(AttemptFailure::kStatus, 502));
  CHECK(g.matches(AttemptFailure::kStatus, 504));
  CHECK_FALSE(g.matches(AttemptFailure::kStatus, 500));
  CHECK(g.matches(AttemptFailure::kTimeout, 0));
  CHECK(g.matches(AttemptFailure::kConnectFailure, 0));
  RetryOn x = parseRetryOn({"5xx"});
  CHECK(x.failedStatus(500));
  CHECK_FALSE(x.failedStatus(404));
  parseRetryOn({"reset", "sometimes"}, &bad);
  CHECK(bad == "sometimes");
}

TEST_CASE("backoff is jittered within an exponential window capped at 250 ms", "[retry]") {
  for (uint64_t r = 0; r < 1000; r += 7) {
    CHECK(retryBackoff(1, r).count() <= 25);
    CHECK(retryBackoff(2, r).count() <= 50);
    CHECK(retryBackoff(3, r).count() <= 100);
    CHECK(retryBackoff(9, r).count() <= 250);
  }
  CHECK(retryBackoff(9, 250).count() == 250);
  CHECK(retryBackoff(1, 26).count() == 0);  // 26 mod 26
}

TEST_CASE("the retry budget bounds retries to a share of traffic, with a floor", "[retry]") {
  CHECK(retryBudgetAllows(1, 0, 20));
  CHECK(retryBudgetAllows(1, 2, 20));  // the floor: 3 retries are always possible
  CHECK_FALSE(retryBudgetAllows(1, 3, 20));
  CHECK(retryBudgetAllows(100, 19, 20));
  CHECK_FALSE(retryBudgetAllows(100, 20, 20));
  CHECK_FALSE(retryBudgetAllows(1000, 200, 20));
}

TEST_CASE("deadline headers parse strictly; onFailure defaults follow retry", "[retry]") {
  std::string ok = "250", zero = "0", neg = "-5", junk = "12ms";
  CHECK(parseTimeoutMs(ok) == 250);
  CHECK(parseTimeoutMs(zero) == 0);
  CHECK_FALSE(parseTimeoutMs(neg));
  CHECK_FALSE(parseTimeoutMs(junk));
  CHECK_FALSE(parseTimeoutMs(std::nullopt));
  config::RouteRule rule;
  CHECK(effectiveFailureMode(rule) == config::FailureMode::kFailfast);
  rule.retry = config::RetryPolicy{};
  rule.retry->attempts = 2;
  CHECK(effectiveFailureMode(rule) == config::FailureMode::kFailover);
  rule.onFailure = config::FailureMode::kFailfast;
  CHECK(effectiveFailureMode(rule) == config::FailureMode::kFailfast);
}
