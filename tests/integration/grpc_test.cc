// gRPC and HTTP/2 upstreams through the real binary: a real gRPC server and client
// (python3-grpcio), nghttpd as an HTTP/2 origin, curl/nghttp/h2load as clients.

#include <catch2/catch.hpp>
#include <memory>

#include "tests/fakes/fake_upstream.h"
#include "tests/integration/harness.h"

using namespace tether::test;

namespace {

const std::string kPeer = "/usr/bin/python3 " TETHER_SOURCE_DIR "/tests/integration/grpc_peer.py";

/// Tether with an HTTP/2 Service "grpc" at `port` for authority "grpc", an endpoint-less
/// Service for "grpc-empty", and the fake HTTP/1.1 origin as the local app.
std::string grpcBootstrap(uint16_t appPort, uint16_t port) {
  return basicBootstrap(appPort) +
         "rules:\n  inline:\n"
         "    - apiVersion: tether.dev/v1alpha1\n      kind: Service\n"
         "      metadata: { name: grpc }\n"
         "      spec: { protocol: http2, endpoints: [ { address: 127.0.0.1:" +
         std::to_string(port) +
         " } ] }\n"
         "    - apiVersion: tether.dev/v1alpha1\n      kind: Service\n"
         "      metadata: { name: grpc-empty }\n      spec: { protocol: http2 }\n"
         "    - apiVersion: tether.dev/v1alpha1\n      kind: Route\n"
         "      metadata: { name: grpc }\n"
         "      spec: { hosts: [ grpc ], rules: [ { backends: [ { service: grpc } ] } ] }\n"
         "    - apiVersion: tether.dev/v1alpha1\n      kind: Route\n"
         "      metadata: { name: grpc-empty }\n"
         "      spec: { hosts: [ grpc-empty ], rules: [ { backends: [ { service: grpc-empty } ] } "
         "] }\n";
}

/// nghttpd serving `dir` (h2c, prior knowledge) on a free port, once it answers for `file`.
std::unique_ptr<ChildProcess> startNghttpd(const std::string& dir, const std::string& file,
                                           uint16_t& port) {
  port = freePort();
  auto server =
      std::make_unique<ChildProcess>("nghttpd --no-tls -d " + dir + " " + std::to_string(port));
  REQUIRE(waitUntil([&] {
    return runCommand("curl -s -o /dev/null --http2-prior-knowledge http://127.0.0.1:" +
                      std::to_string(port) + "/" + file) == 0;
  }));
  return server;
}

}  // namespace

TEST_CASE("gRPC unary and streaming calls pass through; deadlines and local replies", "[grpc]") {
  ChildProcess server(kPeer + " server");
  std::string port = server.waitFor("PORT (\\d+)");
  REQUIRE(!port.empty());
  FakeUpstream app;
  TetherProcess t(grpcBootstrap(app.port(), static_cast<uint16_t>(std::stoi(port))));
  REQUIRE(t.started());
  std::string tp = std::to_string(t.port("outbound"));

  std::string out;
  int rc = runCommand(kPeer + " client " + tp + " grpc", &out, true);
  INFO(out);
  CHECK(rc == 0);
  CHECK(out.find("PASS bidirectional streaming") != std::string::npos);

  // grpc-timeout is the request's deadline: Tether answers DEADLINE_EXCEEDED itself, as a
  // trailers-only response, when the server is slower (the local app here never answers;
  // curl sets no deadline of its own).
  writeFile("slow.grpc", std::string("\0\0\0\0\1"
                                     "2",
                                     6));
  out = curl(
      "-i --http2-prior-knowledge -H 'content-type: application/grpc' -H 'te: trailers' "
      "-H 'grpc-timeout: 200m' --data-binary @" +
      tempDir() + "/slow.grpc http://127.0.0.1:" + std::to_string(t.port("inbound")) + "/hang");
  INFO(out);
  CHECK(out.find("HTTP/2 200") != std::string::npos);
  CHECK(out.find("grpc-status: 4") != std::string::npos);
  CHECK(out.find("x-tether-reason: deadline_exceeded") != std::string::npos);

  // Local replies carry the matching grpc-status.
  out.clear();
  runCommand(kPeer + " status " + tp + " grpc-empty", &out, true);
  CHECK(out.rfind("UNAVAILABLE no healthy upstream", 0) == 0);
  out.clear();
  runCommand(kPeer + " status " + tp + " nowhere", &out, true);
  CHECK(out.rfind("UNIMPLEMENTED no route", 0) == 0);

  std::string metrics = adminGet(t.adminPort(), "/metrics").body;
  CHECK(metricValue(metrics, "tether_grpc_requests_total", "grpc_status=\"0\",route=\"grpc\"") >=
        5);
  CHECK(metricValue(metrics, "tether_grpc_requests_total", "grpc_status=\"4\"") >= 1);
  CHECK(metricValue(metrics, "tether_grpc_requests_total", "grpc_status=\"14\"") >= 1);
}

