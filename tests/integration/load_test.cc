// Real load (wrk), hostile bytes and connection limits against the real binary.

#include <signal.h>

#include <catch2/catch.hpp>
#include <random>
#include <regex>
#include <thread>

#include "tests/fakes/fake_upstream.h"
#include "tests/integration/harness.h"

using namespace tether::test;

TEST_CASE("wrk load on two workers: every request answered 2xx and counted", "[load]") {
  FakeUpstream app;
  TetherProcess t(basicBootstrap(app.port(), "", 2));
  REQUIRE(t.started());
  std::string out;
  int rc = runCommand(
      "wrk -t1 -c16 -d2s http://127.0.0.1:" + std::to_string(t.port("inbound")) + "/echo", &out,
      true);
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(out.find("Non-2xx") == std::string::npos);
  CHECK(out.find("Socket errors") == std::string::npos);
  std::smatch m;
  REQUIRE(std::regex_search(out, m, std::regex(R"((\d+) requests in)")));
  double sent = std::stod(m[1]);
  CHECK(sent > 1000);
  std::string metrics = adminGet(t.adminPort(), "/metrics").body;
  // wrk stops mid-request on some connections; those count as 499 (client went away).
  double ok = metricValue(metrics, "tether_requests_total", "code=\"200\"");
  CHECK(ok >= sent);
  CHECK(ok <= sent + 16);
  // 16 client connections need at most 16 upstream ones, kept alive and reused.
  CHECK(metricValue(metrics, "tether_upstream_connections_total") <= 16);
  CHECK(app.connections() <= 16);
  CHECK(metricValue(metrics, "tether_workers") == 2);
}

TEST_CASE("random bytes never crash the proxy or reach the upstream", "[load]") {
  FakeUpstream app;
  TetherProcess t(basicBootstrap(app.port()));
  REQUIRE(t.started());
  std::mt19937 rng(12345);
  for (int i = 0; i < 200; ++i) {
    RawClient c(t.port("inbound"));
    std::string junk(1 + rng() % 4096, '\0');
    for (auto& ch : junk) ch = static_cast<char>(rng());
    // Half of them start like a request, so the parser gets past the first byte.
    if (i % 2) junk = "GET /" + junk;
    c.send(junk);
    c.readAll(20);
  }
  CHECK(t.running());
  CHECK(app.bytesReceived() == 0);
  CHECK(adminGet(t.adminPort(), "/live").status == 200);
  CHECK(httpRequest(t.port("inbound"), "GET", "/echo", "a").status == 200);
}

TEST_CASE("listener maxConnections closes the excess at once", "[load]") {
  FakeUpstream app;
  std::string boot =
      "admin: { address: 127.0.0.1:0 }\nworkers: 1\n"
      "listeners:\n  - { name: inbound, address: 127.0.0.1:0, direction: inbound, "
      "maxConnections: 2 }\n"
      "localApp: { address: 127.0.0.1:" +
      std::to_string(app.port()) + " }\n";
  TetherProcess t(boot);
  REQUIRE(t.started());
  RawClient a(t.port("inbound")), b(t.port("inbound"));
  REQUIRE(a.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"));
  HttpResponse r;
  REQUIRE(a.readResponse(r));
  REQUIRE(b.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"));
  REQUIRE(b.readResponse(r));
  RawClient c(t.port("inbound"));
  c.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(c.waitClosed(2000));
  std::string metrics = adminGet(t.adminPort(), "/metrics").body;
  CHECK(metricValue(metrics, "tether_downstream_connections_overflow_total") == 1);
}

TEST_CASE("idle keep-alive connections are closed after http.idleTimeout", "[load]") {
  FakeUpstream app;
  TetherProcess t(basicBootstrap(app.port(), "http: { idleTimeout: 300ms }\n"));
  REQUIRE(t.started());
  RawClient c(t.port("inbound"));
  REQUIRE(c.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"));
  HttpResponse r;
  REQUIRE(c.readResponse(r));
  auto start = std::chrono::steady_clock::now();
  CHECK(c.waitClosed(3000));
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(took >= std::chrono::milliseconds(250));
  CHECK(took < std::chrono::milliseconds(1500));
}

TEST_CASE("pooled upstream connections close after upstream.idleTimeout of idleness", "[load]") {
  FakeUpstream app;
  TetherProcess t(basicBootstrap(app.port(), "upstream: { idleTimeout: 400ms }\n"));
  REQUIRE(t.started());
  auto active = [&] {
    return metricValue(adminGet(t.adminPort(), "/metrics").body,
                       "tether_upstream_connections_active");
  };
  REQUIRE(httpRequest(t.port("inbound"), "GET", "/x").status == 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  // Used again before the timeout: the idle clock restarts from here.
  REQUIRE(httpRequest(t.port("inbound"), "GET", "/x").status == 200);
  CHECK(app.connections() == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  CHECK(active() == 1);  // idle for 250 ms only, though 500 ms since it first went idle
  CHECK(waitUntil([&] { return active() == 0; }, 2000));
}
