// Endpoint health: passive outlier ejection and return, active checks, panic mode, and an
// endpoint dying under load.

#include <yaml-cpp/yaml.h>

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

/// The value of `field` for the endpoint at 127.0.0.1:`port` of `service` in /clusters
/// ("" when absent).
std::string endpointField(const TetherProcess& t, const std::string& service, uint16_t port,
                          const std::string& field) {
  YAML::Node clusters = YAML::Load(adminGet(t.adminPort(), "/clusters").body);  // JSON is YAML
  std::string address = "127.0.0.1:" + std::to_string(port);
  for (const auto& s : clusters["services"]) {
    if (s["name"].as<std::string>() != service) continue;
    for (const auto& e : s["endpoints"]) {
      if (e["address"].as<std::string>() == address) return e[field].as<std::string>("");
    }
  }
  return "";
}

/// Waits until the endpoint's active health state is `state` ("healthy", "unhealthy").
bool becomes(const TetherProcess& t, const std::string& service, uint16_t port,
             const std::string& state) {
  return waitUntil([&] { return endpointField(t, service, port, "health") == state; });
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
    // In the "up" service (the good one is the local app's address too).
    std::string w = endpointField(t, "up", up.port(), "effectiveWeight");
    return w.empty() ? -1.0 : std::stod(w);
  };
  CHECK(waitUntil([&] { return weightOf(bad) == 0.0; }));
  // Seconds into a 60 s ramp: about 10% of weight 1, not the configured 1.
  double w = weightOf(good);
  CHECK(w >= 0.1);
  CHECK(w < 0.5);
  CHECK(adminGet(t.adminPort(), "/clusters").body.find("\"panic\":false") != std::string::npos);
}

TEST_CASE("health checks speak the service's protocol: HTTP/1.1 and HTTP/2 over TLS", "[health]") {
  // nginx as the TLS origin: one server offers h2 and http/1.1, the other http/1.1 only. Its
  // access log shows which protocol each check arrived in.
  std::string pki = makePki("pki-hc", {"origin"});
  uint16_t h2port = freePort(), h1port = freePort();
  std::string server = "  ssl_certificate " + pki + "/origin.crt;\n  ssl_certificate_key " + pki +
                       "/origin.key;\n  access_log " + pki +
                       "/access.log checks;\n  location /healthz { return 200 ok; }\n"
                       "  location /sick { return 503; }\n";
  std::string conf = writeFile(
      "nginx-hc.conf",
      "daemon off;\nworker_processes 1;\npid " + pki + "/nginx.pid;\nerror_log " + pki +
          "/nginx.err;\nevents {}\nhttp {\n client_body_temp_path " + pki +
          ";\n log_format checks '$server_port $request_uri $server_protocol $http_user_agent "
          "$host';\n server {\n  listen 127.0.0.1:" +
          std::to_string(h2port) + " ssl http2;\n" + server + " }\n server {\n  listen 127.0.0.1:" +
          std::to_string(h1port) + " ssl;\n" + server + " }\n}\n");
  ChildProcess nginx("nginx -e " + pki + "/nginx.err -c " + conf);
  REQUIRE(waitUntil([&] {
    return runCommand("curl -sk -o /dev/null https://127.0.0.1:" + std::to_string(h1port)) == 0;
  }));
  FakeUpstream plain;  // speaks no TLS: its checks fail in the handshake
  std::string tls = "tls: { sni: origin, caFile: " + pki + "/ca.crt }";
  auto endpoints = [](std::initializer_list<uint16_t> ports) {
    std::string e = "endpoints: [ ";
    for (uint16_t p : ports) e += "{ address: 127.0.0.1:" + std::to_string(p) + " }, ";
    return e + "]";
  };
  auto check = [](const std::string& path, const std::string& more = "") {
    return "healthCheck: { path: " + path +
           ", interval: 100ms, timeout: 1s, unhealthyThreshold: 1, healthyThreshold: 1" + more +
           " }";
  };
  TetherProcess t(basicBootstrap(
      plain.port(), "rules:\n  inline:\n" +
                        doc("Service", "h1tls",
                            "{ protocol: http1, " + tls + ", " + endpoints({h1port, plain.port()}) +
                                ", " + check("/healthz") + " }") +
                        doc("Service", "h2tls",
                            "{ protocol: http2, " + tls + ", " + endpoints({h2port}) + ", " +
                                check("/healthz", ", host: probe.example") + " }") +
                        doc("Service", "autotls",
                            "{ protocol: auto, " + tls + ", " + endpoints({h2port, h1port}) + ", " +
                                check("/healthz") + " }") +
                        doc("Service", "sick",
                            "{ protocol: http2, " + tls + ", " + endpoints({h2port}) + ", " +
                                check("/sick") + " }")));
  REQUIRE(t.started());
  CHECK(becomes(t, "h1tls", h1port, "healthy"));
  CHECK(becomes(t, "h1tls", plain.port(), "unhealthy"));
  CHECK(becomes(t, "h2tls", h2port, "healthy"));
  CHECK(becomes(t, "autotls", h2port, "healthy"));
  CHECK(becomes(t, "autotls", h1port, "healthy"));
  CHECK(becomes(t, "sick", h2port, "unhealthy"));
  CHECK(plain.requestCount() == 0);  // no plaintext request ever reached it
  std::string log = readFile(pki + "/access.log");
  INFO(log);
  std::string h2 = std::to_string(h2port), h1 = std::to_string(h1port);
  CHECK(log.find(h1 + " /healthz HTTP/1.1 tether-health-check h1tls") != std::string::npos);
  CHECK(log.find(h2 + " /healthz HTTP/2.0 tether-health-check probe.example") != std::string::npos);
  // protocol: auto follows ALPN: h2 where the origin offers it, HTTP/1.1 where not.
  CHECK(log.find(h2 + " /healthz HTTP/2.0 tether-health-check autotls") != std::string::npos);
  CHECK(log.find(h1 + " /healthz HTTP/1.1 tether-health-check autotls") != std::string::npos);
  CHECK(log.find(h1 + " /healthz HTTP/2.0") == std::string::npos);
  // The log says why an endpoint went out.
  CHECK(waitUntil(
      [&] { return t.logs().find("failed checks, the last: status 503") != std::string::npos; }));
}

