// Passive outlier detection arithmetic, on a clock the test controls.

#include "proxy/upstream/endpoint_health.h"

#include <catch2/catch.hpp>

using namespace tether;
using namespace tether::proxy;

namespace {

std::vector<EndpointHealthPtr> makePeers(size_t n) {
  std::vector<EndpointHealthPtr> v;
  for (size_t i = 0; i < n; ++i) v.push_back(std::make_shared<EndpointHealth>());
  return v;
}

config::OutlierDetectionConfig od(uint32_t errors, int64_t baseMs, uint32_t maxPercent) {
  config::OutlierDetectionConfig c;
  c.consecutiveErrors = errors;
  c.baseEjectionTime = config::Duration(baseMs);
  c.maxEjectionPercent = maxPercent;
  return c;
}

}  // namespace

TEST_CASE("consecutive failures eject; a success in between resets the count", "[health]") {
  auto peers = makePeers(4);
  EndpointHealth& e = *peers[0];
  auto cfg = od(3, 1000, 50);
  int64_t now = 1'000'000;
  CHECK_FALSE(recordOutcome(e, peers, cfg, true, now));
  CHECK_FALSE(recordOutcome(e, peers, cfg, true, now));
  CHECK_FALSE(recordOutcome(e, peers, cfg, false, now));  // reset
  CHECK_FALSE(recordOutcome(e, peers, cfg, true, now));
  CHECK_FALSE(recordOutcome(e, peers, cfg, true, now));
  CHECK(recordOutcome(e, peers, cfg, true, now));
  CHECK(e.ejected(now));
  CHECK_FALSE(e.available(now + 999));
  CHECK(e.available(now + 1000));
}

TEST_CASE("each ejection lasts longer, up to five minutes", "[health]") {
  auto peers = makePeers(2);
  EndpointHealth& e = *peers[0];
  auto cfg = od(1, 100'000, 50);
  int64_t now = 0;
  std::vector<int64_t> durations;
  for (int i = 0; i < 5; ++i) {
    REQUIRE(recordOutcome(e, peers, cfg, true, now));
    int64_t until = e.ejectedUntilMs.load();
    durations.push_back(until - now);
    now = until;  // back in service, fails again at once
  }
  CHECK(durations == std::vector<int64_t>{100'000, 200'000, 300'000, 300'000, 300'000});
  CHECK(e.timesEjected.load() == 5);
}

TEST_CASE("maxEjectionPercent caps how much of a service can be ejected", "[health]") {
  auto peers = makePeers(4);
  auto cfg = od(1, 1000, 50);
  int64_t now = 5000;
  CHECK(recordOutcome(*peers[0], peers, cfg, true, now));
  CHECK(recordOutcome(*peers[1], peers, cfg, true, now));
  CHECK_FALSE(recordOutcome(*peers[2], peers, cfg, true, now));  // would be 75%
  CHECK(peers[2]->available(now));
  // Once the first two are back, the third may go.
  CHECK(recordOutcome(*peers[2], peers, cfg, true, now + 1000));
}

TEST_CASE("one endpoint may always be ejected, whatever the percentage (as Envoy)", "[health]") {
  // 10% of 4 endpoints is 0.4 of one: the default cap used to eject nothing below ten.
  auto peers = makePeers(4);
  auto cfg = od(1, 1000, 10);
  int64_t now = 5000;
  CHECK(recordOutcome(*peers[0], peers, cfg, true, now));
  CHECK_FALSE(recordOutcome(*peers[1], peers, cfg, true, now));  // one at a time
  // A single endpoint too (the router's panic mode then still sends to it).
  auto alone = makePeers(1);
  CHECK(recordOutcome(*alone[0], alone, cfg, true, now));
  // 0% turns ejection off.
  auto off = makePeers(4);
  CHECK_FALSE(recordOutcome(*off[0], off, od(1, 1000, 0), true, now));
}
