// The metrics and access-log filters on the fake stream and clock: what a finished stream
// records, with its duration on the worker's clock.

#include "filters/metrics/metrics_filter.h"

#include <catch2/catch.hpp>

#include "filters/access_log/access_log_filter.h"
#include "proxy/server/metrics_export.h"
#include "tests/unit/filters/filter_fixture.h"

using namespace tether;
using namespace tether::filters;
using tether::test::FilterFixture;

TEST_CASE("the metrics filter counts a finished request with its duration", "[filters][metrics]") {
  FilterFixture f(test::serviceAndRoute("ratings"));
  MetricsFilter metrics;
  f.cb.attach(metrics);
  auto& head = f.request("ratings");
  CHECK(metrics.onRequestHeaders(head, true) == proxy::FilterStatus::kContinue);
  f.clock.advance(std::chrono::milliseconds(250));
  f.cb.info().status = 503;
  f.cb.info().reason = proxy::Reason::kCircuitOpen;
  metrics.onStreamComplete(f.cb.info());
  std::string text = proxy::renderPrometheus(f.cb.worker().stats(), {});
  INFO(text);
  // prometheus-cpp writes labels in name order.
  CHECK(text.find("tether_requests_total{code=\"503\",direction=\"outbound\",reason=\"circuit_"
                  "open\",route=\"ratings\",service=\"ratings\"} 1") != std::string::npos);
  CHECK(text.find("tether_request_duration_seconds_sum{direction=\"outbound\",route=\"ratings\","
                  "service=\"ratings\"} 0.25") != std::string::npos);
}

TEST_CASE("the access-log line carries the request and the duration on the worker's clock",
          "[filters][access_log]") {
  FilterFixture f(test::serviceAndRoute("ratings"));
  AccessLogFilter log;
  f.cb.attach(log);
  auto& head = f.request("ratings", "/api/x?y=1", "POST");
  log.onRequestHeaders(head, true);
  f.clock.advance(std::chrono::milliseconds(40));
  f.cb.info().status = 201;
  auto start = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
  std::string line = formatAccessLogLine(f.cb.info(), "POST", "ratings", "/api/x?y=1", start,
                                         std::chrono::milliseconds(40));
  CHECK(line.find("\"method\":\"POST\"") != std::string::npos);
  CHECK(line.find("\"path\":\"/api/x?y=1\"") != std::string::npos);
  CHECK(line.find("\"status\":201") != std::string::npos);
  CHECK(line.find("\"duration_ms\":40") != std::string::npos);
  CHECK(line.find("\"route\":\"ratings\"") != std::string::npos);
  CHECK(line.find("\"time\":\"2027-01-15T08:00:00") != std::string::npos);
}
