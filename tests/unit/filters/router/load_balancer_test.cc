// Load-balancing policies: distributions against weights, consistent-hash stability, the
// slow-start ramp. Deterministic: randomness and time are parameters.

#include "filters/router/load_balancer.h"

#include <catch2/catch.hpp>
#include <map>

using namespace tether;
using namespace tether::filters;

namespace {

std::vector<config::EndpointConfig> makeEndpoints(const std::vector<uint32_t>& weights,
                                                  int firstPort = 9000) {
  std::vector<config::EndpointConfig> out;
  for (size_t i = 0; i < weights.size(); ++i) {
    config::EndpointConfig e;
    e.address = config::Address{"10.0.0.1", static_cast<uint16_t>(firstPort + i)};
    e.addressText = e.address.toString();
    e.weight = weights[i];
    out.push_back(e);
  }
  return out;
}

std::vector<const config::EndpointConfig*> pointers(const std::vector<config::EndpointConfig>& v) {
  std::vector<const config::EndpointConfig*> out;
  for (const auto& e : v) out.push_back(&e);
  return out;
}

std::vector<uint64_t> fullWeights(const std::vector<config::EndpointConfig>& v) {
  std::vector<uint64_t> out;
  for (const auto& e : v) out.push_back(static_cast<uint64_t>(e.weight) * 100);
  return out;
}

struct Rng {
  uint64_t x = 88172645463325252ULL;
  uint64_t next() {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  }
};

std::vector<int> distribution(config::LbPolicy policy, const std::vector<uint32_t>& w, int n,
                              bool hashed = false) {
  auto eps = makeEndpoints(w);
  LbTables tables(policy, pointers(eps));
  LbState state;
  Rng rng;
  std::vector<int> hits(w.size());
  for (int i = 0; i < n; ++i) {
    PickContext ctx;
    ctx.random1 = rng.next();
    ctx.random2 = rng.next();
    if (hashed) {
      ctx.hasHash = true;
      ctx.hash = stableHash("user-" + std::to_string(i));
    }
    hits[pickEndpoint(policy, fullWeights(eps), tables, state, ctx)]++;
  }
  return hits;
}

}  // namespace

TEST_CASE("smooth round robin is exact and interleaved", "[lb]") {
  auto eps = makeEndpoints({5, 1, 1});
  LbTables tables(config::LbPolicy::kRoundRobin, pointers(eps));
  LbState state;
  std::string order;
  for (int i = 0; i < 7; ++i) {
    order += static_cast<char>(
        'a' + pickEndpoint(config::LbPolicy::kRoundRobin, fullWeights(eps), tables, state, {}));
  }
  CHECK(order == "aabacaa");  // nginx's smooth weighted round robin, not "aaaaabc"
  CHECK(distribution(config::LbPolicy::kRoundRobin, {3, 1}, 4000) == std::vector<int>{3000, 1000});
}

TEST_CASE("random and least_request follow the weights", "[lb]") {
  for (auto policy : {config::LbPolicy::kRandom, config::LbPolicy::kLeastRequest}) {
    auto hits = distribution(policy, {1, 2, 7}, 100000);
    CHECK(hits[0] == Approx(10000).epsilon(0.05));
    CHECK(hits[1] == Approx(20000).epsilon(0.05));
    CHECK(hits[2] == Approx(70000).epsilon(0.05));
  }
}

TEST_CASE("least_request prefers the endpoint with fewer requests in flight", "[lb]") {
  auto eps = makeEndpoints({1, 1});
  LbTables tables(config::LbPolicy::kLeastRequest, pointers(eps));
  LbState state;
  Rng rng;
  std::vector<uint32_t> active = {10, 0};
  int toIdle = 0;
  for (int i = 0; i < 10000; ++i) {
    PickContext ctx;
    ctx.random1 = rng.next();
    ctx.random2 = rng.next();
    ctx.active = [&](size_t k) { return active[k]; };
    toIdle +=
        pickEndpoint(config::LbPolicy::kLeastRequest, fullWeights(eps), tables, state, ctx) == 1;
  }
  // Two choices: the busy one wins only when both draws land on it (1 in 4).
  CHECK(toIdle == Approx(7500).epsilon(0.03));
}

