// Service- and route-level circuit breakers on the fake stream and clock: opening on
// failures, the open answer, half-open probes after openDuration.

#include "filters/circuit_breaker/circuit_breaker_filter.h"

#include <catch2/catch.hpp>

#include "tests/unit/filters/filter_fixture.h"

using namespace tether;
using namespace tether::filters;
using tether::test::FilterFixture;

namespace {

/// One request through the breaker filter; `status` is how it ends when admitted.
bool call(FilterFixture& f, int status) {
  CircuitBreakerFilter filter(f.governance);
  f.cb.attach(filter);
  size_t replies = f.cb.localReplies.size();
  bool admitted =
      filter.onRequestHeaders(f.request("ratings"), true) == proxy::FilterStatus::kContinue;
  proxy::StreamInfo info = f.cb.info();
  info.reason = proxy::Reason::kNone;
  info.status = admitted ? status : f.cb.localReplies.back().status;
  if (!admitted) {
    CHECK(f.cb.localReplies.size() == replies + 1);
    info.reason = f.cb.localReplies.back().reason;
  }
  f.clock.advance(std::chrono::milliseconds(10));  // each call takes 10 ms
  filter.onStreamComplete(info);
  filter.onDestroy();
  return admitted;
}

}  // namespace

TEST_CASE(
    "an error_count breaker opens, answers 503 circuit_open, and probes after "
    "openDuration",
    "[filters][circuit_breaker]") {
  FilterFixture f(test::serviceAndRoute("ratings") +
                  test::ruleDoc("CircuitBreaker", "cb",
                                "{ target: { service: ratings }, strategy: error_count, "
                                "threshold: 3, window: 10s, minRequests: 1, openDuration: 5s, "
                                "halfOpenProbes: 1 }"));
  CHECK(call(f, 200));
  CHECK(call(f, 502));
  CHECK(call(f, 503));
  CHECK(call(f, 500));  // the third failure opens it
  CHECK(!call(f, 200));
  const auto& open = f.cb.localReplies.back();
  CHECK(open.status == 503);
  CHECK(open.reason == proxy::Reason::kCircuitOpen);
  CHECK(proxy::view(open.headers.get("retry-after")) == "5");
  // openDuration is jittered by +-20%: still open at 3.9 s, a probe goes through by 6.1 s.
  f.clock.advance(std::chrono::milliseconds(3880));
  CHECK(!call(f, 200));
  f.clock.advance(std::chrono::milliseconds(2200));
  CHECK(call(f, 200));  // the probe succeeds: closed again
  CHECK(call(f, 200));
}

TEST_CASE("a breaker for another route or a perEndpoint rule does not gate the request",
          "[filters][circuit_breaker]") {
  FilterFixture f(test::serviceAndRoute("ratings") +
                  test::ruleDoc("CircuitBreaker", "elsewhere",
                                "{ target: { route: billing }, strategy: error_count, "
                                "threshold: 1, minRequests: 1 }") +
                  test::ruleDoc("CircuitBreaker", "endpoints",
                                "{ target: { service: ratings }, strategy: error_count, "
                                "threshold: 1, minRequests: 1, perEndpoint: true }"));
  for (int i = 0; i < 5; ++i) CHECK(call(f, 503));
  CHECK(f.cb.localReplies.empty());
}
