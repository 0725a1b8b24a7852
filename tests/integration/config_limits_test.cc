// Hostile and oversized configuration: alias bombs, duplicate keys, files past the size
// bound, and a large valid configuration that must not stall the admin API or keep its
// memory once replaced.

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <thread>

#include "tests/fakes/fake_upstream.h"
#include "tests/integration/harness.h"

using namespace tether::test;

namespace {

std::string validate(const std::string& boot, const std::string& rules, int* rc) {
  std::string out;
  *rc = runCommand(std::string(TETHER_BIN) + " validate -c " + boot + " " + rules, &out, true);
  return out;
}

/// Nine levels of nine aliases each: 130 KB of YAML standing for 9^9 (387 M) strings.
std::string aliasBomb() {
  std::string y =
      "apiVersion: tether.dev/v1alpha1\nkind: Service\nmetadata: { name: bomb }\n"
      "spec:\n  a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\","
      "\"lol\",\"lol\"]\n";
  for (int i = 1; i <= 9; ++i) {
    std::string prev = "*a" + std::to_string(i - 1);
    y += "  a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 9; ++k) y += (k ? "," : "") + prev;
    y += "]\n";
  }
  return y;
}

std::string services(uint16_t port, int n, const std::string& prefix) {
  std::string y;
  for (int i = 0; i < n; ++i) {
    std::string name = prefix + std::to_string(i);
    y += "apiVersion: tether.dev/v1alpha1\nkind: Service\nmetadata: { name: " + name +
         " }\nspec:\n  endpoints:\n    - { address: 127.0.0.1:" + std::to_string(port) +
         " }\n---\napiVersion: tether.dev/v1alpha1\nkind: Route\nmetadata: { name: " + name +
         " }\nspec:\n  hosts: [ " + name + ", " + name +
         ".default.svc.cluster.local ]\n  rules:\n    - match: { pathPrefix: /api/v1/items/" +
         std::to_string(i) + ", headers: { x-user: { exact: user-" + std::to_string(i) +
         " } } }\n      backends: [ { service: " + name +
         ", weight: 90 } ]\n"
         "    - backends: [ { service: " +
         name + " } ]\n---\n";
  }
  return y;
}

}  // namespace

TEST_CASE("an alias bomb is refused at once, by validate and by a hot reload", "[config][limits]") {
  FakeUpstream app;
  std::string boot = writeFile("bomb-boot.yaml", basicBootstrap(app.port()));
  std::string bomb = writeFile("bomb.yaml", aliasBomb());
  auto start = std::chrono::steady_clock::now();
  int rc = 0;
  std::string out = validate(boot, bomb, &rc);
  INFO(out);
  CHECK(rc == 1);
  CHECK(out.find("bomb.yaml:") != std::string::npos);
  CHECK(out.find("YAML nodes (aliases counted as what they expand to): refused") !=
        std::string::npos);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));

  // The running proxy gets the same file as a hot reload: rejected, still serving, small.
  std::string dir = tempDir() + "/bomb-rules";
  runCommand("rm -rf " + dir + " && mkdir -p " + dir);
  TetherProcess t(basicBootstrap(app.port(), "rules: { files: [ \"" + dir + "/*.yaml\" ] }\n"));
  REQUIRE(t.started());
  long rss = t.rssKiB();
  std::ofstream(dir + "/bomb.yaml") << aliasBomb();
  CHECK(waitUntil(
      [&] {
        return metricValue(adminGet(t.adminPort(), "/metrics").body, "tether_config_reloads_total",
                           "result=\"rejected\"") >= 1;
      },
      10000));
  CHECK(t.running());
  CHECK(httpRequest(t.port("inbound"), "GET", "/", "app").status == 200);
  CHECK(t.rssKiB() < rss + 50 * 1024);
  CHECK(adminGet(t.adminPort(), "/rules").body.find("YAML nodes") != std::string::npos);
}

TEST_CASE("duplicate keys are errors at the second key", "[config][limits]") {
  FakeUpstream app;
  std::string boot =
      writeFile("dup-boot.yaml", basicBootstrap(app.port()) + "admin: { address: 127.0.0.1:0 }\n");
  std::string rules =
      writeFile("dup-rules.yaml",
                "apiVersion: tether.dev/v1alpha1\nkind: Service\nmetadata: { name: a, name: b }\n"
                "spec: { endpoints: [ { address: 127.0.0.1:1 } ] }\n"
                "spec: { endpoints: [ { address: 127.0.0.1:2 } ] }\n");
  int rc = 0;
  std::string out = validate(boot, rules, &rc);
  INFO(out);
  CHECK(rc == 1);
  // The bootstrap's second admin: block (after the one basicBootstrap writes).
  CHECK(out.find("dup-boot.yaml:") != std::string::npos);
  CHECK(out.find(": admin: duplicate key \"admin\" (first at line 1, column 1)") !=
        std::string::npos);
  CHECK(out.find("dup-rules.yaml:3:22: metadata.name: duplicate key \"name\" (first at line 3, "
                 "column 13)") != std::string::npos);
  CHECK(out.find("dup-rules.yaml:5:1: spec: duplicate key \"spec\" (first at line 4, column 1)") !=
        std::string::npos);
}

