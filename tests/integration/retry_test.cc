// Retries, failover, failsafe and deadline propagation over real sockets.

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "tests/fakes/fake_upstream.h"
#include "tests/integration/harness.h"

using namespace tether::test;

namespace {

std::string rules(const FakeUpstream& up, const std::string& ruleYaml, bool withDead = false) {
  std::string eps = "{ address: 127.0.0.1:" + std::to_string(up.port()) + " }";
  if (withDead) eps = "{ address: 127.0.0.1:1 }, " + eps;
  return "rules:\n  inline:\n"
         "    - apiVersion: tether.dev/v1alpha1\n      kind: Service\n"
         "      metadata: { name: up }\n"
         "      spec: { endpoints: [ " +
         eps +
         " ] }\n"
         "    - apiVersion: tether.dev/v1alpha1\n      kind: Route\n"
         "      metadata: { name: r }\n"
         "      spec:\n        hosts: [ up ]\n        rules:\n"
         "          - backends: [ { service: up } ]\n" +
         ruleYaml;
}

}  // namespace

TEST_CASE("failover retries connect failures on another endpoint; failfast does not", "[retry]") {
  FakeUpstream up;
  TetherProcess failover(basicBootstrap(
      up.port(),
      rules(up, "            retry: { attempts: 2, retryOn: [ connect-failure ] }\n", true)));
  REQUIRE(failover.started());
  for (int i = 0; i < 20; ++i) {
    CHECK(httpRequest(failover.port("outbound"), "GET", "/echo", "up").status == 200);
  }
  std::string m = adminGet(failover.adminPort(), "/metrics").body;
  CHECK(metricValue(m, "tether_retries_total", "service=\"up\"") >= 5);  // round robin: ~10
  CHECK(metricValue(m, "tether_upstream_requests_active", "service=\"up\"") == 0);

  TetherProcess failfast(basicBootstrap(
      up.port(), rules(up,
                       "            retry: { attempts: 2, retryOn: [ connect-failure ] }\n"
                       "            onFailure: failfast\n",
                       true)));
  REQUIRE(failfast.started());
  int failed = 0;
  for (int i = 0; i < 20; ++i) {
    failed += httpRequest(failfast.port("outbound"), "GET", "/echo", "up").status == 502;
  }
  CHECK(failed == 10);  // smooth round robin alternates the dead and the live endpoint
}

TEST_CASE("status retries mark attempts; failsafe answers when they run out", "[retry]") {
  FakeUpstream up;
  TetherProcess t(basicBootstrap(
      up.port(), rules(up, "            retry: { attempts: 2, retryOn: [ \"503\" ] }\n")));
  REQUIRE(t.started());
  HttpResponse r = httpRequest(t.port("outbound"), "POST", "/status/503", "up", "payload");
  CHECK(r.status == 503);  // the last attempt's answer is passed on
  REQUIRE(up.requestCount() == 3);
  auto reqs = up.requests();
  CHECK(reqs[0].header("x-tether-attempt") == nullptr);
  CHECK(*reqs[1].header("x-tether-attempt") == "2");
  CHECK(*reqs[2].header("x-tether-attempt") == "3");
  CHECK(reqs[2].body == "payload");  // the body is replayed on every attempt

  // A request that an upstream sidecar already retried is not retried again here.
  up.clear();
  r = httpRequest(t.port("outbound"), "GET", "/status/503", "up", "", {{"X-Tether-Attempt", "2"}});
  CHECK(r.status == 503);
  CHECK(up.requestCount() == 1);

  FakeUpstream up2;
  TetherProcess safe(basicBootstrap(
      up2.port(),
      rules(up2,
            "            retry: { attempts: 1, retryOn: [ 5xx ] }\n"
            "            onFailure: failsafe\n"
            "            failsafe: { status: 200, body: \"{}\", headers: { content-type: "
            "application/json } }\n")));
  REQUIRE(safe.started());
  r = httpRequest(safe.port("outbound"), "GET", "/status/500", "up");
  CHECK(r.status == 200);
  CHECK(r.body == "{}");
  CHECK(*r.header("content-type") == "application/json");
  CHECK(*r.header("x-tether-reason") == "failsafe");
  CHECK(up2.requestCount() == 2);
  CHECK(httpRequest(safe.port("outbound"), "GET", "/echo", "up").status == 200);
}

TEST_CASE("per-try timeouts retry; the route timeout bounds them all", "[retry]") {
  FakeUpstream up;
  TetherProcess t(basicBootstrap(
      up.port(), rules(up,
                       "            timeout: 2s\n"
                       "            retry: { attempts: 1, perTryTimeout: 150ms, retryOn: "
                       "[ gateway-error ] }\n")));
  REQUIRE(t.started());
  auto start = std::chrono::steady_clock::now();
  HttpResponse r = httpRequest(t.port("outbound"), "GET", "/slow/1000", "up");
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(r.status == 504);
  CHECK(*r.header("x-tether-reason") == "upstream_timeout");
  CHECK(up.requestCount() == 2);
  CHECK(took >= std::chrono::milliseconds(290));
  CHECK(took < std::chrono::milliseconds(900));
}

