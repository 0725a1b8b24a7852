// The admin API (operations.md) and the metrics it exposes.

#include <catch2/catch.hpp>
#include <thread>

#include "tests/fakes/fake_upstream.h"
#include "tests/integration/harness.h"

using namespace tether::test;

TEST_CASE("admin endpoints answer and metrics pass promtool", "[admin]") {
  FakeUpstream app;
  TetherProcess t(basicBootstrap(app.port()));
  REQUIRE(t.started());
  uint16_t admin = t.adminPort();
  CHECK(adminGet(admin, "/live").status == 200);
  HttpResponse ready = adminGet(admin, "/ready");
  CHECK(ready.status == 200);
  for (int i = 0; i < 3; ++i) {
    CHECK(httpRequest(t.port("inbound"), "GET", "/echo", "app").status == 200);
  }
  CHECK(httpRequest(t.port("outbound"), "GET", "/", "nowhere").status == 404);

  HttpResponse m = adminGet(admin, "/metrics");
  REQUIRE(m.status == 200);
  CHECK(metricValue(m.body, "tether_requests_total",
                    "code=\"200\",direction=\"inbound\",reason=\"\",route=\"inbound\","
                    "service=\"local_app\"") == 3);
  CHECK(metricValue(m.body, "tether_requests_total", "reason=\"no_route\"") == 1);
  CHECK(metricValue(m.body, "tether_request_duration_seconds_count", "direction=\"inbound\"") == 3);
  CHECK(metricValue(m.body, "tether_upstream_requests_total", "service=\"local_app\"") == 3);
  CHECK(metricValue(m.body, "tether_upstream_connections_active") >= 0);
  CHECK(metricValue(m.body, "tether_downstream_connections_active") >= 0);
  CHECK(metricValue(m.body, "tether_config_version") == 1);
  std::string file = writeFile("metrics.txt", m.body);
  std::string out;
  CHECK(runCommand("promtool check metrics < " + file, &out, true) == 0);
  INFO(out);

  HttpResponse clusters = adminGet(admin, "/clusters");
  CHECK(clusters.status == 200);
  CHECK(clusters.body.find("\"name\":\"local_app\"") != std::string::npos);
  CHECK(clusters.body.find("\"address\":\"127.0.0.1:" + std::to_string(app.port()) + "\"") !=
        std::string::npos);
  CHECK(clusters.body.find("\"idleConnections\":1") != std::string::npos);

  HttpResponse dump = adminGet(admin, "/config_dump");
  CHECK(dump.status == 200);
  CHECK(dump.body.find("version: 1") != std::string::npos);
  HttpResponse rules = adminGet(admin, "/rules");
  CHECK(rules.status == 200);
  CHECK(rules.body.find("\"lastRejected\":null") != std::string::npos);
  CHECK(adminGet(admin, "/nope").status == 404);
}

TEST_CASE("POST /drain turns /ready to 503 and closes keep-alive connections", "[admin]") {
  FakeUpstream app;
  TetherProcess t(basicBootstrap(app.port()));
  REQUIRE(t.started());
  RawClient c(t.port("inbound"));
  REQUIRE(c.send("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"));
  HttpResponse r;
  REQUIRE(c.readResponse(r));
  CHECK_FALSE(r.closed);
  CHECK(httpRequest(t.adminPort(), "POST", "/drain", "a").status == 200);
  CHECK(adminGet(t.adminPort(), "/ready").status == 503);
  // After the grace period the idle keep-alive connection is closed.
  CHECK(c.waitClosed(3000));
  CHECK(t.running());  // /drain alone never exits
}

TEST_CASE("/ready waits for the local app's readiness path", "[admin]") {
  FakeUpstream app;
  TetherProcess waiting(basicBootstrap(1, ""));
  REQUIRE(waiting.started());
  CHECK(adminGet(waiting.adminPort(), "/ready").status == 200);  // no readiness check set

  std::string withCheck =
      "admin: { address: 127.0.0.1:0 }\nworkers: 1\nlisteners: []\n"
      "localApp: { address: 127.0.0.1:1, readiness: { path: /healthz } }\n";
  TetherProcess notReady(withCheck);
  REQUIRE(notReady.started());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  HttpResponse r = adminGet(notReady.adminPort(), "/ready");
  CHECK(r.status == 503);
  CHECK(r.body == "local app not ready\n");

  std::string good = withCheck;
  good.replace(good.find("127.0.0.1:1,"), 12, "127.0.0.1:" + std::to_string(app.port()) + ",");
  TetherProcess ready(good);
  REQUIRE(ready.started());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    status = adminGet(ready.adminPort(), "/ready").status;
    if (status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(status == 200);
  CHECK(app.lastRequest().target == "/healthz");
}
