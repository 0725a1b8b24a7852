// Hot reload from watched files: changes apply without a signal, every kind of bad change
// is rejected whole while the old rules keep serving, and reloads under load drop nothing.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <regex>
#include <thread>

#include "tests/fakes/fake_upstream.h"
#include "tests/integration/harness.h"

using namespace tether::test;

namespace {

std::string rulesFor(uint16_t port, const std::string& host, const std::string& extra = "") {
  return "apiVersion: tether.dev/v1alpha1\nkind: Service\nmetadata: { name: up }\n"
         "spec: { endpoints: [ { address: 127.0.0.1:" +
         std::to_string(port) +
         " } ] }\n---\n"
         "apiVersion: tether.dev/v1alpha1\nkind: Route\nmetadata: { name: r }\n"
         "spec: { hosts: [ " +
         host + " ], rules: [ { backends: [ { service: up } ] } ] }\n" + extra;
}

double metric(const TetherProcess& t, const std::string& name, const std::string& labels = "") {
  return metricValue(adminGet(t.adminPort(), "/metrics").body, name, labels);
}

/// Writes `content` to `path` through a temporary file and a rename (what editors do).
void writeAtomically(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
  }
  REQUIRE(::rename(tmp.c_str(), path.c_str()) == 0);
}

}  // namespace

TEST_CASE("a watched rules file applies on change, without a signal", "[reload][watch]") {
  FakeUpstream up;
  std::string dir = tempDir() + "/watch-basic";
  runCommand("rm -rf " + dir + " && mkdir -p " + dir);
  writeAtomically(dir + "/routes.yaml", rulesFor(up.port(), "alpha"));
  TetherProcess t(basicBootstrap(up.port(), "rules: { files: [ \"" + dir + "/*.yaml\" ] }\n"));
  REQUIRE(t.started());
  uint16_t port = t.port("outbound");
  CHECK(httpRequest(port, "GET", "/", "alpha").status == 200);

  writeAtomically(dir + "/routes.yaml", rulesFor(up.port(), "beta"));
  CHECK(waitUntil([&] { return httpRequest(port, "GET", "/", "beta").status == 200; }, 3000));
  CHECK(httpRequest(port, "GET", "/", "alpha").status == 404);
  // A new file matching the glob is picked up too.
  writeAtomically(dir + "/more.yaml",
                  "apiVersion: tether.dev/v1alpha1\nkind: Route\nmetadata: { name: g }\n"
                  "spec: { hosts: [ gamma ], rules: [ { backends: [ { service: up } ] } ] }\n");
  CHECK(waitUntil([&] { return httpRequest(port, "GET", "/", "gamma").status == 200; }, 3000));
  CHECK(metric(t, "tether_config_reloads_total", "result=\"applied\"") == 2);
  auto writeGamma = [&](const std::string& host) {
    writeAtomically(dir + "/more.yaml",
                    "apiVersion: tether.dev/v1alpha1\nkind: Route\nmetadata: { name: g }\n"
                    "spec: { hosts: [ " +
                        host + " ], rules: [ { backends: [ { service: up } ] } ] }\n");
  };
  // A burst of writes settles into one reload.
  for (int i = 0; i < 10; ++i) writeGamma("gamma" + std::to_string(i));
  CHECK(waitUntil([&] { return httpRequest(port, "GET", "/", "gamma9").status == 200; }, 3000));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(metric(t, "tether_config_reloads_total", "result=\"applied\"") == 3);
  // A steady stream of writes does not hold reloads back until it stops: each burst is
  // applied about 100 ms after its first event. 30 writes over 1.5 s: several apply while
  // the writes go on (none did when every event restarted the wait).
  for (int i = 0; i < 30; ++i) {
    writeGamma("stream" + std::to_string(i));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  double during = metric(t, "tether_config_reloads_total", "result=\"applied\"") - 3;
  CHECK(during >= 3);
  CHECK(waitUntil([&] { return httpRequest(port, "GET", "/", "stream29").status == 200; }, 3000));
}

TEST_CASE("every kind of bad change is rejected whole, visibly, and the old rules keep serving",
          "[reload][watch]") {
  FakeUpstream up;
  std::string dir = tempDir() + "/watch-bad";
  runCommand("rm -rf " + dir + " && mkdir -p " + dir);
  std::string file = dir + "/routes.yaml";
  writeAtomically(file, rulesFor(up.port(), "alpha"));
  TetherProcess t(basicBootstrap(up.port(), "rules: { files: [ \"" + dir + "/*.yaml\" ] }\n"));
  REQUIRE(t.started());
  uint16_t port = t.port("outbound");
  std::string good = rulesFor(up.port(), "alpha");

  struct Bad {
    const char* what;
    std::string content;
    const char* reason;  // in the /rules page
  };
  std::vector<Bad> bad = {
      {"YAML syntax error", rulesFor(up.port(), "[ beta"), "routes.yaml:"},
      {"unknown key", rulesFor(up.port(), "beta") + "timeuot: 1s\n", "unknown key"},
      {"dangling service reference",
       "apiVersion: tether.dev/v1alpha1\nkind: Route\nmetadata: { name: r }\n"
       "spec: { hosts: [ beta ], rules: [ { backends: [ { service: nowhere } ] } ] }\n",
       "nowhere"},
      {"truncated file", good.substr(0, good.size() - 40), "routes.yaml:"},
  };
  double rejected = 0;
  for (const auto& b : bad) {
    INFO(b.what);
    writeAtomically(file, b.content);
    CHECK(waitUntil(
        [&] { return metric(t, "tether_config_reloads_total", "result=\"rejected\"") > rejected; },
        3000));
    rejected = metric(t, "tether_config_reloads_total", "result=\"rejected\"");
    CHECK(httpRequest(port, "GET", "/", "alpha").status == 200);
    CHECK(httpRequest(port, "GET", "/", "beta").status == 404);
    std::string page = adminGet(t.adminPort(), "/rules").body;
    CHECK(page.find("\"trigger\":\"file change\"") != std::string::npos);
    CHECK(page.find("\"status\":\"rejected\"") != std::string::npos);
    CHECK(page.find(b.reason) != std::string::npos);
  }
  CHECK(metric(t, "tether_config_version") == 1);

  // In place, not atomically: the first half is not a valid file; the whole one is.
  std::string next = rulesFor(up.port(), "beta");
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << next.substr(0, next.size() / 2) << std::flush;
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    CHECK(httpRequest(port, "GET", "/", "alpha").status == 200);
    out << next.substr(next.size() / 2) << std::flush;
  }
  CHECK(waitUntil([&] { return httpRequest(port, "GET", "/", "beta").status == 200; }, 3000));
  CHECK(metric(t, "tether_config_version") == 2);

  // A match that cannot be read (here a directory; descriptors running out is the usual
  // cause) is no verdict on any content: reported as unreadable, not as a rejection.
  rejected = metric(t, "tether_config_reloads_total", "result=\"rejected\"");
  runCommand("mkdir " + dir + "/unreadable.yaml");
  CHECK(waitUntil(
      [&] { return metric(t, "tether_config_reloads_total", "result=\"unreadable\"") >= 1; },
      5000));
  CHECK(metric(t, "tether_config_reloads_total", "result=\"rejected\"") == rejected);
  CHECK(t.logs().find("cannot read the configuration, still serving version 2: " + dir +
                      "/unreadable.yaml:0:0: cannot read file: is a directory") !=
        std::string::npos);
  CHECK(httpRequest(port, "GET", "/", "beta").status == 200);
}