TEST_CASE("deadlines propagate: spent budgets stop at the sidecar, short ones bound the wait",
          "[retry][deadline]") {
  FakeUpstream app;
  TetherProcess t(basicBootstrap(app.port(), rules(app, "")));
  REQUIRE(t.started());
  // Inbound with nothing left: 504 without disturbing the app.
  HttpResponse r =
      httpRequest(t.port("inbound"), "GET", "/echo", "app", "", {{"X-Tether-Timeout-Ms", "0"}});
  CHECK(r.status == 504);
  CHECK(*r.header("x-tether-reason") == "deadline_exceeded");
  CHECK(app.requestCount() == 0);
  // Inbound with budget: the app sees what is left.
  r = httpRequest(t.port("inbound"), "GET", "/echo", "app", "", {{"X-Tether-Timeout-Ms", "5000"}});
  CHECK(r.status == 200);
  int64_t seen = std::stoll(*app.lastRequest().header("x-tether-timeout-ms"));
  CHECK(seen <= 5000);
  CHECK(seen > 4000);
  // Outbound: the caller's 200 ms beats the 15 s route timeout.
  auto start = std::chrono::steady_clock::now();
  r = httpRequest(t.port("outbound"), "GET", "/slow/2000", "up", "",
                  {{"X-Tether-Timeout-Ms", "200"}});
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(r.status == 504);
  CHECK(*r.header("x-tether-reason") == "deadline_exceeded");
  CHECK(took < std::chrono::milliseconds(800));
  CHECK(std::stoll(*app.lastRequest().header("x-tether-timeout-ms")) <= 200);
  // Without a caller budget or a route timeout, nothing is invented for the next hop.
  CHECK(httpRequest(t.port("outbound"), "GET", "/echo", "up").status == 200);
  CHECK(app.lastRequest().header("x-tether-timeout-ms") == nullptr);
}

TEST_CASE("a deadline set at hop one expires at hop two first", "[retry][deadline]") {
  FakeUpstream app;
  TetherProcess hop2(basicBootstrap(app.port(), rules(app, "            timeout: 10s\n")));
  REQUIRE(hop2.started());
  std::string hop1Rules =
      "rules:\n  inline:\n"
      "    - apiVersion: tether.dev/v1alpha1\n      kind: Service\n"
      "      metadata: { name: mesh }\n"
      "      spec: { endpoints: [ { address: 127.0.0.1:" +
      std::to_string(hop2.port("outbound")) +
      " } ] }\n"
      "    - apiVersion: tether.dev/v1alpha1\n      kind: Route\n"
      "      metadata: { name: r }\n"
      "      spec: { hosts: [ up ], rules: [ { backends: [ { service: mesh } ], timeout: 300ms } "
      "] }\n";
  TetherProcess hop1(basicBootstrap(app.port(), hop1Rules));
  REQUIRE(hop1.started());
  auto start = std::chrono::steady_clock::now();
  HttpResponse r = httpRequest(hop1.port("outbound"), "GET", "/slow/2000", "up");
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(r.status == 504);
  CHECK(took < std::chrono::milliseconds(800));
  // Hop two got hop one's remaining budget, not its own 10 s, and gave up on it.
  CHECK(std::stoll(*app.lastRequest().header("x-tether-timeout-ms")) <= 300);
  std::string m2 = adminGet(hop2.adminPort(), "/metrics").body;
  CHECK(metricValue(m2, "tether_requests_total", "reason=\"deadline_exceeded\"") == 1);
}

TEST_CASE("the retry budget bounds retries to a dying upstream under load", "[retry][budget]") {
  // Every attempt hangs until its per-try timeout: 40 requests are in flight together, and
  // all want a retry at the same moment. The budget (20% of the requests in flight, at
  // least 3) lets about 8 retry; without it, 40 x 3 retries would pile onto the upstream.
  FakeUpstream up;
  TetherProcess t(basicBootstrap(
      up.port(), rules(up,
                       "            timeout: 10s\n"
                       "            retry: { attempts: 3, perTryTimeout: 300ms, retryOn: [ "
                       "gateway-error ], budgetPercent: 20 }\n")));
  REQUIRE(t.started());
  uint16_t port = t.port("outbound");
  constexpr int kRequests = 40;
  std::vector<std::thread> clients;
  std::atomic<int> timedOut{0};
  for (int i = 0; i < kRequests; ++i) {
    clients.emplace_back([&] {
      if (httpRequest(port, "GET", "/hang", "up").status == 504) timedOut++;
    });
  }
  for (auto& c : clients) c.join();
  CHECK(timedOut == kRequests);
  std::string m = adminGet(t.adminPort(), "/metrics").body;
  INFO(m);
  double exhausted = metricValue(m, "tether_retry_budget_exhausted_total", "service=\"up\"");
  double retries = metricValue(m, "tether_retries_total", "service=\"up\"");
  CHECK(exhausted >= kRequests / 2);
  // Attempts reaching the upstream: the first of each request plus the retries let through,
  // far below the 4 per request an unbounded policy would send.
  CHECK(up.requestCount() == static_cast<size_t>(kRequests + retries));
  CHECK(up.requestCount() <= static_cast<size_t>(kRequests * 2));
}
