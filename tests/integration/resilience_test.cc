// Rate limits, circuit breakers and service limits through the real binary, driven by
// h2load and curl against the fake origin.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <latch>
#include <mutex>
#include <regex>
#include <thread>

#include "tests/fakes/fake_upstream.h"
#include "tests/integration/harness.h"

using namespace tether::test;

namespace {

/// "N 2xx" and "M 4xx" counts from an h2load run.
std::pair<int, int> statusCounts(const std::string& out) {
  std::smatch m;
  std::regex re(R"(status codes: (\d+) 2xx, \d+ 3xx, (\d+) 4xx)");
  if (!std::regex_search(out, m, re)) return {-1, -1};
  return {std::stoi(m[1]), std::stoi(m[2])};
}

}  // namespace

TEST_CASE(
    "a token bucket of 100/s + 20 holds 1,000/s to 1,020 in 10 s; another caller is "
    "not limited",
    "[resilience][slow]") {
  FakeUpstream app;
  TetherProcess t(basicBootstrap(app.port(), "", 2) + "rules:\n  inline:\n" +
                  doc("RateLimit", "per-caller",
                      "{ target: { direction: inbound }, algorithm: token_bucket, limit: 100, "
                      "per: 1s, burst: 20, key: caller }"));
  REQUIRE(t.started());
  std::string url = "http://127.0.0.1:" + std::to_string(t.port("inbound")) + "/x";
  std::string loud, quiet;
  std::thread other([&] {
    runCommand("h2load --h1 -c1 --rps 20 -D 10 -H 'x-tether-caller: quiet' " + url, &quiet, true);
  });
  runCommand("h2load --h1 -c4 --rps 250 -D 10 -H 'x-tether-caller: loud' " + url, &loud, true);
  other.join();
  auto [ok, limited] = statusCounts(loud);
  INFO(loud);
  CHECK(ok >= 1010);
  CHECK(ok <= 1030);
  CHECK(limited > 8500);
  auto [quietOk, quietLimited] = statusCounts(quiet);
  INFO(quiet);
  CHECK(quietOk >= 190);
  CHECK(quietLimited == 0);
  // The rejection carries the contract's headers: 40 requests on one connection, more than
  // the burst.
  std::string urls;
  for (int i = 0; i < 40; ++i) urls += " " + url;
  std::string r = curl("-i -H 'x-tether-caller: loud'" + urls);
  CHECK(r.find("HTTP/1.1 429") != std::string::npos);
  CHECK(r.find("retry-after: 1") != std::string::npos);
  CHECK(r.find("ratelimit-policy: 100;w=1") != std::string::npos);
  CHECK(r.find("ratelimit: limit=100, remaining=0") != std::string::npos);
  CHECK(r.find("x-tether-reason: rate_limited") != std::string::npos);
}

TEST_CASE("leaky bucket pacing spreads requests without blocking the worker", "[resilience]") {
  FakeUpstream app;
  TetherProcess t(routedBootstrap(app.port()) +
                  doc("RateLimit", "paced",
                      "{ target: { route: up, pathPrefix: /paced }, algorithm: leaky_bucket, "
                      "limit: 10, per: 1s, maxQueueTime: 2s }"));
  REQUIRE(t.started());
  uint16_t port = t.port("outbound");
  // 8 requests at once on one worker (in-process clients: no process start in the timings):
  // slots 100 ms apart, the last ~700 ms late.
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  std::vector<double> done(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      httpRequest(port, "GET", "/paced", "up");
      done[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    });
  }
  // Meanwhile another route answers at once: the waiting is on timers, not the loop (a
  // loop blocked by the pacing would hold it for several 100 ms slots).
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto t0 = std::chrono::steady_clock::now();
  CHECK(httpRequest(port, "GET", "/other", "up").body == "ok\n");
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(250));
  for (auto& th : threads) th.join();
  std::sort(done.begin(), done.end());
  CHECK(done.front() < 0.25);
  CHECK(done.back() > 0.6);
  CHECK(done.back() < 1.5);
  // Beyond maxQueueTime: refused.
  threads.clear();
  std::atomic<int> refused{0};
  for (int i = 0; i < 30; ++i) {
    threads.emplace_back([&] {
      if (httpRequest(port, "GET", "/paced", "up").status == 429) refused++;
    });
  }
  for (auto& th : threads) th.join();
  CHECK(refused >= 5);
}

