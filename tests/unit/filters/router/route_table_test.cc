#include "filters/router/route_table.h"

#include <catch2/catch.hpp>
#include <map>

#include "tests/unit/filters/rules_fixture.h"

using namespace tether;
using filters::RouteTable;

namespace {

const std::string kRules = R"(
apiVersion: tether.dev/v1alpha1
kind: Service
metadata: { name: ratings }
spec:
  endpoints:
    - { address: 127.0.0.1:9001, labels: { version: v1 } }
    - { address: 127.0.0.1:9002, labels: { version: v2 } }
---
apiVersion: tether.dev/v1alpha1
kind: Service
metadata: { name: fallback }
spec: { endpoints: [ { address: 127.0.0.1:9100 } ] }
---
apiVersion: tether.dev/v1alpha1
kind: Route
metadata: { name: ratings }
spec:
  hosts: [ ratings ]
  rules:
    - match: { headers: { x-canary: { exact: "true" } } }
      backends: [ { service: ratings, subset: { version: v2 } } ]
    - match: { path: /exact, methods: [ POST ] }
      backends: [ { service: fallback } ]
    - match: { pathRegex: "/items/[0-9]+" }
      backends: [ { service: fallback } ]
    - match: { queryParams: { debug: { present: true } } }
      backends: [ { service: fallback } ]
    - match: { pathPrefix: /api, headers: { x-user: { prefix: "vip-" } } }
      backends: [ { service: fallback } ]
    - match: { pathPrefix: / }
      backends:
        - { service: ratings, subset: { version: v1 }, weight: 90 }
        - { service: ratings, subset: { version: v2 }, weight: 10 }
---
apiVersion: tether.dev/v1alpha1
kind: Route
metadata: { name: catch-all }
spec:
  hosts: [ "*" ]
  rules:
    - match: { pathPrefix: /any }
      backends: [ { service: fallback } ]
)";

proxy::RequestHead req(const std::string& host, const std::string& path,
                       const std::string& method = "GET") {
  proxy::RequestHead h;
  h.authority = host;
  h.path = path;
  h.method = method;
  return h;
}

size_t ruleIndex(const filters::CompiledRule* r) {
  REQUIRE(r);
  return static_cast<size_t>(r->rule - r->route->rules.data());
}

}  // namespace

TEST_CASE("routes match host, then rules in order, first match wins", "[router]") {
  RouteTable table(tether::test::loadRules(kRules));
  auto canary = req("ratings", "/x");
  canary.headers.add("x-canary", "true");
  CHECK(ruleIndex(table.matchOutbound(canary)) == 0);
  CHECK(ruleIndex(table.matchOutbound(req("ratings", "/exact", "POST"))) == 1);
  CHECK(ruleIndex(table.matchOutbound(req("ratings", "/exact", "GET"))) == 5);
  CHECK(ruleIndex(table.matchOutbound(req("ratings", "/items/42"))) == 2);
  CHECK(ruleIndex(table.matchOutbound(req("ratings", "/items/4x2"))) == 5);
  CHECK(ruleIndex(table.matchOutbound(req("ratings", "/q?a=1&debug"))) == 3);
  auto vip = req("ratings", "/api/v1");
  vip.headers.add("x-user", "vip-7");
  CHECK(ruleIndex(table.matchOutbound(vip)) == 4);
  // The port is ignored when no route names it.
  CHECK(ruleIndex(table.matchOutbound(req("ratings:9080", "/"))) == 5);
  // Unknown hosts fall through to "*", then to nothing.
  CHECK(table.matchOutbound(req("other", "/any/thing"))->route->name == "catch-all");
  CHECK(table.matchOutbound(req("other", "/nothing")) == nullptr);
}

TEST_CASE("subsets narrow a backend's endpoints by label", "[router]") {
  RouteTable table(tether::test::loadRules(kRules));
  auto canary = req("ratings", "/");
  canary.headers.add("x-canary", "true");
  const filters::CompiledRule* r = table.matchOutbound(canary);
  REQUIRE(r->backends[0].endpoints.size() == 1);
  CHECK(r->backends[0].endpoints[0]->address.port == 9002);
}

