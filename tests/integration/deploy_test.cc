// Deployment artifacts checked against the real binary and real tools: `tether inject`
// against expected YAML, the systemd unit with systemd-analyze, the Grafana dashboard's
// queries against promtool and a running Tether's /metrics.

#include <yaml-cpp/yaml.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "tests/fakes/fake_upstream.h"
#include "tests/integration/harness.h"

using namespace tether::test;

namespace {

const std::string kSource = TETHER_SOURCE_DIR;
const std::string kBin = TETHER_BIN;

/// `text` without its leading comment lines.
std::string withoutHeaderComments(const std::string& text) {
  size_t pos = 0;
  while (pos < text.size() && text[pos] == '#') pos = text.find('\n', pos) + 1;
  return text.substr(pos);
}

void collectExprs(const YAML::Node& n, std::vector<std::string>& out) {
  if (n.IsMap()) {
    for (const auto& kv : n) {
      if (kv.first.Scalar() == "expr" && kv.second.IsScalar()) {
        out.push_back(kv.second.Scalar());
      } else {
        collectExprs(kv.second, out);
      }
    }
  } else if (n.IsSequence()) {
    for (const auto& item : n) collectExprs(item, out);
  }
}

}  // namespace

TEST_CASE("tether inject writes the sidecar into the example Deployment exactly as documented",
          "[deploy]") {
  std::string out;
  int rc = runCommand(
      kBin + " inject -f " + kSource + "/deploy/kubernetes/reviews.yaml --image tether:0.1.0",
      &out);
  CHECK(rc == 0);
  CHECK(out ==
        withoutHeaderComments(readFile(kSource + "/deploy/kubernetes/reviews-injected.yaml")));
}

TEST_CASE("tether inject handles every workload kind, multi-document, and is idempotent",
          "[deploy]") {
  const std::string flags =
      " --image tether:test --config-map db-tether --drain-timeout 40"
      " --exclude-outbound-ports 5432";
  const std::string fixtures = std::string(TETHER_FIXTURES_DIR) + "/inject/";
  std::string out, log;
  REQUIRE(runCommand(kBin + " inject -f " + fixtures + "workloads.yaml" + flags + " 2>" +
                         tempDir() + "/inject.err",
                     &out) == 0);
  std::string expected = readFile(fixtures + "workloads-injected.yaml");
  CHECK(out == expected);
  CHECK(readFile(tempDir() + "/inject.err") ==
        "tether inject: 4 pod template(s) injected, 1 left as they were\n");
  // What the fixture shows, spelled out: a native sidecar before the existing init
  // container, the grace period raised to cover the drain but never lowered.
  std::vector<YAML::Node> docs = YAML::LoadAll(out);
  REQUIRE(docs.size() == 6);
  YAML::Node db = docs[1]["spec"]["template"]["spec"];
  REQUIRE(db["initContainers"].size() == 3);
  CHECK(db["initContainers"][0]["name"].as<std::string>() == "tether-init");
  CHECK(db["initContainers"][1]["restartPolicy"].as<std::string>() == "Always");
  CHECK(db["initContainers"][2]["name"].as<std::string>() == "migrate");
  CHECK(db["terminationGracePeriodSeconds"].as<int>() == 120);
  CHECK(docs[2]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"].as<int>() == 50);
  CHECK(docs[1]["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"]
            .as<std::string>() == "true");
  CHECK(!docs[4]["spec"]["initContainers"]);  // opted out
  CHECK(docs[0]["data"]["app.properties"].as<std::string>() == "mode=fast\nretries=3\n");

  std::string again;
  REQUIRE(runCommand("cat " + fixtures + "workloads-injected.yaml | " + kBin + " inject -f -" +
                         flags + " 2>/dev/null",
                     &again) == 0);
  CHECK(again == expected);
}

TEST_CASE("tether inject reports a YAML error with its position", "[deploy]") {
  std::string path = writeFile("broken.yaml", "kind: Deployment\nspec: [ unclosed\n");
  std::string out;
  CHECK(runCommand(kBin + " inject -f " + path, &out, true) == 1);
  CHECK(out.find(path + ":3:1: ") != std::string::npos);
}

TEST_CASE("the systemd unit passes systemd-analyze verify", "[deploy]") {
  std::string unit = readFile(kSource + "/deploy/systemd/tether.service");
  REQUIRE(unit.find("ExecStart=/usr/local/bin/tether run") != std::string::npos);
  // verify checks that the binaries exist: point it at the one just built.
  std::string local = std::regex_replace(unit, std::regex("/usr/local/bin/tether "), kBin + " ");
  std::string path = writeFile("tether.service", local);
  std::string out;
  int rc = runCommand("systemd-analyze verify " + path, &out, true);
  INFO(out);
  CHECK(rc == 0);
  CHECK(out.empty());  // a misspelt setting is only a warning: none is allowed
}

TEST_CASE("every metric the Grafana dashboard queries is exported, and every query parses",
          "[deploy]") {
  YAML::Node dash = YAML::LoadFile(kSource + "/deploy/grafana/tether-dashboard.json");
  std::vector<std::string> exprs;
  collectExprs(dash, exprs);
  REQUIRE(exprs.size() >= 12);

  // promtool parses each query (Grafana's variables replaced by what they stand for).
  std::string rules = "groups:\n  - name: dashboard\n    rules:\n";
  for (size_t i = 0; i < exprs.size(); ++i) {
    std::string e = std::regex_replace(exprs[i], std::regex(R"(\$__rate_interval)"), "1m");
    e = std::regex_replace(e, std::regex(R"(\$instance)"), ".*");
    rules +=
        "      - record: tether:dashboard_" + std::to_string(i) + "\n        expr: '" + e + "'\n";
  }
  std::string out;
  int rc =
      runCommand("promtool check rules " + writeFile("dashboard-rules.yml", rules), &out, true);
  INFO(out);
  CHECK(rc == 0);

  // A Tether with a breaker and a limit, after some traffic, exports every family named.
  FakeUpstream app;
  TetherProcess t(routedBootstrap(app.port()) +
                  "    - { apiVersion: tether.dev/v1alpha1, kind: CircuitBreaker, metadata: "
                  "{ name: cb }, spec: { target: { service: up } } }\n"
                  "    - { apiVersion: tether.dev/v1alpha1, kind: RateLimit, metadata: "
                  "{ name: rl }, spec: { limit: 1000, per: 1s } }\n");
  REQUIRE(t.started());
  CHECK(httpRequest(t.port("outbound"), "GET", "/x", "up").status == 200);
  std::string metrics = adminGet(t.adminPort(), "/metrics").body;
  std::set<std::string> names;
  std::regex metricName(R"(tether_[a-z0-9_]+)");
  for (const auto& e : exprs) {
    for (auto it = std::sregex_iterator(e.begin(), e.end(), metricName);
         it != std::sregex_iterator(); ++it) {
      names.insert(it->str());
    }
  }
  for (std::string name : names) {
    INFO(name);
    // A histogram's series are its family's: _bucket, _sum, _count.
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      std::string s = suffix;
      if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0 &&
          metrics.find("# TYPE " + name.substr(0, name.size() - s.size()) + " histogram") !=
              std::string::npos) {
        name = name.substr(0, name.size() - s.size());
      }
    }
    CHECK(metrics.find("# TYPE " + name + " ") != std::string::npos);
  }
}

