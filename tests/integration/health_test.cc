// Endpoint health: passive outlier ejection and return, active checks, panic mode, and an
// endpoint dying under load.

#include <catch2/catch.hpp>
#include <future>
#include <thread>

#include "tests/fakes/fake_upstream.h"
#include "tests/integration/harness.h"

using namespace tether::test;

namespace {

std::string twoEndpoints(const FakeUpstream& a, const FakeUpstream& b, const std::string& svc,
                         const std::string& rule = "") {
  return "rules:\n  inline:\n"
         "    - apiVersion: tether.dev/v1alpha1\n      kind: Service\n"
         "      metadata: { name: up }\n"
         "      spec:\n        endpoints: [ { address: 127.0.0.1:" +
         std::to_string(a.port()) + " }, { address: 127.0.0.1:" + std::to_string(b.port()) +
         " } ]\n" + svc +
         "    - apiVersion: tether.dev/v1alpha1\n      kind: Route\n"
         "      metadata: { name: r }\n"
         "      spec:\n        hosts: [ up ]\n        rules:\n"
         "          - backends: [ { service: up } ]\n" +
         rule;
}

size_t occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

/// Requests the fake received for `target` (traffic, as opposed to health checks).
size_t requestsFor(const FakeUpstream& up, const std::string& target) {
  size_t n = 0;
  for (const auto& r : up.requests()) n += r.target == target;
  return n;
}

}  // namespace