TEST_CASE("gRPC health checks: grpc.health.v1.Health/Check decides", "[health][grpc]") {
  const std::string peer = "/usr/bin/python3 " TETHER_SOURCE_DIR "/tests/integration/grpc_peer.py";
  ChildProcess server(peer + " server");
  std::string port = server.waitFor("PORT (\\d+)");
  REQUIRE(!port.empty());
  uint16_t grpcPort = static_cast<uint16_t>(std::stoi(port));
  FakeUpstream app;
  auto service = [&](const std::string& name, const std::string& grpcService) {
    return doc("Service", name,
               "{ protocol: http2, endpoints: [ { address: 127.0.0.1:" + port +
                   " } ], healthCheck: { type: grpc, " + grpcService +
                   "interval: 100ms, timeout: 1s, unhealthyThreshold: 1, healthyThreshold: 1 } }");
  };
  TetherProcess t(basicBootstrap(app.port(), "rules:\n  inline:\n" + service("whole", "") +
                                                 service("echo", "grpcService: test.Echo, ") +
                                                 service("nobody", "grpcService: no.Such, ")));
  REQUIRE(t.started());
  CHECK(becomes(t, "whole", grpcPort, "healthy"));
  CHECK(becomes(t, "echo", grpcPort, "healthy"));
  CHECK(becomes(t, "nobody", grpcPort, "unhealthy"));  // NOT_FOUND
  CHECK(waitUntil([&] { return t.logs().find("the last: grpc-status 5") != std::string::npos; }));
  auto setHealth = [&](const std::string& payload) {
    std::string out;
    runCommand(peer + " status " + port + " x SetHealth '" + payload + "'", &out, true);
    return out;
  };
  CHECK(setHealth("test.Echo=2").find("OK set") != std::string::npos);  // NOT_SERVING
  CHECK(becomes(t, "echo", grpcPort, "unhealthy"));
  CHECK(endpointField(t, "whole", grpcPort, "health") == "healthy");
  CHECK(waitUntil([&] { return t.logs().find("the last: NOT_SERVING") != std::string::npos; }));
  setHealth("test.Echo=1");
  CHECK(becomes(t, "echo", grpcPort, "healthy"));
  setHealth("=0");  // UNKNOWN is not serving either
  CHECK(becomes(t, "whole", grpcPort, "unhealthy"));
}

TEST_CASE("health check settings that cannot work are configuration errors", "[health]") {
  FakeUpstream app;
  std::string boot = writeFile("hc2-boot.yaml", basicBootstrap(app.port()));
  struct Case {
    std::string spec, error;
  };
  for (const Case& c : std::vector<Case>{
           {"{ protocol: http1, healthCheck: { type: grpc } }",
            "hc2.yaml:4:39: spec.healthCheck: a grpc health check needs protocol: http2"},
           {"{ protocol: auto, healthCheck: { type: grpc } }",
            "hc2.yaml:4:38: spec.healthCheck: a grpc health check needs protocol: http2"},
           {"{ healthCheck: { type: http } }",
            "hc2.yaml:4:30: spec.healthCheck.type: an http health check needs a path"},
           {"{ protocol: http2, healthCheck: { type: grpc, path: /x } }",
            "hc2.yaml:4:59: spec.healthCheck.path: path is for http health checks only"},
           {"{ healthCheck: { path: /x, grpcService: a } }",
            "hc2.yaml:4:47: spec.healthCheck.grpcService: grpcService is for grpc health"},
       }) {
    INFO(c.spec);
    std::string rules = writeFile(
        "hc2.yaml",
        "apiVersion: tether.dev/v1alpha1\nkind: Service\nmetadata: { name: up }\nspec: " + c.spec +
            "\n");
    std::string out;
    CHECK(runCommand(std::string(TETHER_BIN) + " validate -c " + boot + " " + rules, &out, true) ==
          1);
    INFO(out);
    CHECK(out.find(c.error) != std::string::npos);
  }
}
