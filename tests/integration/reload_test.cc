// SIGHUP and POST /reload: a good change applies, a bad one is rejected whole and the
// running rules keep serving.

#include <signal.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <functional>
#include <thread>

#include "tests/fakes/fake_upstream.h"
#include "tests/integration/harness.h"

using namespace tether::test;

namespace {

std::string rulesFor(uint16_t port, const std::string& host) {
  return "apiVersion: tether.dev/v1alpha1\nkind: Service\nmetadata: { name: up }\n"
         "spec: { endpoints: [ { address: 127.0.0.1:" +
         std::to_string(port) +
         " } ] }\n---\n"
         "apiVersion: tether.dev/v1alpha1\nkind: Route\nmetadata: { name: r }\n"
         "spec: { hosts: [ " +
         host + " ], rules: [ { backends: [ { service: up } ] } ] }\n";
}

}  // namespace

TEST_CASE("SIGHUP applies a changed rules file; a broken one is rejected and visible", "[reload]") {
  FakeUpstream up;
  std::string rules = writeFile("reload-rules.yaml", rulesFor(up.port(), "alpha"));
  // Not watched: this test is about the explicit triggers.
  TetherProcess t(
      basicBootstrap(up.port(), "rules: { watch: false, files: [ \"" + rules + "\" ] }\n"));
  REQUIRE(t.started());
  uint16_t port = t.port("outbound");
  CHECK(httpRequest(port, "GET", "/echo", "alpha").status == 200);
  CHECK(httpRequest(port, "GET", "/echo", "beta").status == 404);

  writeFile("reload-rules.yaml", rulesFor(up.port(), "beta"));
  t.signal(SIGHUP);
  CHECK(waitUntil([&] { return httpRequest(port, "GET", "/echo", "beta").status == 200; }));
  CHECK(httpRequest(port, "GET", "/echo", "alpha").status == 404);
  std::string metrics = adminGet(t.adminPort(), "/metrics").body;
  CHECK(metricValue(metrics, "tether_config_version") == 2);
  CHECK(metricValue(metrics, "tether_config_reloads_total", "result=\"applied\"") == 1);

  // A typo: rejected whole, beta keeps working, the reason is on /rules and in the metric.
  writeFile("reload-rules.yaml", rulesFor(up.port(), "gamma") + "    extra: 1\n");
  HttpResponse r = httpRequest(t.adminPort(), "POST", "/reload", "a");
  CHECK(r.status == 400);
  CHECK(r.body.find("reload-rules.yaml:") != std::string::npos);
  CHECK(httpRequest(port, "GET", "/echo", "beta").status == 200);
  CHECK(httpRequest(port, "GET", "/echo", "gamma").status == 404);
  HttpResponse rulesPage = adminGet(t.adminPort(), "/rules");
  CHECK(rulesPage.body.find("\"trigger\":\"POST /reload\"") != std::string::npos);
  metrics = adminGet(t.adminPort(), "/metrics").body;
  CHECK(metricValue(metrics, "tether_config_reloads_total", "result=\"rejected\"") == 1);
  CHECK(metricValue(metrics, "tether_config_version") == 2);

  // Same content again: nothing changes.
  writeFile("reload-rules.yaml", rulesFor(up.port(), "beta"));
  t.signal(SIGHUP);
  CHECK(waitUntil([&] {
    return metricValue(adminGet(t.adminPort(), "/metrics").body, "tether_config_reloads_total",
                       "result=\"unchanged\"") == 1;
  }));
  CHECK(metricValue(adminGet(t.adminPort(), "/metrics").body, "tether_config_version") == 2);
}

TEST_CASE("a bootstrap reload applies what it can live and names what needs a restart",
          "[reload]") {
  FakeUpstream up;
  std::string boot = basicBootstrap(up.port(), "rules: { watch: false }\n", 2);
  TetherProcess t(boot);
  REQUIRE(t.started());
  uint16_t port = t.port("inbound");
  std::vector<std::pair<std::string, std::string>> eight;
  for (int i = 0; i < 8; ++i) eight.emplace_back("x-h" + std::to_string(i), "v");
  CHECK(httpRequest(port, "GET", "/echo", "app", "", eight).status == 200);

  // http limits apply live; workers only at the next start.
  std::ofstream(t.configPath()) << basicBootstrap(up.port(),
                                                  "rules: { watch: false }\n"
                                                  "http: { maxRequestHeaders: 5 }\n",
                                                  3);
  HttpResponse r = httpRequest(t.adminPort(), "POST", "/reload", "a");
  CHECK(r.status == 200);
  CHECK(r.body.find("\"restartRequired\":[\"workers\"]") != std::string::npos);
  CHECK(httpRequest(port, "GET", "/echo", "app", "", eight).status == 431);
  std::string metrics = adminGet(t.adminPort(), "/metrics").body;
  CHECK(metricValue(metrics, "tether_config_reloads_total", "result=\"restart_required\"") == 1);
  CHECK(metricValue(metrics, "tether_config_reloads_total", "result=\"applied\"") == 0);
  CHECK(metricValue(metrics, "tether_workers") == 2);
  CHECK(t.logs().find("restart required for: workers (still as at start)") != std::string::npos);

  // Back to the start-time workers: nothing needs a restart any more.
  std::ofstream(t.configPath()) << basicBootstrap(up.port(),
                                                  "rules: { watch: false }\n"
                                                  "http: { maxRequestHeaders: 20 }\n",
                                                  2);
  r = httpRequest(t.adminPort(), "POST", "/reload", "a");
  CHECK(r.body.find("\"restartRequired\":[]") != std::string::npos);
  CHECK(httpRequest(port, "GET", "/echo", "app", "", eight).status == 200);
  CHECK(metricValue(adminGet(t.adminPort(), "/metrics").body, "tether_config_reloads_total",
                    "result=\"applied\"") == 1);

  // localApp's readiness check comes and goes with the configuration.
  std::string app = "localApp: { address: 127.0.0.1:" + std::to_string(up.port());
  for (bool probe : {true, false}) {
    std::string b = basicBootstrap(up.port(), "rules: { watch: false }\n", 2);
    if (probe) b.replace(b.find(app), app.size(), app + ", readiness: { path: /healthz }");
    std::ofstream(t.configPath()) << b;
    CHECK(httpRequest(t.adminPort(), "POST", "/reload", "a").status == 200);
    CHECK(waitUntil([&] { return adminGet(t.adminPort(), "/ready").status == 200; }));
    CHECK(t.running());
  }
}