TEST_CASE("a breaker opens on 50% errors, probes, and ramps back", "[resilience]") {
  FakeUpstream app;
  // The open duration (2 s, +-20% jitter) is far longer than the 41 requests below take from
  // this process, however busy the machine: each phase is driven by what the breaker
  // answers, not by how long the client takes.
  TetherProcess t(routedBootstrap(app.port()) +
                  doc("CircuitBreaker", "up-cb",
                      "{ target: { service: up }, strategy: error_ratio, threshold: 0.5, "
                      "window: 10s, minRequests: 20, openDuration: 2s, halfOpenProbes: 3, "
                      "recovery: { step: 50%, interval: 400ms } }"));
  REQUIRE(t.started());
  uint16_t port = t.port("outbound");
  auto get = [port](const std::string& path) { return httpRequest(port, "GET", path, "up"); };
  int open = 0;
  for (int i = 0; i < 40; ++i) {
    if (get(i % 2 ? "/status/200" : "/status/500").status == 503) ++open;
  }
  CHECK(open >= 19);  // open after 20 requests: the rest are refused without reaching it
  HttpResponse r = get("/status/200");
  CHECK(r.status == 503);
  CHECK((r.header("x-tether-reason") && *r.header("x-tether-reason") == "circuit_open"));
  CHECK(r.header("retry-after"));
  // A gRPC caller gets the refusal as a trailers-only UNAVAILABLE (14).
  r = httpRequest(port, "POST", "/pkg.Svc/Method", "up", "",
                  {{"content-type", "application/grpc"}, {"te", "trailers"}});
  CHECK(r.status == 200);
  CHECK((r.header("grpc-status") && *r.header("grpc-status") == "14"));
  CHECK((r.header("x-tether-reason") && *r.header("x-tether-reason") == "circuit_open"));
  size_t reached = app.requestCount();
  CHECK(reached == 40 - static_cast<size_t>(open));
  // Half-open once the open duration passes: the first request admitted is a probe.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  bool probed = false;
  while (!probed && std::chrono::steady_clock::now() < deadline) {
    probed = get("/status/200").status == 200;
    if (!probed) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(probed);
  // Two more probes pass, then the ramp admits 50%, then everything: sent back to back
  // until the breaker reports closed.
  int ok = 1, refused = 0;
  std::string metrics;
  while (std::chrono::steady_clock::now() < deadline) {
    (get("/status/200").status == 200 ? ok : refused)++;
    if (ok + refused < 20 || (ok + refused) % 10 != 0) continue;
    metrics = adminGet(t.adminPort(), "/metrics").body;
    if (metricValue(metrics, "tether_circuit_transitions_total",
                    "from=\"recovering\",rule=\"up-cb\",to=\"closed\"") == 1) {
      break;
    }
  }
  // Closed now: the next ones all pass.
  for (int i = 0; i < 10; ++i) CHECK(get("/status/200").status == 200);
  CHECK(ok > 10);
  CHECK(refused > 0);  // some refused during the 50% step
  CHECK(app.requestCount() > reached);
  metrics = adminGet(t.adminPort(), "/metrics").body;
  CHECK(metricValue(metrics, "tether_circuit_state", "rule=\"up-cb\"") == 0);
  for (const char* edge : {"from=\"closed\",rule=\"up-cb\",to=\"open\"",
                           "from=\"open\",rule=\"up-cb\",to=\"half_open\"",
                           "from=\"half_open\",rule=\"up-cb\",to=\"recovering\"",
                           "from=\"recovering\",rule=\"up-cb\",to=\"closed\""}) {
    INFO(edge);
    CHECK(metricValue(metrics, "tether_circuit_transitions_total", edge) == 1);
  }
  CHECK(metricValue(metrics, "tether_requests_total", "reason=\"circuit_open\"") > 0);
}

TEST_CASE("a perEndpoint breaker takes the failing endpoint out, and refuses only when all are out",
          "[resilience]") {
  FakeUpstream good, bad;
  bad.setForcedStatus(500);
  auto endpoint = [](const FakeUpstream& u) { return "127.0.0.1:" + std::to_string(u.port()); };
  TetherProcess t(
      basicBootstrap(good.port()) + "rules:\n  inline:\n" +
      doc("Service", "pair",
          "{ endpoints: [ { address: " + endpoint(good) + " }, { address: " + endpoint(bad) +
              " } ] }") +
      doc("Route", "pair", "{ hosts: [ pair ], rules: [ { backends: [ { service: pair } ] } ] }") +
      doc("CircuitBreaker", "pair-endpoints",
          "{ target: { service: pair }, perEndpoint: true, strategy: error_ratio, "
          "threshold: 0.5, window: 10s, minRequests: 5, openDuration: 30s }"));
  REQUIRE(t.started());
  std::string url = "-o /dev/null -w '%{http_code}' -H 'Host: pair' http://127.0.0.1:" +
                    std::to_string(t.port("outbound")) + "/";
  // Round robin: the bad endpoint answers 500 five times, then its breaker opens.
  int failures = 0;
  for (int i = 0; i < 10; ++i) failures += curl(url) == "500";
  CHECK(failures == 5);
  size_t badBefore = bad.requestCount();
  int ok = 0;
  for (int i = 0; i < 20; ++i) ok += curl(url) == "200";
  CHECK(ok == 20);  // the good endpoint serves everything; nothing is refused
  CHECK(bad.requestCount() == badBefore);
  std::string metrics = adminGet(t.adminPort(), "/metrics").body;
  CHECK(metricValue(metrics, "tether_circuit_state",
                    "endpoint=\"" + endpoint(bad) + "\",rule=\"pair-endpoints\"") == 1);
  CHECK(metricValue(metrics, "tether_circuit_state",
                    "endpoint=\"" + endpoint(good) + "\",rule=\"pair-endpoints\"") == 0);
  // Now the other endpoint fails too: once its failures reach half of its window (25
  // successes so far, so 25 failures), its breaker opens and requests are refused.
  good.setForcedStatus(500);
  int served = 0;
  while (served < 60 && curl(url) == "500") ++served;
  CHECK(served == 25);
  std::string r =
      curl("-i -H 'Host: pair' http://127.0.0.1:" + std::to_string(t.port("outbound")) + "/");
  CHECK(r.find("HTTP/1.1 503") != std::string::npos);
  CHECK(r.find("x-tether-reason: circuit_open") != std::string::npos);
}

TEST_CASE("a stalled upstream: the request past maxPendingRequests gets 503 overflow at once",
          "[resilience]") {
  // A listening socket nobody accepts from: one connection waits in the backlog, the next
  // connects hang.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  REQUIRE(::listen(fd, 0) == 0);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  FakeUpstream app;
  TetherProcess t(basicBootstrap(app.port(), "upstream: { connectTimeout: 5s }\n") +
                  "rules:\n  inline:\n" +
                  doc("Service", "stalled",
                      "{ limits: { maxPendingRequests: 3 }, endpoints: [ { address: 127.0.0.1:" +
                          std::to_string(ntohs(a.sin_port)) + " } ] }") +
                  doc("Route", "stalled",
                      "{ hosts: [ stalled ], rules: [ { backends: [ { service: stalled } ], "
                      "timeout: 4s } ] }"));
  REQUIRE(t.started());
  std::string url = "-H 'Host: stalled' http://127.0.0.1:" + std::to_string(t.port("outbound"));
  std::vector<std::thread> waiting;
  for (int i = 0; i < 6; ++i) {
    waiting.emplace_back([&] { curl("-o /dev/null --max-time 3 " + url + "/"); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // curl's own clock, from before it connects to the last byte: no process start-up in it.
  std::string r = curl("-i -w 'TOOK %{time_total}' " + url + "/");
  CHECK(r.find("HTTP/1.1 503") != std::string::npos);
  CHECK(r.find("x-tether-reason: overflow") != std::string::npos);
  size_t took = r.rfind("TOOK ");
  REQUIRE(took != std::string::npos);
  INFO(r);
  // At once, rather than after the wait in line (up to the 4 s route timeout): the margin
  // is wide so that a busy machine's scheduling cannot fail the test.
  CHECK(std::stod(r.substr(took + 5)) < 1.0);
  for (auto& th : waiting) th.join();
  ::close(fd);
}

TEST_CASE("limits.maxConnections: requests beyond it wait in line for a pooled connection",
          "[resilience]") {
  FakeUpstream slow;
  TetherProcess t(basicBootstrap(slow.port()) + "rules:\n  inline:\n" +
                  doc("Service", "narrow",
                      "{ limits: { maxConnections: 2 }, endpoints: [ { address: 127.0.0.1:" +
                          std::to_string(slow.port()) + " } ] }") +
                  doc("Route", "narrow",
                      "{ hosts: [ narrow ], rules: [ { backends: [ { service: narrow } ] } ] }"));
  REQUIRE(t.started());
  std::string url =
      "-H 'Host: narrow' http://127.0.0.1:" + std::to_string(t.port("outbound")) + "/slow/300";
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      if (curl("-o /dev/null -w '%{http_code}' " + url) == "200") ok++;
    });
  }
  for (auto& th : threads) th.join();
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(ok == 6);
  // Two connections carried the six requests, two at a time: three rounds of 300 ms.
  CHECK(slow.connections() == 2);
  CHECK(took >= std::chrono::milliseconds(850));
  std::string metrics = adminGet(t.adminPort(), "/metrics").body;
  CHECK(metricValue(metrics, "tether_upstream_connections_overflow_total", "service=\"narrow\"") ==
        4);
}

TEST_CASE("limits.maxConnections with maxPendingRequests: the line is bounded too",
          "[resilience]") {
  FakeUpstream slow;
  TetherProcess t(basicBootstrap(slow.port()) + "rules:\n  inline:\n" +
                  doc("Service", "narrow",
                      "{ limits: { maxConnections: 1, maxPendingRequests: 2 }, endpoints: [ { "
                      "address: 127.0.0.1:" +
                          std::to_string(slow.port()) + " } ] }") +
                  doc("Route", "narrow",
                      "{ hosts: [ narrow ], rules: [ { backends: [ { service: narrow } ] } ] }"));
  REQUIRE(t.started());
  // Four requests, in-process (no client start-up to wait for), each taking a second
  // upstream: one gets the connection, two wait in line, the line is full for the fourth.
  // Which of the last three is refused depends on arrival order; that exactly one is, at
  // once (before any answer could have come from the upstream), and the others are
  // served on the one connection, does not.
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_unique<RawClient>(t.port("outbound")));
    REQUIRE(clients.back()->send("GET /slow/1000 HTTP/1.1\r\nHost: narrow\r\n\r\n"));
    if (i == 0) REQUIRE(waitUntil([&] { return slow.requestCount() == 1; }));
  }
  std::vector<pollfd> fds;
  for (int i = 1; i < 4; ++i) fds.push_back({clients[i]->fd(), POLLIN, 0});
  REQUIRE(::poll(fds.data(), fds.size(), 5000) > 0);
  int first = -1, readable = 0;
  for (int i = 0; i < 3; ++i) {
    if (fds[i].revents & POLLIN) {
      first = i + 1;
      ++readable;
    }
  }
  CHECK(readable == 1);  // the refusal came alone: the upstream has not answered anyone yet
  HttpResponse refused;
  REQUIRE(clients[first]->readResponse(refused));
  CHECK(refused.status == 503);
  CHECK((refused.header("x-tether-reason") && *refused.header("x-tether-reason") == "overflow"));
  int ok = 0;
  for (int i = 0; i < 4; ++i) {
    if (i == first) continue;
    HttpResponse r;
    if (clients[i]->readResponse(r, false, 10000) && r.status == 200) ++ok;
  }
  CHECK(ok == 3);
  CHECK(slow.connections() == 1);
}

