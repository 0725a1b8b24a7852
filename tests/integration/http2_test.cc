// HTTP/2 downstream (h2c with prior knowledge) through the real binary: real clients (curl,
// nghttp, h2load), frame-level RFC 9113 checks and floods from tests/integration/h2_probe.py.

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "tests/fakes/fake_upstream.h"
#include "tests/integration/harness.h"

using namespace tether::test;

namespace {

// `port`: a number, "h2:" and a number for a listener fixed to HTTP/2, or "tls:" and a number
// for h2 over TLS.
std::string probe(const std::string& port, const std::string& scenario, int* status = nullptr) {
  std::string out;
  int rc = runCommand("/usr/bin/python3 " TETHER_SOURCE_DIR "/tests/integration/h2_probe.py " +
                          port + " " + scenario,
                      &out, true);
  if (status) *status = rc;
  return out;
}

std::string h2url(uint16_t port, const std::string& path) {
  return "--http2-prior-knowledge -H 'Host: up' http://127.0.0.1:" + std::to_string(port) + path;
}

}  // namespace

TEST_CASE("h2c with prior knowledge: bodies both ways, byte-exact, beside HTTP/1.1", "[http2]") {
  FakeUpstream up;
  TetherProcess t(routedBootstrap(up.port()));
  REQUIRE(t.started());
  uint16_t port = t.port("outbound");

  // Download: 3 MB with Content-Length and 1 MB chunked with a trailer.
  std::string out = curl(h2url(port, "/bytes/3000000") + " | sha256sum");
  std::string expected;
  for (uint64_t i = 0; i < 3000000; ++i) expected += patternByte(i);
  CHECK(out.substr(0, 64) == sha256Hex(expected));
  out = curl("-o /dev/null -w '%{http_version} %{http_code} %{size_download}' " +
             h2url(port, "/chunked/1000000"));
  CHECK(out == "2 200 1000000");

  // Upload: 300 KB, checked by the origin's SHA-256 of what it received.
  std::string body(300000, 'q');
  writeFile("h2-upload.bin", body);
  out = curl("--data-binary @" + tempDir() + "/h2-upload.bin " + h2url(port, "/sha256"));
  CHECK(out == sha256Hex(body));
  RecordedRequest r = up.lastRequest();
  CHECK(r.method == "POST");
  CHECK(r.bodyLength == 300000);

  // The same listener still speaks HTTP/1.1 (detected by the first bytes).
  HttpResponse h1 = httpRequest(port, "GET", "/status/200", "up");
  CHECK(h1.status == 200);

  // nghttp: many concurrent streams on one connection.
  out.clear();
  int rc =
      runCommand("nghttp -n -s -m 20 -H ':authority: up' http://127.0.0.1:" + std::to_string(port) +
                     "/bytes/1000 | grep -c ' 200 '",
                 &out, true);
  CHECK(rc == 0);
  CHECK(out == "20\n");

  std::string metrics = adminGet(t.adminPort(), "/metrics").body;
  CHECK(metricValue(metrics, "tether_downstream_protocol_total", "protocol=\"http2\"") >= 4);
  CHECK(metricValue(metrics, "tether_downstream_protocol_total", "protocol=\"http1\"") >= 1);
  CHECK(metricValue(metrics, "tether_http2_streams_total") >= 23);
}

TEST_CASE("h2 local replies carry their reason; oversized headers get 431", "[http2]") {
  FakeUpstream up;
  TetherProcess t(routedBootstrap(up.port(), "http: { maxRequestHeadersBytes: 8192 }\n"));
  REQUIRE(t.started());
  uint16_t port = t.port("outbound");
  std::string out = curl("-i --http2-prior-knowledge -H 'Host: nowhere' http://127.0.0.1:" +
                         std::to_string(port) + "/");
  CHECK(out.find("HTTP/2 404") != std::string::npos);
  CHECK(out.find("x-tether-reason: no_route") != std::string::npos);
  out = curl("-i --http2-prior-knowledge -H 'Host: dead' http://127.0.0.1:" + std::to_string(port) +
             "/");
  CHECK(out.find("HTTP/2 502") != std::string::npos);
  CHECK(out.find("x-tether-reason: upstream_connect_failure") != std::string::npos);
  out = curl("-i -H 'x-big: " + std::string(10000, 'a') + "' " + h2url(port, "/"));
  CHECK(out.find("HTTP/2 431") != std::string::npos);
  CHECK(out.find("x-tether-reason: headers_too_large") != std::string::npos);
  CHECK(up.requestCount() == 0);
}