TEST_CASE("HTTP/2 upstreams: h1->h2 and h2->h2 multiplexed on few connections", "[http2]") {
  std::string dir = tempDir() + "/h2root";
  runCommand("mkdir -p " + dir + " && head -c 2000000 /dev/urandom > " + dir + "/big");
  uint16_t port = 0;
  auto nghttpd = startNghttpd(dir, "big", port);
  FakeUpstream app;
  TetherProcess t(grpcBootstrap(app.port(), port));
  REQUIRE(t.started());
  std::string tp = std::to_string(t.port("outbound"));
  std::string expected;
  runCommand("sha256sum < " + dir + "/big", &expected);
  CHECK(curl("-H 'Host: grpc' http://127.0.0.1:" + tp + "/big | sha256sum") == expected);
  CHECK(curl("--http2-prior-knowledge -H 'Host: grpc' http://127.0.0.1:" + tp +
             "/big | sha256sum") == expected);
  // 128 concurrent streams: more than nghttpd's 100 per connection, so a second connection
  // opens, but no more than that per worker.
  std::string out;
  runCommand("h2load -c4 -m32 -n 4000 -H ':authority: grpc' http://127.0.0.1:" + tp + "/big", &out,
             true);
  INFO(out);
  CHECK(out.find("4000 succeeded") != std::string::npos);
  std::string metrics = adminGet(t.adminPort(), "/metrics").body;
  double conns = metricValue(metrics, "tether_upstream_connections_total");
  CHECK(conns >= 2);
  CHECK(conns <= 4);
}

TEST_CASE("an upstream GOAWAY: unprocessed streams are retried on a new connection", "[http2]") {
  // The origin answers 20 streams per connection, then GOAWAY; the streams in flight past
  // that were never processed, and Tether sends them again on a new connection.
  ChildProcess origin("/usr/bin/python3 " TETHER_SOURCE_DIR
                      "/tests/integration/h2_goaway_server.py 20");
  std::string port = origin.waitFor("PORT (\\d+)");
  REQUIRE(!port.empty());
  FakeUpstream app;
  TetherProcess t(grpcBootstrap(app.port(), static_cast<uint16_t>(std::stoi(port))));
  REQUIRE(t.started());
  std::string out;
  runCommand("h2load -c2 -m8 -n 200 -H ':authority: grpc' http://127.0.0.1:" +
                 std::to_string(t.port("outbound")) + "/",
             &out, true);
  INFO(out);
  CHECK(out.find("200 succeeded") != std::string::npos);
  CHECK(out.find("200 2xx") != std::string::npos);
  std::string metrics = adminGet(t.adminPort(), "/metrics").body;
  CHECK(metricValue(metrics, "tether_upstream_connections_total") >= 10);
  CHECK(metricValue(metrics, "tether_retries_total", "service=\"grpc\"") > 0);
}

TEST_CASE("gRPC calls are retried on the retryOn gRPC statuses", "[grpc]") {
  ChildProcess server(kPeer + " server");
  std::string port = server.waitFor("PORT (\\d+)");
  REQUIRE(!port.empty());
  FakeUpstream app;
  std::string boot = grpcBootstrap(app.port(), static_cast<uint16_t>(std::stoi(port)));
  // The grpc route retries twice on UNAVAILABLE.
  std::string from = "rules: [ { backends: [ { service: grpc } ] } ]";
  boot.replace(boot.find(from), from.size(),
               "rules: [ { backends: [ { service: grpc } ], retry: { attempts: 2, retryOn: [ "
               "unavailable ] } } ]");
  TetherProcess t(boot);
  REQUIRE(t.started());
  std::string call = kPeer + " status " + std::to_string(t.port("outbound")) + " grpc Flaky ";
  std::string out;
  runCommand(call + "2:a", &out, true);  // fails twice, then succeeds: within 2 retries
  CHECK(out == "OK ok after 2\n");
  out.clear();
  runCommand(call + "5:b", &out, true);  // fails more often than the policy retries
  CHECK(out.rfind("UNAVAILABLE not yet", 0) == 0);
  std::string metrics = adminGet(t.adminPort(), "/metrics").body;
  CHECK(metricValue(metrics, "tether_retries_total", "service=\"grpc\"") == 4);
}

TEST_CASE("HTTP/2 upstream at limits.maxConnections: streams past it get 503 overflow",
          "[http2][resilience]") {
  std::string dir = tempDir() + "/h2limit";
  runCommand("mkdir -p " + dir + " && head -c 200000 /dev/urandom > " + dir + "/file");
  uint16_t port = 0;
  auto nghttpd = startNghttpd(dir, "file", port);
  FakeUpstream app;
  // One connection allowed, nghttpd takes 100 streams on it: 128 at once cannot all fit.
  TetherProcess t(
      basicBootstrap(app.port()) + "rules:\n  inline:\n" +
      doc("Service", "h2",
          "{ protocol: http2, limits: { maxConnections: 1 }, endpoints: [ { "
          "address: 127.0.0.1:" +
              std::to_string(port) + " } ] }") +
      doc("Route", "h2", "{ hosts: [ h2 ], rules: [ { backends: [ { service: h2 } ] } ] }"));
  REQUIRE(t.started());
  std::string out;
  runCommand("h2load -c4 -m32 -n 512 -H ':authority: h2' http://127.0.0.1:" +
                 std::to_string(t.port("outbound")) + "/file",
             &out, true);
  INFO(out);
  std::string metrics = adminGet(t.adminPort(), "/metrics").body;
  CHECK(metricValue(metrics, "tether_upstream_connections_total") == 1);
  CHECK(metricValue(metrics, "tether_upstream_connections_overflow_total", "service=\"h2\"") > 0);
  CHECK(metricValue(metrics, "tether_requests_total", "reason=\"overflow\"") > 0);
  CHECK(metricValue(metrics, "tether_requests_total", "code=\"200\"") > 0);
}
