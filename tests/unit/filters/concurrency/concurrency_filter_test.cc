// Service overflow limits and ConcurrencyLimit rules, on the fake stream.

#include "filters/concurrency/concurrency_filter.h"

#include <catch2/catch.hpp>

#include "tests/unit/filters/filter_fixture.h"

using namespace tether;
using namespace tether::filters;
using tether::test::FilterFixture;

TEST_CASE("limits.maxRequests refuses one more with 503 overflow and frees on destroy",
          "[filters][concurrency]") {
  FilterFixture f(test::serviceAndRoute("ratings", "", ", limits: { maxRequests: 1 }"));
  // Two filters on one routed stream stand for two requests to the same service.
  auto& head = f.request("ratings");
  ConcurrencyFilter first(f.governance);
  f.cb.attach(first);
  CHECK(first.onRequestHeaders(head, true) == proxy::FilterStatus::kContinue);
  CHECK(routeOf(f.cb).counters->active.load() == 1);

  ConcurrencyFilter second(f.governance);
  f.cb.attach(second);
  CHECK(second.onRequestHeaders(head, true) == proxy::FilterStatus::kStopIteration);
  REQUIRE(f.cb.localReplies.size() == 1);
  CHECK(f.cb.localReplies[0].status == 503);
  CHECK(f.cb.localReplies[0].reason == proxy::Reason::kOverflow);
  second.onDestroy();
  CHECK(routeOf(f.cb).counters->active.load() == 1);  // the refused one held nothing

  first.onDestroy();
  CHECK(routeOf(f.cb).counters->active.load() == 0);
  ConcurrencyFilter third(f.governance);
  f.cb.attach(third);
  CHECK(third.onRequestHeaders(head, true) == proxy::FilterStatus::kContinue);
  third.onDestroy();
}

TEST_CASE("a ConcurrencyLimit counts per key and answers with its fallback",
          "[filters][concurrency]") {
  FilterFixture f(test::serviceAndRoute("ratings") +
                  test::ruleDoc("ConcurrencyLimit", "per-user",
                                "{ target: { service: ratings }, maxConcurrency: 1, "
                                "key: 'header:x-user', fallback: { status: 429, body: busy } }"));
  auto run = [&](const std::string& user) {
    auto filter = std::make_unique<ConcurrencyFilter>(f.governance);
    f.cb.attach(*filter);
    auto& head = f.request("ratings");
    head.headers.add("x-user", user);
    bool ok = filter->onRequestHeaders(head, true) == proxy::FilterStatus::kContinue;
    return std::make_pair(ok, std::move(filter));
  };
  auto [annOk, ann] = run("ann");
  auto [bobOk, bob] = run("bob");
  auto [ann2Ok, ann2] = run("ann");
  CHECK(annOk);
  CHECK(bobOk);
  CHECK(!ann2Ok);
  REQUIRE(f.cb.localReplies.size() == 1);
  CHECK(f.cb.localReplies[0].status == 429);
  CHECK(f.cb.localReplies[0].body == "busy");
  CHECK(f.cb.localReplies[0].reason == proxy::Reason::kOverflow);
  ann->onDestroy();
  auto [ann3Ok, ann3] = run("ann");
  CHECK(ann3Ok);
  for (auto* x : {bob.get(), ann2.get(), ann3.get()}) x->onDestroy();
}
