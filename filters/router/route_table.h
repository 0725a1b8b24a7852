#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "proxy/headers.h"

namespace tether::filters {

/// A backend with its service's endpoints already narrowed to the backend's subset.
struct CompiledBackend {
  const config::BackendConfig* backend = nullptr;
  const config::ServiceConfig* service = nullptr;
  std::vector<const config::EndpointConfig*> endpoints;
  uint64_t totalEndpointWeight = 0;
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
  explicit RouteTable(std::shared_ptr<const config::Config> config);
  RouteTable(const RouteTable&) = delete;
  RouteTable& operator=(const RouteTable&) = delete;

  /// The first rule matching an outbound request, or nullptr (no_route).
  const CompiledRule* matchOutbound(const proxy::RequestHead& request) const;
  /// The rule for inbound requests: everything goes to the local app.
  const CompiledRule* inbound() const { return &inbound_; }

  /// Chooses a backend by weight; `random` is any uniformly random number.
  static const CompiledBackend* pickBackend(const CompiledRule& rule, uint64_t random);
  /// Chooses an endpoint by weight; nullptr when the backend has none.
  static const config::EndpointConfig* pickEndpoint(const CompiledBackend& backend,
                                                    uint64_t random);

 private:
  struct CompiledRoute {
    const config::RouteConfig* route;
    std::vector<CompiledRule> rules;
  };
  const CompiledRule* matchRoutes(const std::vector<const CompiledRoute*>& routes,
                                  const proxy::RequestHead& request) const;
  CompiledBackend compileBackend(const config::BackendConfig& b) const;

  std::shared_ptr<const config::Config> config_;
  std::vector<CompiledRoute> routes_;
  std::unordered_map<std::string, std::vector<const CompiledRoute*>> byHost_;
  std::vector<const CompiledRoute*> wildcard_;
  config::BackendConfig localBackend_;
  config::RouteRule localRule_;
  config::RouteConfig localRoute_;
  CompiledRule inbound_;
};

/// Whether `rule`'s match accepts `request` (path, method, headers, query parameters).
bool ruleMatches(const config::RouteMatch& match, const proxy::RequestHead& request);

}  // namespace tether::filters