TEST_CASE("a ConcurrencyLimit per caller: one caller's surge is refused, another is served",
          "[resilience]") {
  FakeUpstream app;
  TetherProcess t(basicBootstrap(app.port(), "", 2) + "rules:\n  inline:\n" +
                  doc("ConcurrencyLimit", "per-caller",
                      "{ target: { direction: inbound }, maxConcurrency: 2, key: caller }"));
  REQUIRE(t.started());
  std::string url = "http://127.0.0.1:" + std::to_string(t.port("inbound")) + "/slow/600";
  std::atomic<int> surgeOk{0}, surgeRefused{0}, otherOk{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      std::string code = curl("-o /dev/null -w '%{http_code}' -H 'x-tether-caller: surge' " + url);
      (code == "200" ? surgeOk : surgeRefused)++;
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&] {
      if (curl("-o /dev/null -w '%{http_code}' -H 'x-tether-caller: calm' " + url) == "200") {
        otherOk++;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(surgeOk == 2);
  CHECK(surgeRefused == 4);
  CHECK(otherOk == 2);
  // The slots are back once the requests ended.
  CHECK(curl("-o /dev/null -w '%{http_code}' -H 'x-tether-caller: surge' " + url) == "200");
  std::string metrics = adminGet(t.adminPort(), "/metrics").body;
  CHECK(metricValue(metrics, "tether_requests_total", "code=\"503\"") == 4);
}

TEST_CASE("gRPC callers get RESOURCE_EXHAUSTED from a rate limit", "[resilience][grpc]") {
  ChildProcess server("/usr/bin/python3 " TETHER_SOURCE_DIR
                      "/tests/integration/grpc_peer.py server");
  std::string port = server.waitFor("PORT (\\d+)");
  REQUIRE(!port.empty());
  FakeUpstream app;
  TetherProcess t(
      basicBootstrap(app.port()) + "rules:\n  inline:\n" +
      doc("Service", "grpc",
          "{ protocol: http2, endpoints: [ { address: 127.0.0.1:" + port + " } ] }") +
      doc("Route", "grpc", "{ hosts: [ grpc ], rules: [ { backends: [ { service: grpc } ] } ] }") +
      doc("RateLimit", "one-per-minute",
          "{ target: { service: grpc }, limit: 1, per: 60s, burst: 1 }"));
  REQUIRE(t.started());
  std::string peer = "/usr/bin/python3 " TETHER_SOURCE_DIR
                     "/tests/integration/grpc_peer.py status " +
                     std::to_string(t.port("outbound")) + " grpc";
  std::string first, second;
  runCommand(peer, &first, true);
  runCommand(peer, &second, true);
  CHECK(first == "OK\n");
  CHECK(second.rfind("RESOURCE_EXHAUSTED rate limited", 0) == 0);
}

TEST_CASE("OpenSergo rules are enforced as written", "[resilience][opensergo]") {
  FakeUpstream app;
  TetherProcess t(basicBootstrap(app.port(), "node: { service: foo-app }\n") +
                  "rules:\n  files: [ \"" TETHER_FIXTURES_DIR "/opensergo.yaml\" ]\n");
  REQUIRE(t.started());
  std::string urls;
  for (int i = 0; i < 30; ++i) {
    urls += " http://127.0.0.1:" + std::to_string(t.port("inbound")) + "/foo";
  }
  std::string out = curl("-i" + urls);
  // 10 per second pass (the sliding window), the rest get the fallback.
  size_t passed = 0, pos = 0;
  while ((pos = out.find("HTTP/1.1 200", pos)) != std::string::npos) ++passed, ++pos;
  CHECK(passed == 10);
  CHECK(out.find("HTTP/1.1 429") != std::string::npos);
  CHECK(out.find("Blocked by Sentinel") != std::string::npos);
  CHECK(out.find("x-sentinel-limit: foo") != std::string::npos);
  // Other paths are not limited.
  CHECK(curl("-o /dev/null -w '%{http_code}' http://127.0.0.1:" +
             std::to_string(t.port("inbound")) + "/other") == "200");
}

TEST_CASE(
    "a global limit is shared by two sidecars through Redis, and falls back locally "
    "when Redis stops",
    "[resilience][redis][slow]") {
  uint16_t redisPort = freePort();
  auto redis = std::make_unique<ChildProcess>("redis-server --port " + std::to_string(redisPort) +
                                              " --save '' --appendonly no --bind 127.0.0.1");
  REQUIRE(!redis->waitFor("Ready to accept connections").empty());
  FakeUpstream app;
  std::string conf = basicBootstrap(app.port()) +
                     "redis: { address: 127.0.0.1:" + std::to_string(redisPort) +
                     ", timeout: 100ms }\nrules:\n  inline:\n" +
                     doc("RateLimit", "global-qps",
                         "{ target: { direction: inbound }, limit: 100, per: 1s, burst: 20, "
                         "mode: global, localFallbackLimit: 10 }");
  TetherProcess a(conf), b(conf);
  REQUIRE(a.started());
  REQUIRE(b.started());
  auto url = [](TetherProcess& t) {
    return "http://127.0.0.1:" + std::to_string(t.port("inbound")) + "/x";
  };
  // Warm both connections to Redis (the first request connects).
  curl(url(a));
  curl(url(b));
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  std::string outA, outB;
  std::thread other([&] { runCommand("h2load --h1 -c2 --rps 125 -D 5 " + url(b), &outB, true); });
  runCommand("h2load --h1 -c2 --rps 125 -D 5 " + url(a), &outA, true);
  other.join();
  int okA = statusCounts(outA).first, okB = statusCounts(outB).first;
  INFO(outA << outB);
  // 500 requests/s offered in all against 100/s + a burst of 20, for 5 s: 520 together.
  CHECK(okA + okB >= 510);
  CHECK(okA + okB <= 531);
  CHECK(okA > 0);  // both sidecars drew from the one bucket
  CHECK(okB > 0);
  // Redis goes away: each sidecar holds its local fallback (10/s + 10), and says so.
  redis.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::string out;
  runCommand("h2load --h1 -c2 --rps 125 -D 3 " + url(a), &out, true);
  int ok = statusCounts(out).first;
  INFO(out);
  CHECK(ok >= 30);
  CHECK(ok <= 50);
  std::string metrics = adminGet(a.adminPort(), "/metrics").body;
  CHECK(metricValue(metrics, "tether_rate_limit_fallback_total", "rule=\"global-qps\"") > 500);
}

TEST_CASE("global sliding_window, fixed_window and leaky_bucket limits are shared through Redis",
          "[resilience][redis]") {
  uint16_t redisPort = freePort();
  ChildProcess redis("redis-server --port " + std::to_string(redisPort) +
                     " --save '' --appendonly no --bind 127.0.0.1");
  REQUIRE(!redis.waitFor("Ready to accept connections").empty());
  FakeUpstream app;
  std::string conf = basicBootstrap(app.port()) +
                     "redis: { address: 127.0.0.1:" + std::to_string(redisPort) +
                     ", timeout: 500ms }\nrules:\n  inline:\n" +
                     doc("RateLimit", "sw",
                         "{ target: { direction: inbound, pathPrefix: /sw }, limit: 10, per: 5s, "
                         "algorithm: sliding_window, mode: global, localFallbackLimit: 1000 }") +
                     doc("RateLimit", "lb",
                         "{ target: { direction: inbound, pathPrefix: /lb }, limit: 20, per: 1s, "
                         "algorithm: leaky_bucket, maxQueueTime: 500ms, mode: global, "
                         "localFallbackLimit: 1000 }") +
                     doc("RateLimit", "fw",
                         "{ target: { direction: inbound, pathPrefix: /fw }, limit: 10, per: 1h, "
                         "algorithm: fixed_window, mode: global, localFallbackLimit: 1000 }");
  TetherProcess a(conf), b(conf);
  REQUIRE(a.started());
  REQUIRE(b.started());
  // Connect both sidecars to Redis first (the first request connects; it is not limited).
  httpRequest(a.port("inbound"), "GET", "/warm");
  httpRequest(b.port("inbound"), "GET", "/warm");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));

  // Sliding window: 10 per 5 s across both sidecars, exactly. The 24 requests come from this
  // process, back to back: far inside the window.
  int passed = 0;
  auto swStart = std::chrono::steady_clock::now();
  for (int i = 0; i < 12; ++i) {
    for (TetherProcess* t : {&a, &b}) {
      if (httpRequest(t->port("inbound"), "GET", "/sw").status == 200) ++passed;
    }
  }
  REQUIRE(std::chrono::steady_clock::now() - swStart < std::chrono::seconds(4));
  CHECK(passed == 10);

  // Fixed window (an hour, on Redis's clock): 10 across both sidecars, the rest refused.
  passed = 0;
  for (int i = 0; i < 12; ++i) {
    for (TetherProcess* t : {&a, &b}) {
      if (httpRequest(t->port("inbound"), "GET", "/fw").status == 200) ++passed;
    }
  }
  CHECK(passed == 10);
  CHECK(metricValue(adminGet(a.adminPort(), "/metrics").body, "tether_rate_limit_fallback_total",
                    "rule=\"fw\"") <= 0);

  // Leaky bucket: 20/s paces admitted requests 50 ms apart, for at most 500 ms of queue.
  // 30 connections are opened first, then each sends its request when all are ready: of 30
  // arriving at once, 11 pass (slots 0, 50, ..., 500 ms) and the rest are refused at once. A
  // request sent d ms after the first finds d ms of the line gone, so the bound allows one
  // more per 50 ms of measured spread between the first and the last send. What must hold
  // in any case is the pace: each admitted request has a slot of its own, 50 ms after the
  // one before, shared by both sidecars, so the k-th to finish cannot finish before k
  // slots have passed.
  std::mutex mu;
  std::vector<double> okAfterMs, sentAtMs;
  int refused = 0;
  std::vector<std::thread> threads;
  std::latch ready(30);
  auto start = std::chrono::steady_clock::now();
  auto sinceStart = [&start] {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
        .count();
  };
  for (int i = 0; i < 30; ++i) {
    threads.emplace_back([&, i] {
      RawClient c((i % 2 ? a : b).port("inbound"));
      ready.arrive_and_wait();
      double sent = sinceStart();
      c.send("GET /lb HTTP/1.1\r\nHost: localhost\r\n\r\n");
      HttpResponse r;
      bool got = c.readResponse(r, false, 10000);
      double ms = sinceStart();
      std::lock_guard<std::mutex> lock(mu);
      sentAtMs.push_back(sent);
      if (got && r.status == 200) {
        okAfterMs.push_back(ms);
      } else if (got && r.status == 429) {
        ++refused;
      }
    });
  }
  for (auto& th : threads) th.join();
  double spreadMs = *std::max_element(sentAtMs.begin(), sentAtMs.end()) -
                    *std::min_element(sentAtMs.begin(), sentAtMs.end());
  size_t allowed = 11 + static_cast<size_t>(std::ceil(spreadMs / 50.0));
  INFO("admitted " << okAfterMs.size() << ", refused " << refused << ", sends spread over "
                   << spreadMs << " ms");
  CHECK(okAfterMs.size() >= 11);
  CHECK(okAfterMs.size() <= allowed);
  CHECK(okAfterMs.size() + static_cast<size_t>(refused) == 30);
  std::sort(okAfterMs.begin(), okAfterMs.end());
  for (size_t k = 1; k < okAfterMs.size(); ++k) {
    INFO("admitted #" << k << " finished after " << okAfterMs[k] << " ms");
    CHECK(okAfterMs[k] >= 45.0 * static_cast<double>(k));
  }
  std::string metrics = adminGet(a.adminPort(), "/metrics").body;
  CHECK(metricValue(metrics, "tether_rate_limit_fallback_total", "rule=\"lb\"") == 0);
  CHECK(metricValue(metrics, "tether_rate_limit_fallback_total", "rule=\"sw\"") == 0);
}

