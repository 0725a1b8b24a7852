// The router's deadlines and retries on the fake stream and clock: the route timeout it
// takes over, per-try timeouts, the backoff between attempts. The endpoint is a real
// address whose connection never completes, because the loop never turns.

#include "filters/router/router_filter.h"

#include <catch2/catch.hpp>

#include "tests/unit/filters/filter_fixture.h"

using namespace tether;
using namespace tether::filters;
using tether::test::FilterFixture;

TEST_CASE("the router takes the route timeout over and answers 504 upstream_timeout",
          "[filters][router]") {
  FilterFixture f(test::serviceAndRoute("ratings", ", timeout: 1s"));
  RouterFilter router(f.table, f.governance);
  f.cb.attach(router);
  auto& head = f.request("ratings");
  CHECK(router.onRequestHeaders(head, true) == proxy::FilterStatus::kStopIteration);
  CHECK(f.cb.info().upstreamAddress == "127.0.0.1:9");
  CHECK(proxy::view(head.headers.get("via")) == "1.1 tether");
  f.advance(std::chrono::milliseconds(999));
  CHECK(f.cb.localReplies.empty());
  f.advance(std::chrono::milliseconds(1));
  REQUIRE(f.cb.localReplies.size() == 1);
  CHECK(f.cb.localReplies[0].status == 504);
  CHECK(f.cb.localReplies[0].reason == proxy::Reason::kUpstreamTimeout);
  CHECK(f.cb.worker().stats().service("ratings").upstreamTimeouts == 1);
  router.onDestroy();
}

TEST_CASE("per-try timeouts are retried after a backoff, within the attempts and the deadline",
          "[filters][router]") {
  FilterFixture f(
      test::serviceAndRoute("ratings",
                            ", timeout: 5s, retry: { attempts: 2, perTryTimeout: 100ms, retryOn: "
                            "[ gateway-error ] }"));
  RouterFilter router(f.table, f.governance);
  f.cb.attach(router);
  CHECK(router.onRequestHeaders(f.request("ratings"), true) == proxy::FilterStatus::kStopIteration);
  const auto& stats = f.cb.worker().stats().service("ratings");
  CHECK(stats.upstreamRequests == 1);
  // Attempt 1 times out; the retry waits out a backoff of at most 25 ms.
  f.advance(std::chrono::milliseconds(100));
  CHECK(stats.upstreamTimeouts == 1);
  CHECK(stats.retries == 1);
  CHECK(f.cb.localReplies.empty());
  f.advance(std::chrono::milliseconds(25));  // attempt 2 starts
  f.advance(std::chrono::milliseconds(100));
  CHECK(stats.upstreamTimeouts == 2);
  CHECK(stats.retries == 2);
  f.advance(std::chrono::milliseconds(50));  // attempt 3 (backoff up to 50 ms)
  f.advance(std::chrono::milliseconds(100));
  // Three attempts spent: the failure stands.
  REQUIRE(f.cb.localReplies.size() == 1);
  CHECK(f.cb.localReplies[0].status == 504);
  CHECK(f.cb.localReplies[0].reason == proxy::Reason::kUpstreamTimeout);
  CHECK(stats.upstreamTimeouts == 3);
  CHECK(stats.retries == 2);
  router.onDestroy();
}

TEST_CASE("no attempt starts that cannot finish within the caller's deadline",
          "[filters][router]") {
  FilterFixture f(test::serviceAndRoute(
      "ratings", ", retry: { attempts: 5, perTryTimeout: 100ms, retryOn: [ gateway-error ] }"));
  f.cb.requestHead.headers.add("x-tether-timeout-ms", "150");
  f.cb.requestHead.authority = "ratings";
  REQUIRE(f.route.onRequestHeaders(f.cb.requestHead, true) == proxy::FilterStatus::kContinue);
  RouterFilter router(f.table, f.governance);
  f.cb.attach(router);
  router.onRequestHeaders(f.cb.requestHead, true);
  // 50 ms left after the first try: too little for another 100 ms try.
  f.advance(std::chrono::milliseconds(100));
  CHECK(f.cb.worker().stats().service("ratings").retries == 0);
  REQUIRE(f.cb.localReplies.size() == 1);
  CHECK(f.cb.localReplies[0].status == 504);
  router.onDestroy();
}
