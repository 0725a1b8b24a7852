// RateLimit rules on the fake stream and clock: refusals and their headers, windows that
// refill as time moves, and leaky-bucket pacing on a timer.

#include "filters/rate_limit/rate_limit_filter.h"

#include <catch2/catch.hpp>

#include "tests/unit/filters/filter_fixture.h"

using namespace tether;
using namespace tether::filters;
using tether::test::FilterFixture;

namespace {

proxy::FilterStatus admit(FilterFixture& f, std::vector<std::unique_ptr<RateLimitFilter>>& keep,
                          const std::string& path = "/") {
  keep.push_back(std::make_unique<RateLimitFilter>(f.governance));
  f.cb.attach(*keep.back());
  return keep.back()->onRequestHeaders(f.request("ratings", path), true);
}

}  // namespace

TEST_CASE(
    "a token bucket refuses past its burst with 429 and the RateLimit headers, and "
    "refills with time",
    "[filters][rate_limit]") {
  FilterFixture f(test::serviceAndRoute("ratings") +
                  test::ruleDoc("RateLimit", "qps",
                                "{ target: { service: ratings, pathPrefix: /api }, "
                                "algorithm: token_bucket, limit: 2, per: 1s }"));
  std::vector<std::unique_ptr<RateLimitFilter>> keep;
  CHECK(admit(f, keep, "/api/a") == proxy::FilterStatus::kContinue);
  CHECK(admit(f, keep, "/api/b") == proxy::FilterStatus::kContinue);
  CHECK(admit(f, keep, "/other") == proxy::FilterStatus::kContinue);  // not the target
  CHECK(admit(f, keep, "/api/c") == proxy::FilterStatus::kStopIteration);
  REQUIRE(f.cb.localReplies.size() == 1);
  const auto& r = f.cb.localReplies[0];
  CHECK(r.status == 429);
  CHECK(r.reason == proxy::Reason::kRateLimited);
  CHECK(proxy::view(r.headers.get("retry-after")) == "1");
  CHECK(proxy::view(r.headers.get("ratelimit-policy")) == "2;w=1");
  CHECK(proxy::view(r.headers.get("ratelimit")) == "limit=2, remaining=0, reset=1");
  // Half a second buys one token back, no sleeping.
  f.clock.advance(std::chrono::milliseconds(500));
  CHECK(admit(f, keep, "/api/d") == proxy::FilterStatus::kContinue);
  CHECK(admit(f, keep, "/api/e") == proxy::FilterStatus::kStopIteration);
  for (auto& k : keep) k->onDestroy();
}

TEST_CASE("a fixed window resets at the window's edge", "[filters][rate_limit]") {
  FilterFixture f(test::serviceAndRoute("ratings") +
                  test::ruleDoc("RateLimit", "window",
                                "{ target: { service: ratings }, algorithm: fixed_window, "
                                "limit: 1, per: 10s, fallback: { status: 503, body: full } }"));
  std::vector<std::unique_ptr<RateLimitFilter>> keep;
  CHECK(admit(f, keep) == proxy::FilterStatus::kContinue);
  CHECK(admit(f, keep) == proxy::FilterStatus::kStopIteration);
  REQUIRE(f.cb.localReplies.size() == 1);
  CHECK(f.cb.localReplies[0].status == 503);  // the rule's fallback
  CHECK(f.cb.localReplies[0].body == "full");
  f.clock.advance(std::chrono::seconds(10));
  CHECK(admit(f, keep) == proxy::FilterStatus::kContinue);
  for (auto& k : keep) k->onDestroy();
}

TEST_CASE("a leaky bucket paces: the request waits on a timer, then iteration continues",
          "[filters][rate_limit]") {
  FilterFixture f(test::serviceAndRoute("ratings") +
                  test::ruleDoc("RateLimit", "paced",
                                "{ target: { service: ratings }, algorithm: leaky_bucket, "
                                "limit: 10, per: 1s, maxQueueTime: 500ms }"));
  std::vector<std::unique_ptr<RateLimitFilter>> keep;
  CHECK(admit(f, keep) == proxy::FilterStatus::kContinue);       // the first slot is now
  CHECK(admit(f, keep) == proxy::FilterStatus::kStopIteration);  // the next is 100 ms on
  CHECK(f.cb.localReplies.empty());
  f.advance(std::chrono::milliseconds(99));
  CHECK(f.cb.requestContinues == 0);
  f.advance(std::chrono::milliseconds(1));
  CHECK(f.cb.requestContinues == 1);
  // Five more queue up to 600 ms out: past maxQueueTime, the last is refused.
  int paced = 0;
  int refused = 0;
  for (int i = 0; i < 6; ++i) {
    size_t replies = f.cb.localReplies.size();
    CHECK(admit(f, keep) == proxy::FilterStatus::kStopIteration);
    (f.cb.localReplies.size() > replies ? refused : paced)++;
  }
  CHECK(refused >= 1);
  CHECK(paced >= 4);
  f.advance(std::chrono::seconds(1));
  CHECK(f.cb.requestContinues == 1 + paced);
  for (auto& k : keep) k->onDestroy();
}

TEST_CASE("a global limit without Redis falls back to its local limit", "[filters][rate_limit]") {
  FilterFixture f(test::serviceAndRoute("ratings") +
                      test::ruleDoc("RateLimit", "shared",
                                    "{ target: { service: ratings }, algorithm: token_bucket, "
                                    "limit: 5, per: 1s, mode: global, localFallbackLimit: 1 }"),
                  "redis: { address: 127.0.0.1:1 }\n");  // nothing listens: Redis is away
  std::vector<std::unique_ptr<RateLimitFilter>> keep;
  CHECK(admit(f, keep) == proxy::FilterStatus::kContinue);
  CHECK(admit(f, keep) == proxy::FilterStatus::kStopIteration);
  REQUIRE(f.cb.localReplies.size() == 1);
  CHECK(f.cb.localReplies[0].status == 429);
  for (auto& k : keep) k->onDestroy();
}
