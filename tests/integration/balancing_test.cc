// Weighted splits and load-balancing policies across several real origins.

#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <set>

#include "tests/fakes/fake_upstream.h"
#include "tests/integration/harness.h"

using namespace tether::test;

namespace {

std::string service(const std::string& name, const std::vector<const FakeUpstream*>& ups,
                    const std::string& lb = "") {
  std::string s =
      "    - apiVersion: tether.dev/v1alpha1\n      kind: Service\n"
      "      metadata: { name: " +
      name + " }\n      spec:\n        endpoints:\n";
  for (const auto* u : ups) {
    s += "          - { address: 127.0.0.1:" + std::to_string(u->port()) + " }\n";
  }
  if (!lb.empty()) s += "        loadBalancer: " + lb + "\n";
  return s;
}

}  // namespace

TEST_CASE("a 90/10 split over 10,000 requests lands within 1 point", "[balancing]") {
  FakeUpstream v1, v2;
  std::string rules =
      "rules:\n  inline:\n" + service("v1", {&v1}) + service("v2", {&v2}) +
      "    - apiVersion: tether.dev/v1alpha1\n      kind: Route\n      metadata: { name: r }\n"
      "      spec:\n        hosts: [ ratings ]\n        rules:\n"
      "          - backends: [ { service: v1, weight: 90 }, { service: v2, weight: 10 } ]\n";
  TetherProcess t(basicBootstrap(v1.port(), rules));
  REQUIRE(t.started());
  RawClient c(t.port("outbound"));
  const int n = 10000;
  std::string batch;
  for (int i = 0; i < 100; ++i) batch += "GET /x HTTP/1.1\r\nHost: ratings\r\n\r\n";
  for (int sent = 0; sent < n; sent += 100) {
    REQUIRE(c.send(batch));  // pipelined, 100 at a time
    for (int i = 0; i < 100; ++i) {
      HttpResponse r;
      REQUIRE(c.readResponse(r));
      REQUIRE(r.status == 200);
    }
  }
  double share = 100.0 * static_cast<double>(v2.requestCount()) / n;
  INFO("v2 share " << share << "%");
  CHECK(v1.requestCount() + v2.requestCount() == n);
  CHECK(share == Approx(10.0).margin(1.0));
}

TEST_CASE("round robin spreads evenly; ring_hash keeps a user on one endpoint", "[balancing]") {
  std::vector<std::unique_ptr<FakeUpstream>> ups;
  for (int i = 0; i < 3; ++i) ups.push_back(std::make_unique<FakeUpstream>());
  std::vector<const FakeUpstream*> all = {ups[0].get(), ups[1].get(), ups[2].get()};
  std::string rules =
      "rules:\n  inline:\n" + service("rr", all) +
      service("sticky", all, "{ policy: ring_hash, hashKey: \"header:x-user\" }") +
      "    - apiVersion: tether.dev/v1alpha1\n      kind: Route\n      metadata: { name: rr }\n"
      "      spec: { hosts: [ rr ], rules: [ { backends: [ { service: rr } ] } ] }\n"
      "    - apiVersion: tether.dev/v1alpha1\n      kind: Route\n      metadata: { name: s }\n"
      "      spec: { hosts: [ sticky ], rules: [ { backends: [ { service: sticky } ] } ] }\n";
  TetherProcess t(basicBootstrap(ups[0]->port(), rules));
  REQUIRE(t.started());
  uint16_t port = t.port("outbound");
  RawClient c(port);
  for (int i = 0; i < 300; ++i) {
    REQUIRE(c.send("GET /echo HTTP/1.1\r\nHost: rr\r\n\r\n"));
    HttpResponse r;
    REQUIRE(c.readResponse(r));
  }
  for (const auto& u : ups) CHECK(u->requestCount() == 100);  // exact: smooth round robin

  for (const auto& u : ups) u->clear();
  std::map<std::string, std::set<int>> seen;
  for (int round = 0; round < 4; ++round) {
    for (int user = 0; user < 30; ++user) {
      std::string name = "user-" + std::to_string(user);
      REQUIRE(c.send("GET /echo/" + name + " HTTP/1.1\r\nHost: sticky\r\nX-User: " + name +
                     "\r\n\r\n"));
      HttpResponse r;
      REQUIRE(c.readResponse(r));
    }
  }
  for (int i = 0; i < 3; ++i) {
    for (const auto& req : ups[i]->requests()) seen[req.target].insert(i);
  }
  REQUIRE(seen.size() == 30);
  std::set<int> used;
  for (const auto& [user, endpoints] : seen) {
    INFO(user);
    CHECK(endpoints.size() == 1);
    used.insert(*endpoints.begin());
  }
  CHECK(used.size() == 3);  // 30 users do not all hash to one endpoint
}
