#include "filters/router/load_balancer.h"

#include <algorithm>
#include <numeric>

namespace tether::filters {

namespace {

uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

size_t weightedRandom(const std::vector<uint64_t>& weights, uint64_t random) {
  uint64_t total = std::accumulate(weights.begin(), weights.end(), uint64_t{0});
  uint64_t point = random % total;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (point < weights[i]) return i;
    point -= weights[i];
  }
  return weights.size() - 1;
}

// nginx's smooth weighted round robin: every pick raises each endpoint's current weight by
// its weight and lowers the winner's by the total, so a 5:1:1 split comes out as
// a,a,b,a,c,a,a rather than in bursts.
size_t smoothRoundRobin(const std::vector<uint64_t>& weights, LbState& state) {
  if (state.currentWeights.size() != weights.size()) {
    state.currentWeights.assign(weights.size(), 0);
  }
  int64_t total = 0;
  size_t best = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    state.currentWeights[i] += static_cast<int64_t>(weights[i]);
    total += static_cast<int64_t>(weights[i]);
    if (state.currentWeights[i] > state.currentWeights[best]) best = i;
  }
  state.currentWeights[best] -= total;
  return best;
}

// Power of two choices, weighted: two candidates drawn by weight, the one with fewer
// requests in flight per unit of weight wins (ties go to the first).
size_t leastRequest(const std::vector<uint64_t>& weights, const PickContext& ctx) {
  size_t a = weightedRandom(weights, ctx.random1);
  size_t b = weightedRandom(weights, ctx.random2);
  if (!ctx.active || a == b) return a;
  // Compare (active+1)/weight without division.
  uint64_t loadA = (static_cast<uint64_t>(ctx.active(a)) + 1) * weights[b];
  uint64_t loadB = (static_cast<uint64_t>(ctx.active(b)) + 1) * weights[a];
  return loadB < loadA ? b : a;
}

}  // namespace

uint64_t stableHash(std::string_view data) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return mix(h);
}

LbTables::LbTables(config::LbPolicy policy,
                   const std::vector<const config::EndpointConfig*>& endpoints) {
  if (endpoints.empty()) return;
  uint64_t totalWeight = 0;
  for (const auto* e : endpoints) totalWeight += e->weight;
  if (policy == config::LbPolicy::kRingHash) {
    // Each endpoint gets points in proportion to its weight, at least kMinRingSize in all;
    // a point's position depends only on the endpoint's address, so adding an endpoint
    // moves only the keys that land on its new points (~1/N of them).
    size_t ringSize = std::max<size_t>(kMinRingSize, endpoints.size() * 160);
    for (uint32_t i = 0; i < endpoints.size(); ++i) {
      size_t points = std::max<size_t>(1, ringSize * endpoints[i]->weight / totalWeight);
      for (size_t p = 0; p < points; ++p) {
        ring_.emplace_back(stableHash(endpoints[i]->addressText + "_" + std::to_string(p)), i);
      }
    }
    std::sort(ring_.begin(), ring_.end());
  } else if (policy == config::LbPolicy::kMaglev) {
    // Maglev (Eisenbud et al. 2016) with weights: each endpoint walks its own permutation
    // of the table and claims free slots; heavier endpoints take turns more often.
    const size_t m = kMaglevTableSize;
    size_t n = endpoints.size();
    std::vector<uint64_t> offset(n), skip(n), next(n, 0);
    uint32_t maxWeight = 0;
    for (size_t i = 0; i < n; ++i) {
      uint64_t h = stableHash(endpoints[i]->addressText);
      offset[i] = h % m;
      skip[i] = mix(h) % (m - 1) + 1;
      maxWeight = std::max(maxWeight, endpoints[i]->weight);
    }
    maglev_.assign(m, UINT32_MAX);
    size_t filled = 0;
    for (uint64_t round = 1; filled < m; ++round) {
      for (size_t i = 0; i < n && filled < m; ++i) {
        // Weighted turns: endpoint i plays in `round` when its share has come due.
        if (round * endpoints[i]->weight / maxWeight ==
            (round - 1) * endpoints[i]->weight / maxWeight) {
          continue;
        }
        size_t slot;
        do {
          slot = (offset[i] + next[i] * skip[i]) % m;
          ++next[i];
        } while (maglev_[slot] != UINT32_MAX);
        maglev_[slot] = static_cast<uint32_t>(i);
        ++filled;
      }
    }
  }
}

size_t LbTables::ringLookup(uint64_t hash) const {
  auto it = std::lower_bound(ring_.begin(), ring_.end(), std::make_pair(hash, uint32_t{0}));
  if (it == ring_.end()) it = ring_.begin();
  return it->second;
}

size_t LbTables::maglevLookup(uint64_t hash) const { return maglev_[hash % maglev_.size()]; }

size_t pickEndpoint(config::LbPolicy policy, const std::vector<uint64_t>& weights,
                    const LbTables& tables, LbState& state, const PickContext& ctx) {
  if (weights.size() == 1) return 0;
  switch (policy) {
    case config::LbPolicy::kRoundRobin:
      return smoothRoundRobin(weights, state);
    case config::LbPolicy::kRandom:
      return weightedRandom(weights, ctx.random1);
    case config::LbPolicy::kLeastRequest:
      return leastRequest(weights, ctx);
    case config::LbPolicy::kRingHash:
      return ctx.hasHash ? tables.ringLookup(ctx.hash) : weightedRandom(weights, ctx.random1);
    case config::LbPolicy::kMaglev:
      return ctx.hasHash ? tables.maglevLookup(ctx.hash) : weightedRandom(weights, ctx.random1);
  }
  return 0;
}

}  // namespace tether::filters