TEST_CASE("the release tarball holds a working binary and the deployment files", "[deploy]") {
  std::string buildDir = kBin.substr(0, kBin.rfind('/'));
  std::string out = tempDir() + "/dist";
  std::string tarball;
  REQUIRE(runCommand(kSource + "/deploy/make-dist.sh " + buildDir + " " + out, &tarball) == 0);
  while (!tarball.empty() && tarball.back() == '\n') tarball.pop_back();
  REQUIRE(runCommand("tar -C " + out + " -xzf " + tarball) == 0);
  std::string root = tarball.substr(0, tarball.size() - std::string(".tar.gz").size());
  std::string version;
  CHECK(runCommand(root + "/bin/tether version", &version) == 0);
  CHECK(version.rfind("tether ", 0) == 0);
  for (const char* f :
       {"/bin/tether-iptables", "/systemd/tether.service", "/kubernetes/reviews-injected.yaml",
        "/grafana/tether-dashboard.json", "/docs/deploy.md", "/README.md"}) {
    INFO(f);
    CHECK(runCommand("test -s " + root + f) == 0);
  }
}

TEST_CASE("the Dockerfile builds from exactly what it copies, and names real packages",
          "[deploy]") {
  // No Docker engine here: its build stage is replayed by hand. Every COPY source exists,
  // and CMake configures from those files alone (a directory left out would fail here).
  std::string dockerfile = readFile(kSource + "/deploy/Dockerfile");
  std::string stage = tempDir() + "/docker-build-stage";
  REQUIRE(runCommand("rm -rf " + stage + " && mkdir -p " + stage) == 0);
  std::istringstream lines(dockerfile);
  std::string line;
  bool buildStage = false;
  std::vector<std::string> runtimePackages;
  while (std::getline(lines, line)) {
    if (line.rfind("FROM ", 0) == 0) buildStage = line.find(" AS build") != std::string::npos;
    std::smatch m;
    if (std::regex_match(line, m, std::regex(R"(COPY (\S+) (\S+))"))) {
      INFO(line);
      CHECK(runCommand("test -e " + kSource + "/" + m[1].str()) == 0);
      if (buildStage) {
        CHECK(runCommand("cp -r " + kSource + "/" + m[1].str() + " " + stage + "/") == 0);
      }
    }
    if (!buildStage) {
      for (const char* lib : {"libuv1", "libnghttp2-14", "libyaml-cpp0.7", "libssl3",
                              "libprometheus-cpp-core1.0", "libhiredis0.14"}) {
        if (line.find(std::string(lib) + " ") != std::string::npos) runtimePackages.push_back(lib);
      }
    }
  }
  std::string out;
  int rc = runCommand("cmake -S " + stage + " -B " + stage + "/build -DCMAKE_BUILD_TYPE=Release " +
                          "-DTETHER_TESTS=OFF",
                      &out, true);
  INFO(out);
  CHECK(rc == 0);
  // The runtime stage installs the libraries the binary links: each is a real Debian 12
  // package (installed here as a dependency of its -dev package).
  CHECK(runtimePackages.size() == 6);
  for (const auto& p : runtimePackages) {
    INFO(p);
    CHECK(runCommand("dpkg-query -W " + p + " >/dev/null 2>&1") == 0);
  }
  std::string ldd;
  runCommand("ldd " + kBin, &ldd);
  for (const char* so : {"libuv.so.1", "libnghttp2.so.14", "libyaml-cpp.so.0.7", "libssl.so.3",
                         "libprometheus-cpp-core.so.1.0", "libhiredis.so.0.14"}) {
    INFO(so);
    CHECK(ldd.find(so) != std::string::npos);
  }
}
