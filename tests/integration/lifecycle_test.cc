// SIGTERM drain (docs/design.md, "Lifecycle"): in-flight requests finish, nothing is lost, exit 0.

#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <future>
#include <thread>

#include "tests/fakes/fake_upstream.h"
#include "tests/integration/harness.h"

using namespace tether::test;

TEST_CASE("SIGTERM drains in-flight requests and exits 0", "[lifecycle]") {
  FakeUpstream app;
  TetherProcess t(basicBootstrap(app.port()));
  REQUIRE(t.started());
  uint16_t port = t.port("inbound");
  std::vector<std::future<HttpResponse>> inflight;
  for (int i = 0; i < 8; ++i) {
    inflight.push_back(std::async(std::launch::async,
                                  [port] { return httpRequest(port, "GET", "/slow/800", "app"); }));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  t.signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(adminGet(t.adminPort(), "/ready").status == 503);
  for (auto& f : inflight) {
    HttpResponse r = f.get();
    CHECK(r.status == 200);
    // Responses finished during the drain tell the client to go away.
    REQUIRE(r.header("connection"));
    CHECK(*r.header("connection") == "close");
  }
  CHECK(t.wait(std::chrono::seconds(5)) == 0);
  CHECK(t.logs().find("tether stopped") != std::string::npos);
}

TEST_CASE("a request arriving during the grace period is still served", "[lifecycle]") {
  FakeUpstream app;
  TetherProcess t(basicBootstrap(app.port()));
  REQUIRE(t.started());
  t.signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  HttpResponse r = httpRequest(t.port("inbound"), "GET", "/echo", "app");
  CHECK(r.status == 200);
  CHECK(t.wait(std::chrono::seconds(5)) == 0);
}

TEST_CASE("a second SIGTERM exits at once", "[lifecycle]") {
  FakeUpstream app;
  TetherProcess t(basicBootstrap(app.port(), ""));
  REQUIRE(t.started());
  auto hung = std::async(std::launch::async,
                         [&] { return httpRequest(t.port("inbound"), "GET", "/hang", "app"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  t.signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(t.running());
  auto start = std::chrono::steady_clock::now();
  t.signal(SIGTERM);
  CHECK(t.wait(std::chrono::seconds(2)) == 0);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(1));
  hung.get();
}

TEST_CASE("the drain timeout bounds a request that never ends", "[lifecycle]") {
  FakeUpstream app;
  TetherProcess t(basicBootstrap(app.port(), "", 1, "1s"));
  REQUIRE(t.started());
  auto hung = std::async(std::launch::async,
                         [&] { return httpRequest(t.port("inbound"), "GET", "/hang", "app"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto start = std::chrono::steady_clock::now();
  t.signal(SIGTERM);
  CHECK(t.wait(std::chrono::seconds(5)) == 0);
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(took >= std::chrono::milliseconds(900));
  CHECK(took < std::chrono::seconds(3));
  CHECK(t.logs().find("drain timeout") != std::string::npos);
  // The request that never ended still got an answer, not a reset.
  HttpResponse r = hung.get();
  CHECK(r.status == 503);
  REQUIRE(r.header("x-tether-reason"));
  CHECK(*r.header("x-tether-reason") == "draining");
}

namespace {

// Keep-alive HTTP/1.1 clients that send requests back to back until the proxy tells them to
// go (connection: close) or closes. A request sent and never answered is lost.
struct KeepAliveLoad {
  std::atomic<int> answered{0}, lost{0}, refused{0};
  std::vector<std::thread> threads;

  KeepAliveLoad(uint16_t port, int connections) {
    for (int i = 0; i < connections; ++i) {
      threads.emplace_back([this, port] {
        RawClient c(port);
        if (!c.connected()) {
          ++refused;
          return;
        }
        for (;;) {
          if (!c.send("GET /echo HTTP/1.1\r\nHost: app\r\n\r\n")) {
            ++lost;
            return;
          }
          HttpResponse r;
          if (!c.readResponse(r, false, 10000)) {
            ++lost;
            return;
          }
          ++answered;
          const std::string* conn = r.header("connection");
          if (conn && *conn == "close") return;
        }
      });
    }
  }
  void join() {
    for (auto& t : threads) t.join();
  }
};

}  // namespace

TEST_CASE("draining loses no HTTP/1.1 request sent on a keep-alive connection", "[lifecycle]") {
  FakeUpstream app;
  TetherProcess t(basicBootstrap(app.port(), "", 2));
  REQUIRE(t.started());
  KeepAliveLoad load(t.port("inbound"), 32);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  t.signal(SIGTERM);
  load.join();
  CHECK(t.wait(std::chrono::seconds(10)) == 0);
  INFO("answered " << load.answered << ", lost " << load.lost);
  CHECK(load.answered > 32);
  CHECK(load.refused == 0);
  CHECK(load.lost == 0);
}

TEST_CASE("SIGTERM under HTTP/1.1 and HTTP/2 load exits cleanly when the grace ends",
          "[lifecycle][http2]") {
  // Streams that open on HTTP/2 connections after the listeners are gone must still find
  // their listener's settings (a use-after-free under ASan before). Several rounds: the
  // window is the moment the grace period ends.
  for (int round = 0; round < 3; ++round) {
    FakeUpstream app;
    TetherProcess t(basicBootstrap(app.port(), "", 2));
    REQUIRE(t.started());
    uint16_t port = t.port("inbound");
    ChildProcess h2load(
        "h2load -c 8 -m 16 -D 3 -H 'host: app' http://127.0.0.1:" + std::to_string(port) + "/echo");
    KeepAliveLoad load(port, 8);
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    t.signal(SIGTERM);
    load.join();
    CHECK(t.wait(std::chrono::seconds(10)) == 0);
    CHECK(t.logs().find("AddressSanitizer") == std::string::npos);
    CHECK(t.logs().find("tether stopped") != std::string::npos);
    CHECK(load.lost == 0);
  }
}

TEST_CASE("an unfinished admin request does not hold up the exit", "[lifecycle][admin]") {
  FakeUpstream app;
  TetherProcess t(basicBootstrap(app.port()));
  REQUIRE(t.started());
  // A scraper that hung mid-request (or a slowloris on the admin port).
  RawClient stuck(t.adminPort());
  REQUIRE(stuck.send("GET /metr"));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  t.signal(SIGTERM);
  CHECK(t.wait(std::chrono::seconds(5)) == 0);
  CHECK(stuck.waitClosed(1000));
}