TEST_CASE("a sidecar does not retry what another Tether refused with rate_limited",
          "[resilience]") {
  FakeUpstream app;
  TetherProcess callee(
      basicBootstrap(app.port()) + "rules:\n  inline:\n" +
      doc("RateLimit", "one", "{ target: { direction: inbound }, limit: 1, per: 60s, burst: 1 }"));
  REQUIRE(callee.started());
  FakeUpstream unused;
  TetherProcess caller(basicBootstrap(unused.port()) + "rules:\n  inline:\n" +
                       doc("Service", "callee",
                           "{ endpoints: [ { address: 127.0.0.1:" +
                               std::to_string(callee.port("inbound")) + " } ] }") +
                       doc("Route", "callee",
                           "{ hosts: [ callee ], rules: [ { backends: [ { service: callee } ], "
                           "retry: { attempts: 2, retryOn: [ \"429\", \"5xx\" ] } } ] }"));
  REQUIRE(caller.started());
  std::string url = "-H 'Host: callee' http://127.0.0.1:" + std::to_string(caller.port("outbound"));
  CHECK(curl("-o /dev/null -w '%{http_code}' " + url + "/x") == "200");
  std::string r = curl("-i " + url + "/x");
  CHECK(r.find("HTTP/1.1 429") != std::string::npos);
  CHECK(r.find("x-tether-reason: rate_limited") != std::string::npos);
  std::string calleeMetrics = adminGet(callee.adminPort(), "/metrics").body;
  CHECK(metricValue(calleeMetrics, "tether_requests_total", "code=\"429\"") == 1);
  std::string callerMetrics = adminGet(caller.adminPort(), "/metrics").body;
  CHECK(metricValue(callerMetrics, "tether_retries_total", "service=\"callee\"") <= 0);
}