TEST_CASE("RFC 9113 frame-level conformance on every listener shape", "[http2]") {
  FakeUpstream up;
  std::string pki = makePki("h2pki", {"server"});
  // The same listeners as everywhere (h2c by sniffing), plus h2c with protocol: http2, TLS
  // with ALPN, and TLS with protocol: http2.
  std::string bootstrap = routedBootstrap(up.port());
  const std::string listeners = "listeners:\n";
  std::string tls = "tls: { certFile: " + pki + "/server.crt, keyFile: " + pki + "/server.key }";
  bootstrap.insert(bootstrap.find(listeners) + listeners.size(),
                   "  - { name: h2c, address: 127.0.0.1:0, direction: outbound, protocol: http2 }\n"
                   "  - { name: tls, address: 127.0.0.1:0, direction: outbound, " +
                       tls +
                       " }\n"
                       "  - { name: tls-h2, address: 127.0.0.1:0, direction: outbound, "
                       "protocol: http2, " +
                       tls + " }\n");
  TetherProcess t(bootstrap);
  REQUIRE(t.started());
  for (std::string port :
       {std::to_string(t.port("outbound")), "h2:" + std::to_string(t.port("h2c")),
        "tls:" + std::to_string(t.port("tls")), "tls:" + std::to_string(t.port("tls-h2"))}) {
    int rc = 0;
    std::string out = probe(port, "conformance", &rc);
    INFO(port << "\n" << out);
    CHECK(rc == 0);
    CHECK(out.find("FAIL") == std::string::npos);
    CHECK(out.find("PASS GET answered") != std::string::npos);
    // Every check ran (a crash of the probe would leave fewer lines).
    CHECK(std::count(out.begin(), out.end(), '\n') >= 101);
  }
  // On the ALPN listener, the handshake decides the codec.
  int rc = 0;
  std::string out = probe("tls:" + std::to_string(t.port("tls")), "alpn", &rc);
  INFO(out);
  CHECK(rc == 0);
  CHECK(out.find("PASS ALPN absent then the HTTP/2 preface: HTTP/1.1 400") != std::string::npos);
  // curl over TLS against protocol: http2 (its SETTINGS used to leave before the handshake).
  for (int i = 0; i < 3; ++i) {
    std::string code = curl(
        "-sk --http2 -o /dev/null -w '%{http_code}' -H 'Host: up' "
        "https://127.0.0.1:" +
        std::to_string(t.port("tls-h2")) + "/status/200");
    CHECK(code == "200");
  }
  CHECK(t.running());
}

TEST_CASE("HTTP/2 floods close only the abusive connection", "[http2]") {
  FakeUpstream up;
  TetherProcess t(routedBootstrap(up.port()));
  REQUIRE(t.started());
  uint16_t port = t.port("outbound");
  // Each flood and the protection that must close it.
  const std::pair<const char*, const char*> floods[] = {
      {"ping", "control_frame_flood"},        {"settings", "control_frame_flood"},
      {"priority", "control_frame_flood"},    {"rapid_reset", "reset_flood"},
      {"continuation", "continuation_flood"}, {"empty_data", "empty_frame_flood"}};
  for (const auto& [kind, protection] : floods) {
    SECTION(kind) {
      // A polite h2 client keeps asking while the flood runs; every answer must be 200.
      std::atomic<bool> stop{false};
      std::atomic<int> ok{0}, bad{0};
      std::thread polite([&] {
        while (!stop) {
          std::string code = curl("-o /dev/null -w '%{http_code}' " + h2url(port, "/status/200"));
          (code == "200" ? ok : bad)++;
        }
      });
      int rc = 0;
      std::string out = probe(std::to_string(port), std::string("flood_") + kind, &rc);
      stop = true;
      polite.join();
      INFO(out);
      CHECK(rc == 0);
      CHECK(ok > 0);
      CHECK(bad == 0);
      CHECK(t.running());
      std::string metrics = adminGet(t.adminPort(), "/metrics").body;
      auto closedBy = [&](const char* k) {
        return metricValue(metrics, "tether_http2_abuse_closed_total",
                           std::string("kind=\"") + k + "\"");
      };
      // A PING or SETTINGS flood read in one go can fill nghttp2's queue of unsent ACKs
      // before the rate budget runs out; either protection is the right answer.
      bool control = std::string_view(protection) == "control_frame_flood";
      INFO(metrics);
      CHECK((closedBy(protection) > 0 || (control && closedBy("outbound_queue_flood") > 0)));
    }
  }
}

TEST_CASE("a slow h2 reader pauses the upstream: memory stays bounded", "[http2][slow]") {
  FakeUpstream up;
  TetherProcess t(routedBootstrap(up.port()));
  REQUIRE(t.started());
  long before = t.rssKiB();
  // nghttp with a 64 KiB window (-w16 -W16) reading through a pipe that is not drained
  // for a while: the 100 MiB response must wait in the upstream, not in Tether.
  std::string out;
  std::thread reader([&] {
    runCommand("nghttp -w16 -W16 -H ':authority: up' http://127.0.0.1:" +
                   std::to_string(t.port("outbound")) + "/bytes/104857600 | (sleep 2; wc -c)",
               &out, false);
  });
  long peak = 0;
  for (int i = 0; i < 15; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    peak = std::max(peak, t.rssKiB());
  }
  reader.join();
  CHECK(out.find("104857600") != std::string::npos);
  CHECK(peak - before < 40 * 1024);
}

TEST_CASE("drain sends GOAWAY and lets in-flight h2 streams finish", "[http2]") {
  FakeUpstream up;
  TetherProcess t(routedBootstrap(up.port()));
  REQUIRE(t.started());
  std::string out;
  std::thread slow([&] {
    runCommand("nghttp -v -H ':authority: up' http://127.0.0.1:" +
                   std::to_string(t.port("outbound")) + "/slow/700",
               &out, true);
  });
  REQUIRE(waitUntil([&] { return up.requestCount() == 1; }));
  t.signal(SIGTERM);
  slow.join();
  CHECK(out.find(":status: 200") != std::string::npos);
  CHECK(out.find("recv GOAWAY") != std::string::npos);
  CHECK(t.wait(std::chrono::seconds(10)) == 0);
}
