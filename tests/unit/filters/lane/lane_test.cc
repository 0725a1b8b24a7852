// Canary lanes: TrafficLabel matching, lane endpoint sets, and the two lane carriers.

#include <catch2/catch.hpp>

#include "filters/lane/lane_filter.h"
#include "filters/router/route_table.h"
#include "tests/fakes/fake_stream.h"
#include "tests/unit/filters/rules_fixture.h"

using namespace tether;
using namespace tether::filters;

namespace {

const std::string kRules = R"(
apiVersion: tether.dev/v1alpha1
kind: Service
metadata: { name: ratings }
spec:
  endpoints:
    - { address: 127.0.0.1:9001 }
    - { address: 127.0.0.1:9002 }
    - { address: 127.0.0.1:9003, labels: { lane: gray } }
---
apiVersion: tether.dev/v1alpha1
kind: Route
metadata: { name: ratings }
spec: { hosts: [ ratings ], rules: [ { backends: [ { service: ratings } ] } ] }
---
apiVersion: tether.dev/v1alpha1
kind: TrafficLabel                     # canary tagging (OpenSergo TrafficLabelRule semantics)
metadata: { name: beta-users }
spec:
  match: { headers: { x-user-group: { exact: beta } } }   # or: percentage: 5
  label: gray
---
apiVersion: tether.dev/v1alpha1
kind: TrafficLabel
metadata: { name: cookie-canary }
spec:
  match: { cookies: { canary: { exact: "1" } } }
  label: blue
  fallback: none
---
apiVersion: tether.dev/v1alpha1
kind: TrafficLabel
metadata: { name: five-percent }
spec: { percentage: 5, label: sampled }
)";

proxy::RequestHead req() {
  proxy::RequestHead h;
  h.method = "GET";
  h.path = "/";
  h.authority = "ratings";
  return h;
}

}  // namespace

TEST_CASE("TrafficLabel rules match headers, cookies and percentages in order", "[lane]") {
  RouteTable table(tether::test::loadRules(kRules));
  auto beta = req();
  beta.headers.add("x-user-group", "beta");
  REQUIRE(table.matchLabel(beta, 999999));
  CHECK(table.matchLabel(beta, 999999)->label == "gray");
  auto cookie = req();
  cookie.headers.add("cookie", "a=b; canary=1");
  CHECK(table.matchLabel(cookie, 999999)->label == "blue");
  CHECK(table.labelRule("blue")->fallback == config::TrafficLabelConfig::Fallback::kNone);
  int sampled = 0;
  for (uint64_t r = 0; r < 10000; ++r) sampled += table.matchLabel(req(), r * 7) != nullptr;
  CHECK(sampled == Approx(500).margin(10));
  CHECK(table.knownLane("gray"));
  CHECK_FALSE(table.knownLane("rogue"));
}

TEST_CASE("lane endpoints serve only their lane; the baseline excludes them", "[lane]") {
  RouteTable table(tether::test::loadRules(kRules));
  const CompiledRule* rule = table.matchOutbound(req());
  REQUIRE(rule);
  const CompiledBackend& base = rule->backends[0];
  REQUIRE(base.endpoints.size() == 2);
  CHECK(base.endpoints[0]->address.port == 9001);
  CHECK(base.endpoints[1]->address.port == 9002);
  const CompiledBackend* gray = base.lane("gray");
  REQUIRE(gray);
  REQUIRE(gray->endpoints.size() == 1);
  CHECK(gray->endpoints[0]->address.port == 9003);
  CHECK(base.lane("blue") == nullptr);
}

TEST_CASE("the lane travels in x-tether-lane and W3C baggage", "[lane]") {
  auto h = req();
  CHECK(laneOf(h).empty());
  h.headers.add("baggage", "userId=alice, tether-lane=gray;ttl=5,other=1");
  CHECK(laneOf(h) == "gray");
  h.headers.add("x-tether-lane", "blue");
  CHECK(laneOf(h) == "blue");  // the dedicated header wins
  auto bad = req();
  bad.headers.add("x-tether-lane", "has space");
  CHECK(laneOf(bad).empty());
  CHECK(withLaneBaggage("userId=alice, tether-lane=old,x=1", "gray") ==
        "userId=alice,x=1,tether-lane=gray");
  CHECK(withLaneBaggage("", "gray") == "tether-lane=gray");
}

namespace {

/// A lane filter on its own fake stream.
struct LaneStream {
  tether::test::FakeStreamCallbacks stream;
  LaneFilter filter;
  LaneStream(std::shared_ptr<const config::Config> config, std::shared_ptr<const RouteTable> table,
             config::Direction direction = config::Direction::kOutbound)
      : stream(config), filter(std::move(table)) {
    stream.info().direction = direction;
    stream.attach(filter);
  }
  std::string lane(proxy::RequestHead& head) {
    stream.info().lane.clear();
    CHECK(filter.onRequestHeaders(head, true) == proxy::FilterStatus::kContinue);
    CHECK(stream.localReplies.empty());
    return stream.info().lane;
  }
};

}  // namespace

TEST_CASE("the lane filter on its stream: tags outbound requests, keeps a lane it is given",
          "[lane][filter]") {
  auto config = tether::test::loadRules(kRules);
  auto table = std::make_shared<const RouteTable>(config);
  LaneStream out(config, table);

  // Outbound, matching a TrafficLabel: tagged in both carriers, baggage members kept.
  auto beta = req();
  beta.headers.add("x-user-group", "beta");
  beta.headers.add("baggage", "userId=42");
  CHECK(out.lane(beta) == "gray");
  REQUIRE(beta.headers.get("x-tether-lane"));
  CHECK(*beta.headers.get("x-tether-lane") == "gray");
  CHECK(*beta.headers.get("baggage") == "userId=42,tether-lane=gray");

  // A lane the request already carries wins over the rules.
  auto carried = req();
  carried.headers.add("x-tether-lane", "blue");
  carried.headers.add("x-user-group", "beta");
  CHECK(out.lane(carried) == "blue");

  // Percentage rules draw from the worker's random numbers: over many requests about 5%
  // are sampled, the rest carry nothing.
  int sampled = 0;
  for (int i = 0; i < 2000; ++i) {
    auto r = req();
    r.headers.add("x-user-group", "alpha");
    std::string lane = out.lane(r);
    if (!lane.empty()) {
      CHECK(lane == "sampled");
      ++sampled;
    } else {
      CHECK_FALSE(r.headers.get("x-tether-lane"));
    }
  }
  CHECK(sampled == Approx(100).margin(40));

  // Inbound, a lane is read but nothing is added for the app.
  LaneStream in(config, table, config::Direction::kInbound);
  auto arriving = req();
  arriving.headers.add("x-tether-lane", "gray");
  arriving.headers.add("x-user-group", "beta");
  CHECK(in.lane(arriving) == "gray");
  CHECK_FALSE(arriving.headers.get("baggage"));
}