TEST_CASE("outlier detection ejects a failing endpoint and lets it back", "[health]") {
  FakeUpstream good, bad;
  bad.setForcedStatus(500);
  TetherProcess t(basicBootstrap(
      good.port(),
      twoEndpoints(good, bad,
                   "        outlierDetection: { consecutiveErrors: 3, baseEjectionTime: 1s, "
                   "maxEjectionPercent: 50 }\n")));
  REQUIRE(t.started());
  uint16_t port = t.port("outbound");
  for (int i = 0; i < 30; ++i) httpRequest(port, "GET", "/echo", "up");
  CHECK(bad.requestCount() == 3);  // ejected after its third 500 in a row
  CHECK(good.requestCount() == 27);
  HttpResponse clusters = adminGet(t.adminPort(), "/clusters");
  CHECK(clusters.body.find("\"ejected\":true") != std::string::npos);
  std::string m = adminGet(t.adminPort(), "/metrics").body;
  CHECK(metricValue(m, "tether_outlier_ejections_total", "service=\"up\"") == 1);
  // Fixed and past its ejection time, it gets traffic again.
  bad.setForcedStatus(0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  for (int i = 0; i < 10; ++i) httpRequest(port, "GET", "/echo", "up");
  CHECK(bad.requestCount() >= 7);
}

TEST_CASE("maxEjectionPercent keeps the last endpoints in service", "[health]") {
  FakeUpstream a, b;
  a.setForcedStatus(500);
  b.setForcedStatus(500);
  TetherProcess t(
      basicBootstrap(a.port(), twoEndpoints(a, b,
                                            "        outlierDetection: { consecutiveErrors: 2, "
                                            "baseEjectionTime: 10s, maxEjectionPercent: 50 }\n")));
  REQUIRE(t.started());
  for (int i = 0; i < 20; ++i) httpRequest(t.port("outbound"), "GET", "/echo", "up");
  std::string m = adminGet(t.adminPort(), "/metrics").body;
  CHECK(metricValue(m, "tether_outlier_ejections_total", "service=\"up\"") == 1);
  CHECK(a.requestCount() + b.requestCount() == 20);
}

TEST_CASE("active health checks take an endpoint out and bring it back", "[health]") {
  FakeUpstream good, bad;
  bad.setForcedStatus(503);
  TetherProcess t(basicBootstrap(
      good.port(), twoEndpoints(good, bad,
                                "        healthCheck: { path: /healthz, interval: 100ms, "
                                "timeout: 500ms, unhealthyThreshold: 2, healthyThreshold: 1 }\n")));
  REQUIRE(t.started());
  CHECK(waitUntil([&] {
    return adminGet(t.adminPort(), "/clusters").body.find("\"health\":\"unhealthy\"") !=
           std::string::npos;
  }));
  size_t before = bad.requestCount();  // its health checks
  for (int i = 0; i < 20; ++i) {
    CHECK(httpRequest(t.port("outbound"), "GET", "/echo", "up").status == 200);
  }
  // Only health checks reached the bad endpoint, no traffic.
  for (const auto& r : bad.requests()) CHECK(r.target == "/healthz");
  CHECK(bad.requestCount() >= before);
  bad.setForcedStatus(0);
  CHECK(waitUntil([&] {
    return adminGet(t.adminPort(), "/clusters").body.find("\"unhealthy\"") == std::string::npos;
  }));
  bad.clear();
  for (int i = 0; i < 20; ++i) httpRequest(t.port("outbound"), "GET", "/echo", "up");
  CHECK(requestsFor(bad, "/echo") == 10);
}

TEST_CASE("with too few healthy endpoints, panic mode spreads over all", "[health]") {
  FakeUpstream a, b;
  a.setForcedStatus(503);
  b.setForcedStatus(503);
  TetherProcess t(basicBootstrap(
      a.port(), twoEndpoints(a, b,
                             "        healthCheck: { path: /healthz, interval: 100ms, "
                             "timeout: 500ms, unhealthyThreshold: 1, healthyThreshold: 1 }\n")));
  REQUIRE(t.started());
  CHECK(waitUntil([&] {
    std::string c = adminGet(t.adminPort(), "/clusters").body;
    return occurrences(c, "\"unhealthy\"") == 2;
  }));
  a.clear();
  b.clear();
  for (int i = 0; i < 10; ++i) httpRequest(t.port("outbound"), "GET", "/echo", "up");
  CHECK(requestsFor(a, "/echo") == 5);
  CHECK(requestsFor(b, "/echo") == 5);
  std::string m = adminGet(t.adminPort(), "/metrics").body;
  CHECK(metricValue(m, "tether_panic_total", "service=\"up\"") == 10);
}

TEST_CASE("an endpoint killed under load costs the clients nothing with retries on",
          "[health][load]") {
  FakeUpstream survivor;
  auto victim = std::make_unique<FakeUpstream>();
  TetherProcess t(basicBootstrap(
      survivor.port(),
      twoEndpoints(survivor, *victim,
                   "        outlierDetection: { consecutiveErrors: 2, baseEjectionTime: 30s, "
                   "maxEjectionPercent: 50 }\n",
                   "            retry: { attempts: 2, budgetPercent: 100, retryOn: [ "
                   "connect-failure, reset, gateway-error ] }\n")));
  REQUIRE(t.started());
  auto load = std::async(std::launch::async, [&] {
    std::string out;
    runCommand("wrk -t1 -c8 -d3s -H 'Host: up' http://127.0.0.1:" +
                   std::to_string(t.port("outbound")) + "/echo",
               &out, true);
    return out;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  victim.reset();  // closes its listener and every connection, mid-load
  std::string out = load.get();
  INFO(out);
  CHECK(out.find("requests in") != std::string::npos);
  CHECK(out.find("Non-2xx") == std::string::npos);
  std::string m = adminGet(t.adminPort(), "/metrics").body;
  CHECK(metricValue(m, "tether_outlier_ejections_total", "service=\"up\"") == 1);
  CHECK(metricValue(m, "tether_requests_total", "code=\"502\"") == -1);
}

TEST_CASE("health checks: TCP connect without a path, expected statuses and ranges", "[health]") {
  FakeUpstream a, b;
  // No path: a TCP connect check. Nothing is sent to the endpoint; a closed port fails.
  {
    uint16_t closed = freePort();
    TetherProcess t(basicBootstrap(
        a.port(), "rules:\n  inline:\n" +
                      doc("Service", "up",
                          "{ endpoints: [ { address: 127.0.0.1:" + std::to_string(a.port()) +
                              " }, { address: 127.0.0.1:" + std::to_string(closed) +
                              " } ], healthCheck: { interval: 100ms, timeout: 500ms, "
                              "unhealthyThreshold: 1, healthyThreshold: 1 } }")));
    REQUIRE(t.started());
    CHECK(waitUntil([&] {
      std::string c = adminGet(t.adminPort(), "/clusters").body;
      return c.find("\"health\":\"unhealthy\"") != std::string::npos &&
             c.find("\"health\":\"healthy\"") != std::string::npos;
    }));
    CHECK(a.connections() > 0);
    CHECK(a.bytesReceived() == 0);
  }
  // expectedStatus: 204 only, then a range that takes 204 and 503 in.
  b.setForcedStatus(503);
  for (const char* expected : {"[ 204, \"500-503\" ]", "204"}) {
    INFO(expected);
    TetherProcess t(basicBootstrap(
        a.port(),
        twoEndpoints(a, b,
                     std::string("        healthCheck: { path: /healthz, interval: 100ms, "
                                 "timeout: 500ms, unhealthyThreshold: 1, healthyThreshold: 1, "
                                 "expectedStatus: ") +
                         expected + " }\n")));
    REQUIRE(t.started());
    // a answers 200 "ok" to /healthz: healthy only if 200 is expected, never here.
    bool list = std::string(expected).find('[') != std::string::npos;
    CHECK(waitUntil([&] {
      std::string c = adminGet(t.adminPort(), "/clusters").body;
      size_t unhealthy = occurrences(c, "\"health\":\"unhealthy\"");
      size_t healthy = occurrences(c, "\"health\":\"healthy\"");
      return list ? unhealthy == 1 && healthy == 1 : unhealthy == 2;
    }));
  }
  // A bad expectedStatus is a configuration error at its position.
  std::string out;
  std::string rules =
      writeFile("hc-rules.yaml",
                "apiVersion: tether.dev/v1alpha1\nkind: Service\nmetadata: { name: up }\n"
                "spec:\n  endpoints: [ { address: 127.0.0.1:1 } ]\n"
                "  healthCheck: { path: /h, expectedStatus: [ 200, \"300-200\" ] }\n");
  std::string boot = writeFile("hc-boot.yaml", basicBootstrap(a.port()));
  CHECK(runCommand(std::string(TETHER_BIN) + " validate -c " + boot + " " + rules, &out, true) ==
        1);
  CHECK(out.find("hc-rules.yaml:6:51: spec.healthCheck.expectedStatus: expected a status") !=
        std::string::npos);
}

TEST_CASE("/clusters shows the weight in force: 0 when out, ramped by slow start", "[health]") {
  FakeUpstream good, bad;
  bad.setForcedStatus(503);
  TetherProcess t(basicBootstrap(
      good.port(),
      twoEndpoints(good, bad,
                   "        loadBalancer: { slowStart: 60s }\n"
                   "        healthCheck: { path: /healthz, interval: 100ms, timeout: 500ms, "
                   "unhealthyThreshold: 1, healthyThreshold: 1 }\n")));
  REQUIRE(t.started());
  auto weightOf = [&](const FakeUpstream& up) {
    std::string c = adminGet(t.adminPort(), "/clusters").body;
    // In the "up" service (the good one is the local app's address too).
    size_t at = c.find("\"address\":\"127.0.0.1:" + std::to_string(up.port()) + "\"",
                       c.find("\"name\":\"up\""));
    size_t w = c.find("\"effectiveWeight\":", at);
    return at == std::string::npos || w == std::string::npos
               ? -1.0
               : std::stod(c.substr(w + sizeof("\"effectiveWeight\":") - 1));
  };
  CHECK(waitUntil([&] { return weightOf(bad) == 0.0; }));
  // Seconds into a 60 s ramp: about 10% of weight 1, not the configured 1.
  double w = weightOf(good);
  CHECK(w >= 0.1);
  CHECK(w < 0.5);
  CHECK(adminGet(t.adminPort(), "/clusters").body.find("\"panic\":false") != std::string::npos);
}