TEST_CASE("a weighted split is within 1 point of its weights over 10,000 picks", "[router]") {
  RouteTable table(tether::test::loadRules(kRules));
  const filters::CompiledRule* r = table.matchOutbound(req("ratings", "/"));
  REQUIRE(r->backends.size() == 2);
  std::map<uint16_t, int> hits;
  uint64_t x = 88172645463325252ULL;  // xorshift, deterministic
  for (int i = 0; i < 10000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const filters::CompiledBackend* b = RouteTable::pickBackend(*r, x);
    filters::LbState state;
    filters::PickContext ctx;
    ctx.random1 = x >> 11;
    hits[b->endpoints[static_cast<size_t>(RouteTable::pickEndpoint(*b, state, ctx))]
             ->address.port]++;
  }
  CHECK(hits[9001] == Approx(9000).margin(100));
  CHECK(hits[9002] == Approx(1000).margin(100));
}

TEST_CASE("inbound traffic goes to the local app", "[router]") {
  RouteTable table(tether::test::loadRules(kRules));
  const filters::CompiledRule* r = table.inbound();
  REQUIRE(r->backends.size() == 1);
  CHECK(r->backends[0].service->name == config::kLocalAppService);
  CHECK(r->backends[0].endpoints[0]->address.toString() == "127.0.0.1:8080");
}

TEST_CASE("an intercepted request routes by host, then by its original destination's service",
          "[router]") {
  auto config = tether::test::loadRules(
      kRules +
          "---\napiVersion: tether.dev/v1alpha1\nkind: Service\nmetadata: { name: vip }\n"
          "spec: { addresses: [ \"10.96.0.7:80\" ], endpoints: [ { address: 127.0.0.1:9200 } ] }\n",
      "listeners: [ { name: out, address: 127.0.0.1:15001, originalDestination: true } ]\n");
  RouteTable table(config);
  auto dest = [](const std::string& address) {
    config::EndpointConfig e;
    e.address = *config::parseAddress(address);
    e.addressText = e.address.toString();
    return e;
  };
  config::EndpointConfig fallbackEndpoint = dest("127.0.0.1:9100");
  // A route naming the host wins.
  CHECK(ruleIndex(table.matchOutbound(req("ratings", "/"), &fallbackEndpoint)) == 5);
  // Else the service owning the address the app dialed, before routes for any host.
  const filters::CompiledRule* r = table.matchOutbound(req("other", "/any/x"), &fallbackEndpoint);
  REQUIRE(r);
  CHECK(r->route->name == "original_destination");
  CHECK(r->backends[0].service->name == "fallback");
  // A Service's virtual address (a ClusterIP) counts as its own.
  config::EndpointConfig vip = dest("10.96.0.7:80");
  r = table.matchOutbound(req("10.96.0.7", "/"), &vip);
  REQUIRE(r);
  CHECK(r->backends[0].service->name == "vip");
  CHECK(r->backends[0].endpoints[0]->address.port == 9200);
  // Unknown: the "*" routes, then nothing (the router passes it through or denies it).
  config::EndpointConfig unknown = dest("192.0.2.1:80");
  CHECK(table.matchOutbound(req("other", "/any/x"), &unknown)->route->name == "catch-all");
  CHECK(table.matchOutbound(req("other", "/x"), &unknown) == nullptr);
  CHECK(table.passthrough()->backends[0].service->name == "passthrough");
  CHECK(table.passthrough()->backends[0].endpoints.empty());
}

TEST_CASE("without an intercepting listener the original destination is not consulted",
          "[router]") {
  RouteTable table(tether::test::loadRules(kRules));
  config::EndpointConfig e;
  e.address = *config::parseAddress("127.0.0.1:9100");
  e.addressText = e.address.toString();
  CHECK(table.matchOutbound(req("other", "/x"), &e) == nullptr);
}