TEST_CASE("a configuration past the size bound is refused before it is parsed",
          "[config][limits]") {
  FakeUpstream app;
  std::string boot = writeFile("huge-boot.yaml", basicBootstrap(app.port()));
  std::string huge = tempDir() + "/huge.yaml";
  {
    std::ofstream f(huge);
    std::string line = "# " + std::string(1021, 'x') + "\n";  // 1 KiB
    for (int i = 0; i < 65 * 1024; ++i) f << line;            // 65 MiB of comments
  }
  int rc = 0;
  std::string out = validate(boot, huge, &rc);
  INFO(out.substr(0, 2000));
  CHECK(rc == 1);
  CHECK(out.find("huge.yaml:0:0: cannot read file: the configuration is 68157440 bytes; the "
                 "limit is 64 MiB") != std::string::npos);
  std::remove(huge.c_str());
}

TEST_CASE("a large configuration loads off the control loop and its memory is given back",
          "[config][limits][slow]") {
  FakeUpstream app;
  std::string dir = tempDir() + "/large-rules";
  runCommand("rm -rf " + dir + " && mkdir -p " + dir);
  std::ofstream(dir + "/rules.yaml") << services(app.port(), 1, "small");
  TetherProcess t(basicBootstrap(app.port(), "rules: { files: [ \"" + dir + "/*.yaml\" ] }\n"));
  REQUIRE(t.started());
  long baseline = t.rssKiB();
  auto applied = [&] {
    return metricValue(adminGet(t.adminPort(), "/metrics").body, "tether_config_reloads_total",
                       "result=\"applied\"");
  };
  // About 2.5 MB of rules (4,000 services and routes): seconds of YAML parsing.
  std::string big = services(app.port(), 4000, "svc");
  {
    std::ofstream f(dir + "/rules.yaml.tmp");
    f << big;
  }
  auto start = std::chrono::steady_clock::now();
  REQUIRE(std::rename((dir + "/rules.yaml.tmp").c_str(), (dir + "/rules.yaml").c_str()) == 0);
  // Probes keep being answered while it loads.
  std::chrono::steady_clock::duration slowest{};
  int probes = 0;
  while (applied() < 1 && std::chrono::steady_clock::now() - start < std::chrono::seconds(60)) {
    auto before = std::chrono::steady_clock::now();
    CHECK(adminGet(t.adminPort(), "/live").status == 200);
    slowest = std::max(slowest, std::chrono::steady_clock::now() - before);
    ++probes;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(applied() == 1);
  auto loadTime = std::chrono::steady_clock::now() - start;
  INFO("load took " << std::chrono::duration_cast<std::chrono::milliseconds>(loadTime).count()
                    << " ms, " << probes << " probes, slowest "
                    << std::chrono::duration_cast<std::chrono::milliseconds>(slowest).count()
                    << " ms");
  CHECK(probes >= 5);
  CHECK(slowest < loadTime / 2);
  CHECK(httpRequest(t.port("outbound"), "GET", "/", "svc3999").status == 200);
  long peak = t.rssKiB();

  // Replaced by a small one: the memory goes back.
  std::ofstream(dir + "/rules.yaml.tmp") << services(app.port(), 1, "small");
  REQUIRE(std::rename((dir + "/rules.yaml.tmp").c_str(), (dir + "/rules.yaml").c_str()) == 0);
  REQUIRE(waitUntil([&] { return applied() == 2; }, 30000));
  CHECK(httpRequest(t.port("outbound"), "GET", "/", "svc3999").status == 404);
#if !defined(__SANITIZE_ADDRESS__)  // ASan's allocator keeps freed memory in quarantine
  INFO("baseline " << baseline << " KiB, peak " << peak << " KiB");
  CHECK(waitUntil([&] { return t.rssKiB() < baseline + (peak - baseline) / 4; }, 5000));
#else
  (void)baseline;
  (void)peak;
#endif
}
