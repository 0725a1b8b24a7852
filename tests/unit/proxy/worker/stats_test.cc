#include "proxy/worker/stats.h"

#include <catch2/catch.hpp>

#include "proxy/server/metrics_export.h"

using namespace tether::proxy;
using tether::config::Direction;

TEST_CASE("worker stats count by label set and merge across workers", "[proxy]") {
  WorkerStats a, b;
  a.recordRequest(Direction::kOutbound, "ratings", "r1", 200, Reason::kNone, 0.002);
  a.recordRequest(Direction::kOutbound, "ratings", "r1", 200, Reason::kNone, 0.2);
  b.recordRequest(Direction::kOutbound, "ratings", "r1", 503, Reason::kNoHealthyUpstream, 0.0);
  b.recordRequest(Direction::kInbound, "local_app", "inbound", 200, Reason::kNone, 20);
  a.merge(b);
  REQUIRE(a.routes.size() == 2);
  std::string text = renderPrometheus(a, ControlStats{});
  CHECK(text.find("tether_requests_total{code=\"200\",direction=\"outbound\",reason=\"\","
                  "route=\"r1\",service=\"ratings\"} 2") != std::string::npos);
  CHECK(text.find("reason=\"no_healthy_upstream\"") != std::string::npos);
  // 20s lands only in +Inf; 0.002 in le=0.0025 and above.
  CHECK(text.find("tether_request_duration_seconds_bucket{direction=\"inbound\",route=\"inbound\","
                  "service=\"local_app\",le=\"10\"} 0") != std::string::npos);
  CHECK(text.find("tether_request_duration_seconds_bucket{direction=\"outbound\",route=\"r1\","
                  "service=\"ratings\",le=\"0.0025\"} 2") != std::string::npos);
}

TEST_CASE("histogram buckets are cumulative-ready and sum", "[proxy]") {
  DurationHistogram h;
  h.observe(0.0001);
  h.observe(0.003);
  h.observe(100);
  CHECK(h.count == 3);
  CHECK(h.counts[0] == 1);
  CHECK(h.counts.back() == 1);
  CHECK(h.sum == Approx(100.0031));
}