TEST_CASE("a Kubernetes ConfigMap-style symlink swap is seen, bad and good", "[reload][watch]") {
  FakeUpstream up;
  // What the kubelet does: files are symlinks through ..data, which is swapped atomically
  // to a new timestamped directory.
  std::string dir = tempDir() + "/watch-cm";
  auto version = [&](const std::string& name, const std::string& content) {
    runCommand("mkdir -p " + dir + "/" + name);
    std::ofstream(dir + "/" + name + "/routes.yaml") << content;
    runCommand("ln -sfn " + name + " " + dir + "/..data_tmp && mv -T " + dir + "/..data_tmp " +
               dir + "/..data");
  };
  runCommand("rm -rf " + dir + " && mkdir -p " + dir);
  version("..2026_01", rulesFor(up.port(), "alpha"));
  runCommand("ln -s ..data/routes.yaml " + dir + "/routes.yaml");
  TetherProcess t(basicBootstrap(up.port(), "rules: { files: [ \"" + dir + "/*.yaml\" ] }\n"));
  REQUIRE(t.started());
  uint16_t port = t.port("outbound");
  CHECK(httpRequest(port, "GET", "/", "alpha").status == 200);

  version("..2026_02", rulesFor(up.port(), "beta") + "    bogus: true\n");
  CHECK(waitUntil(
      [&] { return metric(t, "tether_config_reloads_total", "result=\"rejected\"") == 1; }, 3000));
  CHECK(httpRequest(port, "GET", "/", "alpha").status == 200);

  version("..2026_03", rulesFor(up.port(), "beta"));
  CHECK(waitUntil([&] { return httpRequest(port, "GET", "/", "beta").status == 200; }, 3000));
  CHECK(httpRequest(port, "GET", "/", "alpha").status == 404);
}

