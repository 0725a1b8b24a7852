// The control plane end to end: `tether control-plane` serving a rules directory to real
// sidecars, NACKs in `tether status`, a control plane killed and restarted, and instances
// registered by their sidecars and withdrawn before they drain.

#include <signal.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <memory>
#include <regex>
#include <thread>

#include "tests/fakes/fake_upstream.h"
#include "tests/integration/harness.h"

using namespace tether::test;

namespace {

const std::string kBin = TETHER_BIN;

struct ControlPlane {
  std::string dir;
  uint16_t port = freePort();
  uint16_t adminPort = freePort();
  std::unique_ptr<ChildProcess> process;

  explicit ControlPlane(const std::string& name) : dir(tempDir() + "/" + name) {
    runCommand("rm -rf " + dir + " && mkdir -p " + dir);
  }
  /// Stops it cleanly (SIGTERM): exit 0, and no sanitizer report in its output.
  ~ControlPlane() {
    if (!process) return;
    int rc = process->terminate();
    std::string log = process->output();
    CHECK(rc == 0);
    for (const char* marker :
         {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"}) {
      if (log.find(marker) != std::string::npos) FAIL_CHECK("sanitizer report:\n" << log);
    }
  }
  void start(const std::string& extra = "") {
    process = std::make_unique<ChildProcess>("exec " + kBin + " control-plane --rules " + dir +
                                             " --listen 127.0.0.1:" + std::to_string(port) +
                                             " --admin 127.0.0.1:" + std::to_string(adminPort) +
                                             " " + extra);
    REQUIRE(!process->waitFor("control plane on", 5000).empty());
  }
  void write(const std::string& file, const std::string& content) {
    {
      std::ofstream out(dir + "/." + file + ".tmp");
      out << content;
    }
    REQUIRE(::rename((dir + "/." + file + ".tmp").c_str(), (dir + "/" + file).c_str()) == 0);
  }
  std::string status() {
    std::string out;
    runCommand(kBin + " status --control-plane 127.0.0.1:" + std::to_string(adminPort), &out, true);
    return out;
  }
  std::string sidecars() { return adminGet(adminPort, "/sidecars").body; }
  std::string bootstrap(const std::string& node, const std::string& service) const {
    return "node: { name: " + node + ", service: " + service +
           " }\nrules: { controlPlane: { address: 127.0.0.1:" + std::to_string(port) +
           ", initialBackoff: 100ms, maxBackoff: 500ms } }\n";
  }
};

std::string planeDoc(const std::string& kind, const std::string& name, const std::string& spec,
                     const std::string& selector = "") {
  return "---\napiVersion: tether.dev/v1alpha1\nkind: " + kind + "\nmetadata: { name: " + name +
         " }\n" + (selector.empty() ? "" : "selector: " + selector + "\n") + "spec: " + spec + "\n";
}

std::string service(const std::string& name, uint16_t port) {
  return planeDoc("Service", name,
                  "{ endpoints: [ { address: 127.0.0.1:" + std::to_string(port) + " } ] }");
}

int statusOf(const TetherProcess& t, const std::string& host) {
  return httpRequest(t.port("outbound"), "GET", "/", host).status;
}

}  // namespace

TEST_CASE("a push reaches two sidecars, which route differently by selector", "[control]") {
  FakeUpstream one, two;
  ControlPlane cp("cp-push");
  cp.write("services.yaml", service("one", one.port()) + service("two", two.port()));
  cp.write("routes.yaml",
           planeDoc("Route", "for-a",
                    "{ hosts: [ shared ], rules: [ { backends: [ { service: one } ] } ] }",
                    "{ service: a }") +
               planeDoc("Route", "for-b",
                        "{ hosts: [ shared ], rules: [ { backends: [ { service: two } ] } ] }",
                        "{ service: b }"));
  cp.start();
  FakeUpstream app;
  TetherProcess a(basicBootstrap(app.port(), cp.bootstrap("sidecar-a", "a")));
  TetherProcess b(basicBootstrap(app.port(), cp.bootstrap("sidecar-b", "b")));
  REQUIRE(a.started());
  REQUIRE(b.started());
  REQUIRE(waitUntil([&] { return statusOf(a, "shared") == 200 && statusOf(b, "shared") == 200; },
                    5000));
  size_t oneBefore = one.requestCount(), twoBefore = two.requestCount();
  CHECK(statusOf(a, "shared") == 200);
  CHECK(one.requestCount() == oneBefore + 1);
  CHECK(statusOf(b, "shared") == 200);
  CHECK(two.requestCount() == twoBefore + 1);

  // A change reaches both: now a goes to two as well, and a new host appears on both.
  cp.write("routes.yaml",
           planeDoc("Route", "for-all",
                    "{ hosts: [ shared, added ], rules: [ { backends: [ { service: two } ] } ] }"));
  CHECK(
      waitUntil([&] { return statusOf(a, "added") == 200 && statusOf(b, "added") == 200; }, 3000));
  twoBefore = two.requestCount();
  CHECK(statusOf(a, "shared") == 200);
  CHECK(two.requestCount() == twoBefore + 1);
  std::string status = cp.status();
  INFO(status);
  CHECK(std::regex_search(status, std::regex("sidecar-a +a .* SYNCED")));
  CHECK(std::regex_search(status, std::regex("sidecar-b +b .* SYNCED")));
  std::string metrics = adminGet(a.adminPort(), "/metrics").body;
  CHECK(metricValue(metrics, "tether_control_plane_connected") == 1);
  CHECK(metricValue(metrics, "tether_control_plane_updates_total", "result=\"ack\"") >= 2);
}

TEST_CASE("a NACK keeps the running rules and its per-document reasons show in tether status",
          "[control]") {
  FakeUpstream one;
  ControlPlane cp("cp-nack");
  cp.write("rules.yaml",
           service("one", one.port()) +
               planeDoc("Route", "r",
                        "{ hosts: [ good ], rules: [ { backends: [ { service: one } ] } ] }"));
  cp.start();
  FakeUpstream app;
  TetherProcess t(basicBootstrap(app.port(), cp.bootstrap("sidecar-n", "n")));
  REQUIRE(t.started());
  REQUIRE(waitUntil([&] { return statusOf(t, "good") == 200; }, 5000));

  cp.write("rules.yaml",
           service("one", one.port()) +
               planeDoc("Route", "r",
                        "{ hosts: [ next ], rules: [ { backends: [ { service: gone } ] } ] }") +
               planeDoc("Route", "typo", "{ hosts: [ t ], rulez: [] }"));
  std::string status;
  REQUIRE(waitUntil(
      [&] {
        status = cp.status();
        return status.find("NACKED") != std::string::npos;
      },
      3000));
  INFO(status);
  // Each rejected document by name, with the sidecar's own file:line:col reason.
  CHECK(status.find("rules.yaml#2: ") != std::string::npos);
  CHECK(status.find("gone") != std::string::npos);
  CHECK(status.find("rules.yaml#3: ") != std::string::npos);
  CHECK(status.find("unknown key \"rulez\"") != std::string::npos);
  CHECK(statusOf(t, "good") == 200);
  CHECK(statusOf(t, "next") == 404);
  // The sidecar's /rules says what it refused: the version, each document and why.
  std::string rules = adminGet(t.adminPort(), "/rules").body;
  size_t nack = rules.find("\"lastNack\":{\"version\"");
  REQUIRE(nack != std::string::npos);
  std::string lastNack = rules.substr(nack);
  INFO(lastNack);
  CHECK(lastNack.find("rules.yaml#2") != std::string::npos);
  CHECK(lastNack.find("gone") != std::string::npos);
  CHECK(lastNack.find("rules.yaml#3") != std::string::npos);
  CHECK(lastNack.find("unknown key \\\"rulez\\\"") != std::string::npos);
  CHECK(metricValue(adminGet(t.adminPort(), "/metrics").body, "tether_control_plane_updates_total",
                    "result=\"nack\"") == 1);

  // Fixed: the next version is acked.
  cp.write("rules.yaml",
           service("one", one.port()) +
               planeDoc("Route", "r",
                        "{ hosts: [ next ], rules: [ { backends: [ { service: one } ] } ] }"));
  CHECK(waitUntil([&] { return statusOf(t, "next") == 200; }, 3000));
  CHECK(waitUntil([&] { return cp.status().find("SYNCED") != std::string::npos; }, 2000));
}

TEST_CASE("with the control plane gone, sidecars keep serving, then reconnect and resume",
          "[control]") {
  FakeUpstream one;
  ControlPlane cp("cp-restart");
  cp.write("rules.yaml",
           service("one", one.port()) +
               planeDoc("Route", "r",
                        "{ hosts: [ kept ], rules: [ { backends: [ { service: one } ] } ] }"));
  cp.start();
  FakeUpstream app;
  TetherProcess t(basicBootstrap(app.port(), cp.bootstrap("sidecar-r", "r")));
  REQUIRE(t.started());
  REQUIRE(waitUntil([&] { return statusOf(t, "kept") == 200; }, 5000));

  cp.process.reset();  // SIGKILL
  CHECK(waitUntil(
      [&] {
        return metricValue(adminGet(t.adminPort(), "/metrics").body,
                           "tether_control_plane_connected") == 0;
      },
      2000));
  for (int i = 0; i < 20; ++i) CHECK(statusOf(t, "kept") == 200);
  CHECK(adminGet(t.adminPort(), "/ready").status == 200);
  std::string rules = adminGet(t.adminPort(), "/rules").body;
  CHECK(rules.find("\"connected\":false") != std::string::npos);

  // Back, with a change made while it was away: the sidecar reconnects and takes it.
  cp.write("rules.yaml",
           service("one", one.port()) +
               planeDoc("Route", "r",
                        "{ hosts: [ kept, new ], rules: [ { backends: [ { service: one } ] } ] }"));
  cp.start();
  CHECK(waitUntil([&] { return statusOf(t, "new") == 200; }, 5000));
  CHECK(statusOf(t, "kept") == 200);
  rules = adminGet(t.adminPort(), "/rules").body;
  CHECK(rules.find("\"connected\":true") != std::string::npos);
  CHECK(rules.find("\"connects\":2") != std::string::npos);
  CHECK(std::regex_search(cp.status(), std::regex("sidecar-r .* SYNCED")));
}

TEST_CASE("registered instances become endpoints for other sidecars, and leave before they drain",
          "[control]") {
  ControlPlane cp("cp-registry");
  // The Service has no static endpoints: registrations fill it.
  cp.write(
      "rules.yaml",
      planeDoc("Service", "backend", "{}") +
          planeDoc("Route", "r",
                   "{ hosts: [ backend ], rules: [ { backends: [ { service: backend } ] } ] }"));
  cp.start();
  FakeUpstream app1, app2, unused;
  auto instance = [&](FakeUpstream& app, const std::string& node) {
    return std::make_unique<TetherProcess>(
        basicBootstrap(app.port(), cp.bootstrap(node, "backend"), 1, "5s"));
  };
  auto s1 = instance(app1, "backend-1");
  REQUIRE(s1->started());
  TetherProcess caller(basicBootstrap(unused.port(), cp.bootstrap("caller", "frontend")));
  REQUIRE(caller.started());
  REQUIRE(waitUntil([&] { return statusOf(caller, "backend") == 200; }, 5000));
  CHECK(app1.requestCount() >= 1);

  // A second instance with its own sidecar: the caller spreads over both.
  auto s2 = instance(app2, "backend-2");
  REQUIRE(s2->started());
  REQUIRE(waitUntil(
      [&] {
        statusOf(caller, "backend");
        return app2.requestCount() > 0;
      },
      5000));
  std::string sidecars = cp.sidecars();
  INFO(sidecars);
  CHECK(sidecars.find("\"node\":\"backend-1\"") != std::string::npos);
  CHECK(sidecars.find("\"node\":\"backend-2\"") != std::string::npos);

  // Scale down under load: SIGTERM withdraws backend-2 first, the caller stops sending to
  // it during the drain's grace, and no request fails.
  std::string url = "http://127.0.0.1:" + std::to_string(caller.port("outbound")) + "/";
  std::string out;
  std::thread load([&] {
    runCommand("timeout 20 h2load --h1 -c4 -D 4 -H ':authority: backend' " + url, &out, true);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  size_t app2Early = app2.requestCount();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  size_t app2Before = app2.requestCount();
  s2->signal(SIGTERM);
  CHECK(s2->wait(std::chrono::seconds(8)) == 0);
  load.join();
  INFO(out);
  std::smatch m;
  REQUIRE(std::regex_search(out, m, std::regex(R"((\d+) succeeded, (\d+) failed, (\d+) errored)")));
  CHECK(std::stol(m[1]) > 500);
  CHECK(m[2] == "0");
  CHECK(m[3] == "0");
  CHECK(out.find("0 3xx, 0 4xx, 0 5xx") != std::string::npos);
  // It was serving under load until the SIGTERM. (After it, the caller may learn of the
  // withdrawal before sending it anything more: no later request is owed.)
  CHECK(app2Before > app2Early);
  CHECK(s2->logs().find("withdrawing the local instance before draining") != std::string::npos);
  CHECK(waitUntil([&] { return cp.sidecars().find("backend-2") == std::string::npos; }, 3000));
}

TEST_CASE("the control plane shrugs off what is not its protocol", "[control]") {
  ControlPlane cp("cp-garbage");
  cp.write("rules.yaml", planeDoc("Service", "s", "{}"));
  cp.start();
  // Not HTTP/2 at all.
  RawClient raw(cp.port);
  REQUIRE(raw.connected());
  raw.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(raw.waitClosed(3000));
  // HTTP/2, but not JSON; and a line far over the size a sidecar may send.
  std::string bad = writeFile("cp-bad.ndjson", "this is not json\n");
  std::string big = writeFile("cp-big.ndjson", std::string(2 << 20, 'x'));
  std::string url = "http://127.0.0.1:" + std::to_string(cp.port) + "/tether.v1/stream";
  runCommand("timeout 5 nghttp -d " + bad + " " + url);
  runCommand("timeout 5 nghttp -d " + big + " " + url);
  CHECK(!cp.process->waitFor("malformed message", 3000).empty());
  CHECK(!cp.process->waitFor("message too large", 3000).empty());
  CHECK(adminGet(cp.adminPort, "/live").status == 200);
  CHECK(cp.sidecars().find("\"sidecars\":[]") != std::string::npos);
}

TEST_CASE("a sidecar restarted while the control plane is away serves its cached snapshot",
          "[control]") {
  FakeUpstream one, app;
  ControlPlane cp("cp-cache");
  cp.write("rules.yaml",
           service("one", one.port()) +
               planeDoc("Route", "r",
                        "{ hosts: [ cached ], rules: [ { backends: [ { service: one } ] } ] }"));
  cp.start();
  std::string cache = tempDir() + "/cp-cache-snapshot.json";
  ::unlink(cache.c_str());
  std::string bootstrap = basicBootstrap(
      app.port(),
      "node: { name: sidecar-c, service: c }\nrules: { controlPlane: { address: "
      "127.0.0.1:" +
          std::to_string(cp.port) +
          ", initialBackoff: 100ms, maxBackoff: 500ms, cacheFile: " + cache + " } }\n");
  auto first = std::make_unique<TetherProcess>(bootstrap);
  REQUIRE(first->started());
  REQUIRE(waitUntil([&] { return statusOf(*first, "cached") == 200; }, 5000));
  REQUIRE(waitUntil([&] { return runCommand("test -s " + cache) == 0; }, 2000));

  cp.process.reset();  // the control plane is gone ...
  first.reset();       // ... and the sidecar restarts meanwhile
  TetherProcess second(bootstrap);
  REQUIRE(second.started());
  CHECK(statusOf(second, "cached") == 200);  // at once, from the cache
  std::string rules = adminGet(second.adminPort(), "/rules").body;
  CHECK(rules.find("\"connected\":false") != std::string::npos);
  CHECK(rules.find("\"documents\":[\"rules.yaml#1\",\"rules.yaml#2\"]") != std::string::npos);
  CHECK(second.logs().find("from the cache") != std::string::npos);

  // A corrupt cache is ignored (logged), not fatal.
  std::ofstream(cache) << "{ not json";
  TetherProcess third(bootstrap);
  REQUIRE(third.started());
  CHECK(statusOf(third, "cached") == 404);
  CHECK(third.logs().find("not a snapshot, ignored") != std::string::npos);
}
