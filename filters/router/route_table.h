#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "filters/router/load_balancer.h"
#include "proxy/codec/headers.h"
#include "proxy/upstream/endpoint_health.h"

namespace tether::filters {

using SteadyTime = std::chrono::steady_clock::time_point;

/// A backend with its service's endpoints already narrowed to the backend's subset, and
/// what its load balancer needs precomputed.
struct CompiledBackend {
  const config::BackendConfig* backend = nullptr;
  const config::ServiceConfig* service = nullptr;
  std::vector<const config::EndpointConfig*> endpoints;
  std::vector<uint64_t> weights;                 // full weights in hundredths (see slowStartWeight)
  std::vector<SteadyTime> since;                 // when each endpoint first appeared (slow start)
  std::vector<proxy::EndpointHealthPtr> health;  // parallel to endpoints
  std::vector<proxy::EndpointHealthPtr> peers;   // every endpoint of the service
  std::shared_ptr<const LbTables> tables;
  uint64_t stateKey = 0;  // process-unique: keys this backend's per-worker LbState
  /// When some endpoints carry a `lane` label, `endpoints` above are the unlabelled ones
  /// (the baseline) and each lane's endpoints form a backend of their own here.
  std::vector<std::pair<std::string, std::unique_ptr<CompiledBackend>>> lanes;

  /// The backend of lane `name`, or nullptr when no endpoint is on it.
  const CompiledBackend* lane(std::string_view name) const;
};

struct CompiledRule {
  const config::RouteConfig* route = nullptr;
  const config::RouteRule* rule = nullptr;
  std::vector<CompiledBackend> backends;
  uint32_t totalWeight = 0;
};

/// The routing decision structure built once per snapshot and shared read-only by every
/// worker: host lookups are hash lookups, rules are tried in order (first match wins).
class RouteTable {
 public:
  /// `firstSeen` tells when an endpoint address first appeared (slow start ramps from
  /// there); by default, now.
  using FirstSeen = std::function<SteadyTime(const std::string& address)>;
  /// `health` (optional) supplies shared endpoint health; without it each endpoint gets a
  /// fresh, always-available state (unit tests).
  explicit RouteTable(std::shared_ptr<const config::Config> config, FirstSeen firstSeen = {},
                      proxy::HealthRegistry* health = nullptr);
  RouteTable(const RouteTable&) = delete;
  RouteTable& operator=(const RouteTable&) = delete;

  /// The first rule matching an outbound request, or nullptr (no_route): routes naming its
  /// host first, then (for an intercepted connection) the service `originalDestination`
  /// belongs to, then routes for any host ("*").
  const CompiledRule* matchOutbound(
      const proxy::RequestHead& request,
      const config::EndpointConfig* originalDestination = nullptr) const;
  /// The rule for requests to an unknown original destination: no endpoints of its own
  /// (the router sends them where the connection was going).
  const CompiledRule* passthrough() const { return &passthrough_.compiled; }
  /// The rule for inbound requests: everything goes to the local app.
  const CompiledRule* inbound() const { return &inbound_.compiled; }

  /// Chooses a backend by weight; `random` is any uniformly random number.
  static const CompiledBackend* pickBackend(const CompiledRule& rule, uint64_t random);
  /// Chooses an endpoint with the service's load-balancing policy among the available
  /// ones (health-checked and not ejected); `state` is this worker's for `backend`. When
  /// fewer than half are available it picks among all (panic mode) and sets `*panic`.
  /// Returns the endpoint's index, or -1 when the backend has no endpoint.
  static int pickEndpoint(const CompiledBackend& backend, LbState& state, const PickContext& ctx,
                          bool* panic = nullptr);
  /// The first TrafficLabel rule that stamps `request` with a lane; `random` decides
  /// percentages. nullptr when none does.
  const config::TrafficLabelConfig* matchLabel(const proxy::RequestHead& request,
                                               uint64_t random) const;
  /// The TrafficLabel rule that defines lane `lane` (for its fallback), or nullptr.
  const config::TrafficLabelConfig* labelRule(std::string_view lane) const;
  /// Whether `lane` is named anywhere in the config (a metric label value, then).
  bool knownLane(std::string_view lane) const { return knownLanes_.count(std::string(lane)) > 0; }

  /// The smallest stateKey of this table: per-worker states with smaller keys belong to
  /// older snapshots and can go.
  uint64_t firstStateKey() const { return firstStateKey_; }

 private:
  struct CompiledRoute {
    const config::RouteConfig* route;
    std::vector<CompiledRule> rules;
  };
  /// A route Tether makes itself: one rule, one backend, no match conditions.
  struct ImplicitRoute {
    config::RouteConfig route;
    config::RouteRule rule;
    CompiledRule compiled;
  };
  /// Fills `r` to send everything to `service` under route name `name`.
  void compileImplicit(ImplicitRoute& r, const std::string& name, const std::string& service,
                       const FirstSeen& firstSeen);
  const CompiledRule* matchRoutes(const std::vector<const CompiledRoute*>& routes,
                                  const proxy::RequestHead& request) const;
  /// `lane`: compile only the endpoints on that lane (nullptr: the baseline, with lanes).
  CompiledBackend compileBackend(const config::BackendConfig& b, const FirstSeen& firstSeen,
                                 const std::string* lane);

  std::shared_ptr<const config::Config> config_;
  uint64_t firstStateKey_ = 0;
  std::set<std::string> knownLanes_;
  proxy::HealthRegistry* health_ = nullptr;
  std::vector<CompiledRoute> routes_;
  std::unordered_map<std::string, std::vector<const CompiledRoute*>> byHost_;
  std::vector<const CompiledRoute*> wildcard_;
  ImplicitRoute inbound_;
  ImplicitRoute passthrough_;
  config::ServiceConfig passthroughService_;
  /// Services by endpoint and virtual address ("ip:port"), for intercepted connections.
  std::vector<std::unique_ptr<ImplicitRoute>> byService_;
  std::unordered_map<std::string, const CompiledRule*> byAddress_;
};

/// The value of cookie `name` in a Cookie header.
bool cookieValue(std::string_view header, std::string_view name, std::string& out);

/// Whether `rule`'s match accepts `request` (path, method, headers, query parameters).
bool ruleMatches(const config::RouteMatch& match, const proxy::RequestHead& request);

}  // namespace tether::filters
