// Full-link gray across two Tether hops: the first sidecar stamps the lane, the second
// keeps it and routes to the gray endpoint, falling back (counted) when there is none.

#include <catch2/catch.hpp>

#include "tests/fakes/fake_upstream.h"
#include "tests/integration/harness.h"

using namespace tether::test;

namespace {

std::string ep(const FakeUpstream& u, const std::string& labels = "") {
  return "{ address: 127.0.0.1:" + std::to_string(u.port()) +
         (labels.empty() ? "" : ", labels: " + labels) + " }";
}

}  // namespace

TEST_CASE("a lane stamped at hop one reaches the gray endpoint at hop two", "[lane]") {
  FakeUpstream stable, gray, other;
  // Hop two: the caller's next sidecar. ratings has a gray endpoint; reviews has none.
  std::string hop2Rules =
      "rules:\n  inline:\n" +
      doc("Service", "ratings",
          "{ endpoints: [ " + ep(stable) + ", " + ep(gray, "{ lane: gray }") + " ] }") +
      doc("Service", "reviews", "{ endpoints: [ " + ep(other) + " ] }") +
      doc("Route", "ratings",
          "{ hosts: [ ratings ], rules: [ { backends: [ { service: ratings } ] } ] }") +
      doc("Route", "reviews",
          "{ hosts: [ reviews ], rules: [ { backends: [ { service: reviews } ] } ] }") +
      doc("TrafficLabel", "strict",
          "{ match: { headers: { x-never: { present: true } } }, label: blue, fallback: none }");
  TetherProcess hop2(basicBootstrap(stable.port(), hop2Rules));
  REQUIRE(hop2.started());
  // Hop one: stamps beta users gray and sends everything to hop two.
  std::string hop2Addr = "{ address: 127.0.0.1:" + std::to_string(hop2.port("outbound")) + " }";
  std::string hop1Rules =
      "rules:\n  inline:\n" + doc("Service", "mesh", "{ endpoints: [ " + hop2Addr + " ] }") +
      doc("Route", "all", "{ hosts: [ \"*\" ], rules: [ { backends: [ { service: mesh } ] } ] }") +
      doc("TrafficLabel", "beta-users",
          "{ match: { headers: { x-user-group: { exact: beta } } }, label: gray }");
  TetherProcess hop1(basicBootstrap(stable.port(), hop1Rules));
  REQUIRE(hop1.started());
  uint16_t port = hop1.port("outbound");

  for (int i = 0; i < 10; ++i) {
    REQUIRE(httpRequest(port, "GET", "/echo", "ratings", "", {{"X-User-Group", "beta"}}).status ==
            200);
    REQUIRE(httpRequest(port, "GET", "/echo", "ratings").status == 200);
  }
  CHECK(gray.requestCount() == 10);  // every beta request, and only those
  CHECK(stable.requestCount() == 10);
  RecordedRequest r = gray.lastRequest();
  CHECK(*r.header("x-tether-lane") == "gray");
  CHECK(*r.header("baggage") == "tether-lane=gray");
  CHECK(stable.lastRequest().header("x-tether-lane") == nullptr);

  // reviews has no gray endpoint: the baseline serves the lane, and hop two counts it.
  CHECK(httpRequest(port, "GET", "/echo", "reviews", "", {{"X-User-Group", "beta"}}).status == 200);
  CHECK(other.requestCount() == 1);
  CHECK(*other.lastRequest().header("x-tether-lane") == "gray");  // still carried onward
  std::string m2 = adminGet(hop2.adminPort(), "/metrics").body;
  CHECK(metricValue(m2, "tether_lane_fallback_total", "lane=\"gray\",service=\"reviews\"") == 1);
  CHECK(metricValue(m2, "tether_lane_requests_total", "direction=\"outbound\",lane=\"gray\"") ==
        11);
  // A lane whose rule says fallback: none gets 503 instead of the baseline.
  HttpResponse strict = httpRequest(hop2.port("outbound"), "GET", "/echo", "reviews", "",
                                    {{"X-Tether-Lane", "blue"}});
  CHECK(strict.status == 503);
  CHECK(*strict.header("x-tether-reason") == "no_healthy_upstream");
  // Unknown lanes from the network are counted as "other", never as raw label values.
  httpRequest(hop2.port("outbound"), "GET", "/echo", "reviews", "", {{"X-Tether-Lane", "rogue"}});
  m2 = adminGet(hop2.adminPort(), "/metrics").body;
  CHECK(metricValue(m2, "tether_lane_requests_total", "lane=\"other\"") == 1);
  CHECK(m2.find("rogue") == std::string::npos);
}