TEST_CASE("limits.maxRequests and maxRetries bound a service; gRPC callers get UNAVAILABLE",
          "[resilience][grpc]") {
  FakeUpstream app;
  TetherProcess t(basicBootstrap(app.port()) + "rules:\n  inline:\n" +
                  doc("Service", "small",
                      "{ limits: { maxRequests: 2, maxRetries: 0 }, endpoints: [ { address: "
                      "127.0.0.1:" +
                          std::to_string(app.port()) + " } ] }") +
                  doc("Route", "small",
                      "{ hosts: [ small ], rules: [ { backends: [ { service: small } ], "
                      "retry: { attempts: 2, retryOn: [ \"503\" ] } } ] }"));
  REQUIRE(t.started());
  uint16_t port = t.port("outbound");
  // Two requests in flight fill maxRequests: the third is refused at once.
  std::vector<std::thread> slow;
  for (int i = 0; i < 2; ++i) {
    slow.emplace_back([&] { httpRequest(port, "GET", "/slow/1500", "small"); });
  }
  REQUIRE(waitUntil([&] { return app.requestCount() == 2; }, 3000));
  HttpResponse r = httpRequest(port, "GET", "/x", "small");
  CHECK(r.status == 503);
  CHECK((r.header("x-tether-reason") && *r.header("x-tether-reason") == "overflow"));
  // The same refusal for a gRPC caller: a trailers-only UNAVAILABLE (14).
  r = httpRequest(port, "POST", "/pkg.Svc/Method", "small", "",
                  {{"content-type", "application/grpc"}, {"te", "trailers"}});
  CHECK(r.status == 200);
  CHECK((r.header("grpc-status") && *r.header("grpc-status") == "14"));
  CHECK((r.header("x-tether-reason") && *r.header("x-tether-reason") == "overflow"));
  for (auto& th : slow) th.join();
  // maxRetries: 0 — the retry policy asks, the service limit refuses: one attempt only.
  size_t before = app.requestCount();
  CHECK(httpRequest(port, "GET", "/status/503", "small").status == 503);
  CHECK(app.requestCount() == before + 1);
  CHECK(metricValue(adminGet(t.adminPort(), "/metrics").body, "tether_retry_budget_exhausted_total",
                    "service=\"small\"") == 1);
}
