// SIGHUP and POST /reload: a good change applies, a bad one is rejected whole and the
// running rules keep serving.

#include <signal.h>

#include <catch2/catch.hpp>
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