TEST_CASE("consistent hashing: same key same endpoint, weights respected", "[lb]") {
  for (auto policy : {config::LbPolicy::kRingHash, config::LbPolicy::kMaglev}) {
    INFO(static_cast<int>(policy));
    auto hits = distribution(policy, {1, 1, 2}, 40000, true);
    CHECK(hits[0] == Approx(10000).epsilon(0.15));
    CHECK(hits[1] == Approx(10000).epsilon(0.15));
    CHECK(hits[2] == Approx(20000).epsilon(0.15));
    auto eps = makeEndpoints({1, 1, 2});
    LbTables tables(policy, pointers(eps));
    LbState state;
    PickContext ctx;
    ctx.hasHash = true;
    ctx.hash = stableHash("alice");
    size_t first = pickEndpoint(policy, fullWeights(eps), tables, state, ctx);
    for (int i = 0; i < 10; ++i) {
      ctx.random1 = static_cast<uint64_t>(i) * 7919;  // randomness must not matter
      CHECK(pickEndpoint(policy, fullWeights(eps), tables, state, ctx) == first);
    }
  }
}

TEST_CASE("adding an endpoint moves only about 1/N of the keys", "[lb]") {
  for (auto policy : {config::LbPolicy::kRingHash, config::LbPolicy::kMaglev}) {
    INFO(static_cast<int>(policy));
    auto ten = makeEndpoints(std::vector<uint32_t>(10, 1));
    auto eleven = makeEndpoints(std::vector<uint32_t>(11, 1));
    LbTables before(policy, pointers(ten)), after(policy, pointers(eleven));
    LbState s1, s2;
    int moved = 0, toNew = 0;
    const int keys = 20000;
    for (int i = 0; i < keys; ++i) {
      PickContext ctx;
      ctx.hasHash = true;
      ctx.hash = stableHash("session-" + std::to_string(i));
      size_t a = pickEndpoint(policy, fullWeights(ten), before, s1, ctx);
      size_t b = pickEndpoint(policy, fullWeights(eleven), after, s2, ctx);
      if (a != b) {
        ++moved;
        toNew += b == 10;
      }
    }
    // Ideal: 1/11 (9.1%) move, all of them to the new endpoint.
    CHECK(moved < keys * 0.15);
    CHECK(moved > keys * 0.05);
    CHECK(toNew > moved * 0.8);
  }
}

TEST_CASE("slow start ramps a new endpoint from 10% to full weight", "[lb]") {
  using std::chrono::milliseconds;
  CHECK(slowStartWeight(2, milliseconds(0), milliseconds(30000)) == 20);
  CHECK(slowStartWeight(2, milliseconds(15000), milliseconds(30000)) == 110);
  CHECK(slowStartWeight(2, milliseconds(30000), milliseconds(30000)) == 200);
  CHECK(slowStartWeight(2, milliseconds(99999), milliseconds(30000)) == 200);
  CHECK(slowStartWeight(2, milliseconds(5), milliseconds(0)) == 200);
  // A new endpoint beside an old one of equal weight: ~9% of traffic at first, half later.
  auto eps = makeEndpoints({1, 1});
  LbTables tables(config::LbPolicy::kRoundRobin, pointers(eps));
  for (auto [age, expected] : std::vector<std::pair<int, int>>{{0, 909}, {30000, 5000}}) {
    LbState state;
    std::vector<uint64_t> w = {100, slowStartWeight(1, milliseconds(age), milliseconds(30000))};
    int toNew = 0;
    for (int i = 0; i < 10000; ++i) {
      toNew += pickEndpoint(config::LbPolicy::kRoundRobin, w, tables, state, {}) == 1;
    }
    CHECK(toNew == Approx(expected).margin(20));
  }
}
