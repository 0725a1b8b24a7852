// The routing filter: the route chosen once, the caller's budget, the route timeout on the
// worker's clock.

#include <catch2/catch.hpp>

#include "tests/unit/filters/filter_fixture.h"

using namespace tether;
using namespace tether::filters;
using tether::test::FilterFixture;

TEST_CASE("the route is chosen once and cached on the stream", "[filters][route]") {
  FilterFixture f(test::serviceAndRoute("ratings"));
  f.request("ratings", "/api");
  REQUIRE(f.routed);
  REQUIRE(f.cb.route() != nullptr);
  const RouteChoice& r = routeOf(f.cb);
  CHECK(r.routeRule().backends.front().service == "ratings");
  CHECK(f.cb.info().route == "ratings");
  CHECK(f.cb.info().service == "ratings");
  CHECK(r.counters != nullptr);
  CHECK(r.timeout->armed());  // the 15 s default
  CHECK(!r.timeout->travels());
  auto s = r.subject(f.cb.info(), f.cb.requestHead);
  CHECK(s.path == "/api");
}

TEST_CASE("no route is 404 no_route; a spent budget is 504 before anything else",
          "[filters][route]") {
  FilterFixture f(test::serviceAndRoute("ratings"));
  f.request("elsewhere");
  CHECK(!f.routed);
  REQUIRE(f.cb.localReplies.size() == 1);
  CHECK(f.cb.localReplies[0].status == 404);
  CHECK(f.cb.localReplies[0].reason == proxy::Reason::kNoRoute);

  FilterFixture g(test::serviceAndRoute("ratings"));
  g.cb.requestHead.headers.add("x-tether-timeout-ms", "0");
  g.cb.requestHead.authority = "ratings";
  CHECK(g.route.onRequestHeaders(g.cb.requestHead, true) == proxy::FilterStatus::kStopIteration);
  REQUIRE(g.cb.localReplies.size() == 1);
  CHECK(g.cb.localReplies[0].status == 504);
  CHECK(g.cb.localReplies[0].reason == proxy::Reason::kDeadlineExceeded);
}

TEST_CASE(
    "the route timeout runs on the worker's clock and answers a request still in "
    "admission",
    "[filters][route]") {
  FilterFixture f(test::serviceAndRoute("ratings", ", timeout: 2s"));
  f.request("ratings");
  const RouteChoice& r = routeOf(f.cb);
  CHECK(r.timeout->travels());  // a configured timeout travels on
  CHECK(r.timeout->remainingMs() == 2000);
  f.advance(std::chrono::milliseconds(1999));
  CHECK(f.cb.localReplies.empty());
  CHECK(r.timeout->remainingMs() == 1);
  f.advance(std::chrono::milliseconds(1));
  REQUIRE(f.cb.localReplies.size() == 1);
  CHECK(f.cb.localReplies[0].status == 504);
  CHECK(f.cb.localReplies[0].reason == proxy::Reason::kUpstreamTimeout);
}

TEST_CASE("a caller's tighter budget binds, and expiry goes to whoever took the request over",
          "[filters][route]") {
  FilterFixture f(test::serviceAndRoute("ratings", ", timeout: 2s"));
  f.cb.requestHead.authority = "ratings";
  f.cb.requestHead.headers.add("grpc-timeout", "300m");
  f.cb.requestHead.headers.add("x-tether-timeout-ms", "500");
  REQUIRE(f.route.onRequestHeaders(f.cb.requestHead, true) == proxy::FilterStatus::kContinue);
  const RouteChoice& r = routeOf(f.cb);
  CHECK(r.timeout->fromCaller());
  CHECK(r.timeout->remainingMs() == 300);
  CHECK(f.cb.requestHead.headers.get("x-tether-timeout-ms") == nullptr);  // Tether writes its own
  struct Handler : proxy::DeadlineCallback {
    int fired = 0;
    void onDeadline() override { ++fired; }
  } handler;
  r.timeout->handOver(handler);
  f.advance(std::chrono::milliseconds(300));
  CHECK(handler.fired == 1);
  CHECK(f.cb.localReplies.empty());
}