TEST_CASE(
    "rewriting the rules every 100 ms for 20 s under wrk and h2load: no non-2xx, no reset, no "
    "new connection",
    "[reload][watch][slow]") {
  FakeUpstream up;
  std::string dir = tempDir() + "/watch-load";
  runCommand("rm -rf " + dir + " && mkdir -p " + dir);
  std::string file = dir + "/routes.yaml";
  writeAtomically(file, rulesFor(up.port(), "up"));
  TetherProcess t(
      basicBootstrap(up.port(), "rules: { files: [ \"" + dir + "/*.yaml\" ] }\n", 2, "5s"));
  REQUIRE(t.started());
  std::string url = "http://127.0.0.1:" + std::to_string(t.port("outbound")) + "/x";
  std::string wrkOut, h2Out;
  std::thread wrk(
      [&] { runCommand("timeout 40 wrk -t1 -c8 -d20s -H 'Host: up' " + url, &wrkOut, true); });
  std::thread h2([&] {
    runCommand("timeout 40 h2load -c4 -m4 -D 20 -H ':authority: up' " + url, &h2Out, true);
  });
  // Every 100 ms: the same content (a no-op), or a change to a route nobody is calling.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int i = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    // Each content twice in a row: a change, then the same bytes again.
    std::string extra =
        (i / 2) % 2 == 0
            ? std::string()
            : "---\napiVersion: tether.dev/v1alpha1\nkind: Route\nmetadata: { name: o }\n"
              "spec: { hosts: [ other" +
                  std::to_string(i) + " ], rules: [ { backends: [ { service: up } ] } ] }\n";
    writeAtomically(file, rulesFor(up.port(), "up", extra));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ++i;
  }
  wrk.join();
  h2.join();
  INFO(wrkOut);
  INFO(h2Out);
  CHECK(wrkOut.find("requests in") != std::string::npos);
  CHECK(wrkOut.find("Non-2xx") == std::string::npos);
  CHECK(wrkOut.find("Socket errors") == std::string::npos);
  std::smatch m;
  REQUIRE(std::regex_search(h2Out, m,
                            std::regex(R"(requests: \d+ total, \d+ started, (\d+) done, (\d+) )"
                                       R"(succeeded, (\d+) failed, (\d+) errored)")));
  CHECK(std::stol(m[1]) > 1000);
  CHECK(m[1] == m[2]);
  CHECK(m[3] == "0");
  CHECK(m[4] == "0");
  CHECK(h2Out.find("0 3xx, 0 4xx, 0 5xx") != std::string::npos);
  std::string metrics = adminGet(t.adminPort(), "/metrics").body;
  CHECK(metricValue(metrics, "tether_config_reloads_total", "result=\"applied\"") > 50);
  // The clients' connections were all there was: no reload closed one (wrk's 8 plus the one
  // it opens first to check the address, and h2load's 4).
  CHECK(metricValue(metrics, "tether_downstream_connections_total") == 13);
  // Pools of the unchanged service survived: no churn of upstream connections either.
  CHECK(metricValue(metrics, "tether_upstream_connections_total") <= 24);
}

TEST_CASE("rate-limit and breaker state survive a reload that does not change their rules",
          "[reload][watch]") {
  FakeUpstream up;
  std::string dir = tempDir() + "/watch-state";
  runCommand("rm -rf " + dir + " && mkdir -p " + dir);
  auto limits = [&](const std::string& limit) {
    return "---\napiVersion: tether.dev/v1alpha1\nkind: RateLimit\nmetadata: { name: rl }\n"
           "spec: { target: { route: r }, limit: " +
           limit +
           ", per: 1m }\n---\napiVersion: tether.dev/v1alpha1\nkind: CircuitBreaker\n"
           "metadata: { name: cb }\nspec: { target: { route: bad }, strategy: error_count, "
           "threshold: 3, window: 1m, minRequests: 3, openDuration: 1m }\n";
  };
  std::string routes =
      "---\napiVersion: tether.dev/v1alpha1\nkind: Route\nmetadata: { name: bad }\n"
      "spec: { hosts: [ bad ], rules: [ { backends: [ { service: up } ] } ] }\n";
  writeAtomically(dir + "/limits.yaml", limits("5"));
  writeAtomically(dir + "/routes.yaml", rulesFor(up.port(), "alpha") + routes);
  TetherProcess t(basicBootstrap(up.port(), "rules: { files: [ \"" + dir + "/*.yaml\" ] }\n"));
  REQUIRE(t.started());
  uint16_t port = t.port("outbound");
  for (int i = 0; i < 3; ++i) CHECK(httpRequest(port, "GET", "/", "alpha").status == 200);
  for (int i = 0; i < 3; ++i) CHECK(httpRequest(port, "GET", "/status/500", "bad").status == 500);
  CHECK(httpRequest(port, "GET", "/", "bad").status == 503);  // open

  // An unrelated change: 2 of the 5 requests are left, and the breaker stays open.
  writeAtomically(dir + "/routes.yaml", rulesFor(up.port(), "alpha, beta") + routes);
  REQUIRE(waitUntil([&] { return httpRequest(port, "GET", "/", "beta").status != 404; }, 3000));
  // (that probe was the 4th request of the limit)
  CHECK(httpRequest(port, "GET", "/", "alpha").status == 200);
  CHECK(httpRequest(port, "GET", "/", "alpha").status == 429);
  CHECK(httpRequest(port, "GET", "/", "bad").status == 503);

  // A changed limit starts fresh.
  writeAtomically(dir + "/limits.yaml", limits("6"));
  REQUIRE(waitUntil([&] { return httpRequest(port, "GET", "/", "alpha").status == 200; }, 3000));
}
