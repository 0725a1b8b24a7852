// Protocol detection and raw TCP passthrough through the real binary: a Redis server from
// Debian, a server that speaks first, and HTTP beside them on the same listener.

#include <poll.h>

#include <catch2/catch.hpp>
#include <chrono>

#include "tests/fakes/fake_upstream.h"
#include "tests/integration/harness.h"

using namespace tether::test;

namespace {

/// A listener "mixed" on `listenPort` sending non-HTTP connections to Service "tcp" at
/// `tcpPort`; HTTP goes to the local app (`appPort`).
std::string mixedBootstrap(uint16_t appPort, uint16_t tcpPort, uint16_t listenPort = 0,
                           const std::string& detect = "") {
  return "admin: { address: 127.0.0.1:0 }\nworkers: 1\nlisteners:\n"
         "  - { name: mixed, address: 127.0.0.1:" +
         std::to_string(listenPort) + ", direction: inbound, tcpService: tcp" + detect +
         " }\n"
         "localApp: { address: 127.0.0.1:" +
         std::to_string(appPort) +
         " }\n"
         "rules:\n  inline:\n"
         "    - apiVersion: tether.dev/v1alpha1\n      kind: Service\n"
         "      metadata: { name: tcp }\n"
         "      spec: { endpoints: [ { address: 127.0.0.1:" +
         std::to_string(tcpPort) + " } ] }\n";
}

/// A server that greets first ("220 ready"), then echoes lines upper-cased.
const char* kBannerServer =
    "/usr/bin/python3 -c \"\n"
    "import socket, threading\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('127.0.0.1', 0)); s.listen(16); print('PORT', s.getsockname()[1], flush=True)\n"
    "def serve(c):\n"
    "    c.sendall(b'220 ready\\\\r\\\\n')\n"
    "    while True:\n"
    "        d = c.recv(65536)\n"
    "        if not d: break\n"
    "        c.sendall(d.upper())\n"
    "    c.close()\n"
    "while True:\n"
    "    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()\n"
    "\"";

}  // namespace

TEST_CASE("raw TCP passthrough: Redis and HTTP share a listener", "[tcp]") {
  uint16_t redisPort = freePort();
  ChildProcess redis("redis-server --port " + std::to_string(redisPort) +
                     " --save '' --appendonly no --bind 127.0.0.1");
  REQUIRE(!redis.waitFor("Ready to accept connections").empty());
  FakeUpstream app;
  TetherProcess t(mixedBootstrap(app.port(), redisPort));
  REQUIRE(t.started());
  std::string port = std::to_string(t.port("mixed"));
  std::string out;
  runCommand("redis-cli -p " + port + " set k hello && redis-cli -p " + port + " get k", &out,
             true);
  CHECK(out == "OK\nhello\n");
  // A 1 MiB value both ways, byte-exact.
  out.clear();
  runCommand("head -c 1048576 /dev/urandom | base64 -w0 > " + tempDir() + "/v && redis-cli -p " +
                 port + " -x set big < " + tempDir() + "/v >/dev/null && redis-cli -p " + port +
                 " --raw get big | head -c -1 | "
                 "cmp - " +
                 tempDir() + "/v && echo same",
             &out, true);
  CHECK(out == "same\n");
  // HTTP on the same listener still goes to the local app.
  CHECK(curl("http://127.0.0.1:" + port + "/x") == "ok\n");
  std::string metrics = adminGet(t.adminPort(), "/metrics").body;
  CHECK(metricValue(metrics, "tether_downstream_protocol_total", "protocol=\"tcp\"") >= 3);
  CHECK(metricValue(metrics, "tether_downstream_protocol_total", "protocol=\"http1\"") >= 1);
  CHECK(metricValue(metrics, "tether_tcp_received_bytes_total") > 1048576);
  CHECK(metricValue(metrics, "tether_tcp_sent_bytes_total") > 1048576);
}

TEST_CASE("a server that speaks first is not stalled by detection", "[tcp]") {
  ChildProcess banner(kBannerServer);
  std::string bp = banner.waitFor("PORT (\\d+)");
  REQUIRE(!bp.empty());
  FakeUpstream app;
  uint16_t skipped = freePort();
  SECTION("detect timeout (100 ms by default)") {
    TetherProcess t(mixedBootstrap(app.port(), static_cast<uint16_t>(std::stoi(bp))));
    REQUIRE(t.started());
    RawClient c(t.port("mixed"));
    auto start = std::chrono::steady_clock::now();
    pollfd p{c.fd(), POLLIN, 0};
    REQUIRE(poll(&p, 1, 3000) == 1);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - start)
                  .count();
    CHECK(ms >= 90);  // detection waited for the client...
    CHECK(ms < 600);  // ...for about 100 ms, then let the server speak
    CHECK(c.readAll(300) == "220 ready\r\n");
    c.send("hello\n");
    CHECK(c.readAll(500) == "HELLO\n");
    std::string metrics = adminGet(t.adminPort(), "/metrics").body;
    CHECK(metricValue(metrics, "tether_downstream_protocol_total", "protocol=\"tcp_timeout\"") ==
          1);
    CHECK(metricValue(metrics, "tether_protocol_detection_duration_seconds_count") == 1);
  }
  SECTION("a skipped port goes straight to TCP") {
    TetherProcess t(mixedBootstrap(
        app.port(), static_cast<uint16_t>(std::stoi(bp)), skipped,
        ", detect: { timeout: 5s, skipPorts: [ " + std::to_string(skipped) + " ] }"));
    REQUIRE(t.started());
    RawClient c(skipped);
    CHECK(c.readAll(800) == "220 ready\r\n");
    std::string metrics = adminGet(t.adminPort(), "/metrics").body;
    CHECK(metricValue(metrics, "tether_downstream_protocol_total", "protocol=\"tcp_skip_port\"") ==
          1);
  }
}
