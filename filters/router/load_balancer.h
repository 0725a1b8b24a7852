#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "config/rules.h"
#include "proxy/upstream/endpoint_health.h"

namespace tether::filters {

/// 64-bit hash of bytes, stable across processes and runs (FNV-1a, then a splitmix64
/// finalizer so nearby inputs spread over the whole range).
uint64_t stableHash(std::string_view data);

/// The immutable half of a backend's balancing: what depends only on the endpoint set
/// (consistent-hash tables). Built once per snapshot, shared read-only by every worker.
class LbTables {
 public:
  LbTables(config::LbPolicy policy, const std::vector<const config::EndpointConfig*>& endpoints);

  /// ring_hash: the endpoint owning `hash` on the ring (first point at or after it).
  size_t ringLookup(uint64_t hash) const;
  /// maglev: the endpoint in the lookup table slot for `hash`.
  size_t maglevLookup(uint64_t hash) const;

  static constexpr size_t kMaglevTableSize = 65537;  // prime, Envoy's default
  static constexpr size_t kMinRingSize = 1024;

 private:
  std::vector<std::pair<uint64_t, uint32_t>> ring_;  // sorted by hash
  std::vector<uint32_t> maglev_;
};

/// The per-worker, mutable half (no locks: one worker, one state).
struct LbState {
  std::vector<int64_t> currentWeights;  // smooth weighted round robin
};

/// Everything a pick may look at for one request.
struct PickContext {
  uint64_t random1 = 0;  // two independent uniform numbers
  uint64_t random2 = 0;
  bool hasHash = false;  // ring_hash/maglev: the request's hash key was present
  uint64_t hash = 0;
  std::chrono::steady_clock::time_point now{};  // slow start
  int64_t nowMs = 0;                            // health: the time base of proxy::steadyNowMs()
  /// Requests in flight to endpoint i on this worker (least_request); may be empty.
  std::function<uint32_t(size_t)> active;
};

using proxy::slowStartWeight;  // proxy/upstream/endpoint_health.h: /clusters reports it too

/// Picks an endpoint index for `policy`. `weights` are the effective weights (slow start
/// applied); `tables` serves the hashing policies. Requests without a hash key under a
/// hashing policy are spread by weighted random choice.
size_t pickEndpoint(config::LbPolicy policy, const std::vector<uint64_t>& weights,
                    const LbTables& tables, LbState& state, const PickContext& ctx);

}  // namespace tether::filters
