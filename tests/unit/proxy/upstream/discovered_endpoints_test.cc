// The EDS-like endpoint interface: run-time endpoints layered over the loaded rules.

#include "proxy/upstream/discovered_endpoints.h"

#include <catch2/catch.hpp>

using namespace tether;
using namespace tether::proxy;

namespace {

config::EndpointConfig ep(const std::string& ip, uint16_t port, uint32_t weight = 1,
                          config::Labels labels = {}) {
  config::EndpointConfig e;
  e.address = config::Address{ip, port};
  e.weight = weight;
  e.labels = std::move(labels);
  return e;
}

std::shared_ptr<const config::Config> base() {
  auto r = config::loadFromSources(
      config::Source{"boot.yaml", ""},
      {config::Source{"rules.yaml",
                      "apiVersion: tether.dev/v1alpha1\nkind: Service\nmetadata: {name: a}\n"
                      "spec: {endpoints: [{address: 127.0.0.1:1}]}\n---\n"
                      "apiVersion: tether.dev/v1alpha1\nkind: Service\nmetadata: {name: b}\n"
                      "spec: {dns: \"b.example:80\"}\n"}},
      false);
  REQUIRE(r.config);
  return r.config;
}

}  // namespace

TEST_CASE("discovered endpoints replace a service's, with labels and weights", "[eds]") {
  DiscoveredEndpoints d;
  auto cfg = base();
  CHECK(d.apply(cfg) == cfg);  // nothing discovered: the same object, no copy
  CHECK(d.set("b", {ep("10.0.0.2", 80, 3, {{"version", "v2"}}), ep("10.0.0.1", 80)}));
  auto applied = d.apply(cfg);
  const auto& b = applied->findService("b")->endpoints;
  REQUIRE(b.size() == 2);
  CHECK(b[0].addressText == "10.0.0.1:80");  // sorted, text precomputed
  CHECK(b[1].weight == 3);
  CHECK(b[1].labels.at("version") == "v2");
  CHECK(applied->findService("a")->endpoints.size() == 1);  // untouched
  CHECK(cfg->findService("b")->endpoints.empty());          // the base is not modified
}

TEST_CASE("only real changes report true, so snapshots are built only for them", "[eds]") {
  DiscoveredEndpoints d;
  CHECK(d.set("b", {ep("10.0.0.1", 80), ep("10.0.0.2", 80)}));
  CHECK_FALSE(d.set("b", {ep("10.0.0.2", 80), ep("10.0.0.1", 80)}));  // same set, any order
  CHECK_FALSE(d.upsert("b", ep("10.0.0.1", 80)));
  CHECK(d.upsert("b", ep("10.0.0.1", 80, 5)));  // weight changed
  CHECK(d.upsert("b", ep("10.0.0.3", 80)));     // added
  CHECK(d.remove("b", "10.0.0.2:80"));
  CHECK_FALSE(d.remove("b", "10.0.0.2:80"));
  auto applied = d.apply(base());
  const auto& b = applied->findService("b")->endpoints;
  REQUIRE(b.size() == 2);
  CHECK(b[0].weight == 5);
  CHECK(b[1].addressText == "10.0.0.3:80");
  CHECK(d.erase("b"));
  CHECK_FALSE(d.has("b"));
}
