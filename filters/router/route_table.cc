#include "filters/router/route_table.h"

#include <algorithm>
#include <atomic>

namespace tether::filters {

namespace {

bool subsetMatches(const config::Labels& subset, const config::Labels& labels) {
  for (const auto& [k, v] : subset) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

// Finds `name`'s value in a query string "a=1&b=2" (no percent-decoding: values are
// compared as sent, which is what the rule author sees in access logs).
bool queryValue(std::string_view query, std::string_view name, std::string& out) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    if (key == name) {
      out = eq == std::string_view::npos ? std::string() : std::string(pair.substr(eq + 1));
      return true;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return false;
}

}  // namespace

bool cookieValue(std::string_view header, std::string_view name, std::string& out) {
  while (!header.empty()) {
    size_t semi = header.find(';');
    std::string_view pair = header.substr(0, semi);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
      out = std::string(pair.substr(eq + 1));
      return true;
    }
    if (semi == std::string_view::npos) break;
    header.remove_prefix(semi + 1);
  }
  return false;
}

bool ruleMatches(const config::RouteMatch& m, const proxy::RequestHead& request) {
  // CONNECT has an authority, not a path: path conditions do not apply to it.
  std::string_view path = request.isConnect() ? std::string_view("/") : request.pathOnly();
  if (m.path && path != *m.path) return false;
  if (m.pathPrefix && path.substr(0, m.pathPrefix->size()) != *m.pathPrefix) return false;
  if (m.pathRegex && !m.pathRegex->fullMatch(path)) return false;
  if (!m.methods.empty() &&
      std::find(m.methods.begin(), m.methods.end(), request.method) == m.methods.end()) {
    return false;
  }
  for (const auto& [name, sm] : m.headers) {
    if (!sm.matches(name == "host" || name == ":authority"
                        ? std::optional<std::string_view>(request.authority)
                        : proxy::view(request.headers.get(name)))) {
      return false;
    }
  }
  if (!m.cookies.empty()) {
    const proxy::HeaderString* header = request.headers.get("cookie");
    std::string value;
    for (const auto& [name, sm] : m.cookies) {
      bool present = header && cookieValue(*header, name, value);
      if (!sm.matches(present ? std::optional<std::string_view>(value) : std::nullopt)) {
        return false;
      }
    }
  }
  if (!m.queryParams.empty()) {
    size_t q = request.path.find('?');
    std::string_view query =
        q == std::string::npos ? std::string_view() : std::string_view(request.path).substr(q + 1);
    std::string value;
    for (const auto& [name, sm] : m.queryParams) {
      bool present = queryValue(query, name, value);
      if (!sm.matches(present ? std::optional<std::string_view>(value) : std::nullopt)) {
        return false;
      }
    }
  }
  return true;
}

namespace {
std::atomic<uint64_t> gNextStateKey{1};
}

const CompiledBackend* CompiledBackend::lane(std::string_view name) const {
  for (const auto& [laneName, backend] : lanes) {
    if (laneName == name) return backend.get();
  }
  return nullptr;
}

CompiledBackend RouteTable::compileBackend(const config::BackendConfig& b,
                                           const FirstSeen& firstSeen, const std::string* lane) {
  CompiledBackend cb;
  cb.backend = &b;
  cb.service = config_->findService(b.service);
  cb.stateKey = gNextStateKey.fetch_add(1);
  if (firstStateKey_ == 0) firstStateKey_ = cb.stateKey;
  auto now = std::chrono::steady_clock::now();
  config::LbPolicy policy = config::LbPolicy::kRoundRobin;
  if (cb.service) {
    policy = cb.service->loadBalancer.policy;
    std::vector<const config::EndpointConfig*> candidates;
    bool anyUnlabelled = false;
    for (const auto& e : cb.service->endpoints) {
      if (!subsetMatches(b.subset, e.labels)) continue;
      candidates.push_back(&e);
      anyUnlabelled |= e.labels.count(config::kLaneLabel) == 0;
    }
    for (const auto* e : candidates) {
      auto laneIt = e->labels.find(config::kLaneLabel);
      bool onLane = laneIt != e->labels.end();
      if (lane) {
        if (!onLane || laneIt->second != *lane) continue;
      } else if (onLane && anyUnlabelled) {
        // Lane endpoints serve their lane only; unlabelled requests stay on the baseline.
        if (!cb.lane(laneIt->second)) {
          cb.lanes.emplace_back(laneIt->second, std::make_unique<CompiledBackend>(
                                                    compileBackend(b, firstSeen, &laneIt->second)));
          knownLanes_.insert(laneIt->second);
        }
        continue;
      }
      cb.endpoints.push_back(e);
      cb.health.push_back(health_ ? health_->endpoint(cb.service->name, e->addressText)
                                  : std::make_shared<proxy::EndpointHealth>());
      cb.weights.push_back(static_cast<uint64_t>(e->weight) * 100);
      cb.since.push_back(firstSeen ? firstSeen(e->addressText) : now);
    }
    if (!lane && !anyUnlabelled) {
      // Every endpoint is on a lane (a subset picked one): the lanes are the endpoints.
      for (const auto* e : candidates) {
        const std::string& l = e->labels.at(config::kLaneLabel);
        if (!cb.lane(l)) {
          cb.lanes.emplace_back(
              l, std::make_unique<CompiledBackend>(compileBackend(b, firstSeen, &l)));
          knownLanes_.insert(l);
        }
      }
    }
  }
  if (cb.service && health_) {
    for (const auto& e : cb.service->endpoints) {
      cb.peers.push_back(health_->endpoint(cb.service->name, e.addressText));
    }
  } else {
    cb.peers = cb.health;  // no registry (unit tests): the backend's own states
  }
  cb.tables = std::make_shared<const LbTables>(policy, cb.endpoints);
  return cb;
}

const config::TrafficLabelConfig* RouteTable::matchLabel(const proxy::RequestHead& request,
                                                         uint64_t random) const {
  for (const auto& l : config_->trafficLabels) {
    if (l.hasMatch && !ruleMatches(l.match, request)) continue;
    // Percentages in hundredths of a percent: 5 -> 500 of 10,000.
    if (l.percentage && static_cast<double>(random % 10000) >= *l.percentage * 100) continue;
    return &l;
  }
  return nullptr;
}

const config::TrafficLabelConfig* RouteTable::labelRule(std::string_view lane) const {
  for (const auto& l : config_->trafficLabels) {
    if (l.label == lane) return &l;
  }
  return nullptr;
}

RouteTable::RouteTable(std::shared_ptr<const config::Config> config, FirstSeen firstSeen,
                       proxy::HealthRegistry* health)
    : config_(std::move(config)), health_(health) {
  routes_.reserve(config_->routes.size());
  for (const auto& route : config_->routes) {
    CompiledRoute cr{&route, {}};
    for (const auto& rule : route.rules) {
      CompiledRule r{&route, &rule, {}, rule.totalWeight};
      for (const auto& b : rule.backends) {
        r.backends.push_back(compileBackend(b, firstSeen, nullptr));
      }
      cr.rules.push_back(std::move(r));
    }
    routes_.push_back(std::move(cr));
  }
  for (const auto& cr : routes_) {
    for (const auto& host : cr.route->hosts) {
      if (host == "*") {
        wildcard_.push_back(&cr);
      } else {
        byHost_[host].push_back(&cr);
      }
    }
  }
  compileImplicit(inbound_, "inbound", config::kLocalAppService, firstSeen);
  passthroughService_.name = "passthrough";
  compileImplicit(passthrough_, "passthrough", passthroughService_.name, firstSeen);
  passthrough_.compiled.backends[0].service = &passthroughService_;
  bool intercepting = false;
  for (const auto& l : config_->bootstrap.listeners) intercepting |= l.originalDestination;
  if (intercepting) {
    for (const auto& [name, service] : config_->services) {
      if (name == config::kLocalAppService) continue;
      auto r = std::make_unique<ImplicitRoute>();
      compileImplicit(*r, "original_destination", name, firstSeen);
      for (const auto& e : service.endpoints) byAddress_.emplace(e.addressText, &r->compiled);
      for (const auto& a : service.addresses) byAddress_.emplace(a.toString(), &r->compiled);
      byService_.push_back(std::move(r));
    }
  }
  for (const auto& l : config_->trafficLabels) knownLanes_.insert(l.label);
}

void RouteTable::compileImplicit(ImplicitRoute& r, const std::string& name,
                                 const std::string& service, const FirstSeen& firstSeen) {
  r.route.name = name;
  r.rule.backends.push_back(config::BackendConfig{service, {}, 1});
  r.rule.totalWeight = 1;
  r.compiled.route = &r.route;
  r.compiled.rule = &r.rule;
  r.compiled.totalWeight = 1;
  r.compiled.backends.push_back(compileBackend(r.rule.backends[0], firstSeen, nullptr));
}

const CompiledRule* RouteTable::matchRoutes(const std::vector<const CompiledRoute*>& routes,
                                            const proxy::RequestHead& request) const {
  for (const auto* cr : routes) {
    for (const auto& r : cr->rules) {
      if (ruleMatches(r.rule->match, request)) return &r;
    }
  }
  return nullptr;
}

const CompiledRule* RouteTable::matchOutbound(
    const proxy::RequestHead& request, const config::EndpointConfig* originalDestination) const {
  const std::string& authority = request.authority;
  auto it = byHost_.find(authority);
  if (it == byHost_.end()) {
    // "ratings" also serves "ratings:9080" when no route names the port.
    size_t colon = authority.rfind(':');
    if (colon != std::string::npos && authority.find(']', colon) == std::string::npos) {
      it = byHost_.find(authority.substr(0, colon));
    }
  }
  if (it != byHost_.end()) {
    if (const CompiledRule* r = matchRoutes(it->second, request)) return r;
  }
  if (originalDestination && !byAddress_.empty()) {
    auto s = byAddress_.find(originalDestination->addressText);
    if (s != byAddress_.end()) return s->second;
  }
  return matchRoutes(wildcard_, request);
}

const CompiledBackend* RouteTable::pickBackend(const CompiledRule& rule, uint64_t random) {
  if (rule.backends.size() == 1) return &rule.backends[0];
  if (rule.totalWeight == 0) return nullptr;
  uint64_t point = random % rule.totalWeight;
  for (const auto& b : rule.backends) {
    if (point < b.backend->weight) return &b;
    point -= b.backend->weight;
  }
  return &rule.backends.back();
}

int RouteTable::pickEndpoint(const CompiledBackend& backend, LbState& state, const PickContext& ctx,
                             bool* panic) {
  size_t n = backend.endpoints.size();
  if (n == 0) return -1;
  if (n == 1) return 0;
  const config::ServiceConfig& svc = *backend.service;
  auto window = svc.loadBalancer.slowStart;
  size_t available = 0;
  for (size_t i = 0; i < n; ++i) available += backend.health[i]->available(ctx.nowMs);
  if (available == n && window.count() == 0) {
    // The common case: everyone healthy, static weights, no allocation.
    return static_cast<int>(filters::pickEndpoint(svc.loadBalancer.policy, backend.weights,
                                                  *backend.tables, state, ctx));
  }
  // Panic mode (Envoy's default threshold, 50%): with too few endpoints left, spreading
  // over all of them beats overloading the survivors.
  bool panicking = available * 2 < n || available == 0;
  if (panicking && panic) *panic = true;
  std::vector<uint64_t> weights(n);
  for (size_t i = 0; i < n; ++i) {
    if (!panicking && !backend.health[i]->available(ctx.nowMs)) continue;
    if (window.count() > 0) {
      auto age = std::chrono::duration_cast<std::chrono::milliseconds>(ctx.now - backend.since[i]);
      weights[i] = slowStartWeight(backend.endpoints[i]->weight, age, window);
    } else {
      weights[i] = backend.weights[i];
    }
  }
  size_t pick =
      filters::pickEndpoint(svc.loadBalancer.policy, weights, *backend.tables, state, ctx);
  if (weights[pick] == 0) {
    // A consistent-hash slot owned by an unavailable endpoint: spill to a weighted choice.
    pick = filters::pickEndpoint(config::LbPolicy::kRandom, weights, *backend.tables, state, ctx);
  }
  return static_cast<int>(pick);
}

}  // namespace tether::filters
