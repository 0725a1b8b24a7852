// The JSON access log: one line per request, written off the worker thread.

#include <yaml-cpp/yaml.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <thread>

#include "tests/fakes/fake_upstream.h"
#include "tests/integration/harness.h"

using namespace tether::test;

TEST_CASE("the access log has one JSON line per request", "[accesslog]") {
  FakeUpstream app;
  std::string path = tempDir() + "/access.log";
  TetherProcess t(basicBootstrap(app.port(), "accessLog: { path: \"" + path + "\" }\n"));
  REQUIRE(t.started());
  CHECK(httpRequest(t.port("inbound"), "POST", "/echo/a?x=1", "app", "hello").status == 200);
  CHECK(httpRequest(t.port("outbound"), "GET", "/b", "nowhere").status == 404);
  std::vector<YAML::Node> lines;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (lines.size() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    lines.clear();
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) lines.push_back(YAML::Load(line));  // JSON is YAML
  }
  REQUIRE(lines.size() == 2);
  CHECK(lines[0]["direction"].as<std::string>() == "inbound");
  CHECK(lines[0]["method"].as<std::string>() == "POST");
  CHECK(lines[0]["path"].as<std::string>() == "/echo/a?x=1");
  CHECK(lines[0]["status"].as<int>() == 200);
  CHECK(lines[0]["bytes_received"].as<int>() == 5);
  CHECK(lines[0]["bytes_sent"].as<int>() == 5);
  CHECK(lines[0]["service"].as<std::string>() == "local_app");
  CHECK(lines[0]["upstream"].as<std::string>() == "127.0.0.1:" + std::to_string(app.port()));
  CHECK(lines[0]["duration_ms"].as<double>() >= 0);
  CHECK(lines[1]["status"].as<int>() == 404);
  CHECK(lines[1]["reason"].as<std::string>() == "no_route");
  CHECK(lines[1]["authority"].as<std::string>() == "nowhere");
  std::string metrics = adminGet(t.adminPort(), "/metrics").body;
  CHECK(metricValue(metrics, "tether_access_log_lines_total") == 2);
  CHECK(metricValue(metrics, "tether_access_log_dropped_total") == 0);
}
