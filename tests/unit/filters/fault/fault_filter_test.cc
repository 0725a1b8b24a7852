// Fault injection on the fake stream and clock.

#include "filters/fault/fault_filter.h"

#include <catch2/catch.hpp>

#include "tests/unit/filters/filter_fixture.h"

using namespace tether;
using namespace tether::filters;
using tether::test::FilterFixture;

TEST_CASE("a fault delay holds the request on a timer, then lets it go", "[filters][fault]") {
  FilterFixture f(
      test::serviceAndRoute("ratings", ", fault: { delay: { fixed: 200ms, percent: 100 } }"));
  FaultFilter filter;
  f.cb.attach(filter);
  CHECK(filter.onRequestHeaders(f.request("ratings"), true) == proxy::FilterStatus::kStopIteration);
  f.advance(std::chrono::milliseconds(199));
  CHECK(f.cb.requestContinues == 0);
  f.advance(std::chrono::milliseconds(1));
  CHECK(f.cb.requestContinues == 1);
  CHECK(f.cb.localReplies.empty());
  filter.onDestroy();
}

TEST_CASE("a fault abort answers with its status after the delay; 0% never fires",
          "[filters][fault]") {
  FilterFixture f(test::serviceAndRoute(
      "ratings",
      ", fault: { delay: { fixed: 50ms, percent: 100 }, abort: { status: 418, "
      "percent: 100 } }"));
  FaultFilter filter;
  f.cb.attach(filter);
  CHECK(filter.onRequestHeaders(f.request("ratings"), true) == proxy::FilterStatus::kStopIteration);
  CHECK(f.cb.localReplies.empty());
  f.advance(std::chrono::milliseconds(50));
  REQUIRE(f.cb.localReplies.size() == 1);
  CHECK(f.cb.localReplies[0].status == 418);
  CHECK(f.cb.localReplies[0].reason == proxy::Reason::kFaultInjected);
  CHECK(f.cb.requestContinues == 0);
  filter.onDestroy();

  FilterFixture g(
      test::serviceAndRoute("ratings", ", fault: { abort: { status: 500, percent: 0 } }"));
  FaultFilter quiet;
  g.cb.attach(quiet);
  for (int i = 0; i < 100; ++i) {
    CHECK(quiet.onRequestHeaders(g.request("ratings"), true) == proxy::FilterStatus::kContinue);
  }
  CHECK(g.cb.localReplies.empty());
}
