#include "filters/chain.h"

#include "filters/access_log/access_log_filter.h"
#include "filters/auth/hmac_filter.h"
#include "filters/auth/sign_filter.h"
#include "filters/circuit_breaker/circuit_breaker_filter.h"
#include "filters/concurrency/concurrency_filter.h"
#include "filters/fault/fault_filter.h"
#include "filters/lane/lane_filter.h"
#include "filters/metrics/metrics_filter.h"
#include "filters/rate_limit/rate_limit_filter.h"
#include "filters/router/route_filter.h"
#include "filters/router/router_filter.h"

namespace tether::filters {

namespace {

bool anyFault(const config::Config& config) {
  for (const auto& route : config.routes) {
    for (const auto& rule : route.rules) {
      if (rule.fault) return true;
    }
  }
  return false;
}

bool anyBreaker(const config::Config& config) {
  for (const auto& b : config.circuitBreakers) {
    if (!b.perEndpoint) return true;  // perEndpoint rules are the router's
  }
  return false;
}

}  // namespace

proxy::SnapshotPtr FilterChains::build(std::shared_ptr<const config::Config> config,
                                       uint64_t version, proxy::HealthRegistry& health) {
  SharedState& state = state_;
  auto snapshot = std::make_shared<proxy::Snapshot>(config, version);
  // When each endpoint address was first seen by this process, for slow start (kept with
  // the health registry, which /clusters reads too; control thread only).
  auto table = std::make_shared<const RouteTable>(
      config, [&health](const std::string& address) { return health.firstSeen(address); }, &health);
  snapshot->setStateKeyFloor(table->firstStateKey());
  std::shared_ptr<const Governance> governance = filters::Governance::build(*config, state);
  std::shared_ptr<const AuthRules> auth = AuthRules::build(*config, state);

  // Each filter is in the chain only when some rule needs it: an idle step costs every
  // request a few calls. The order is the request path (docs/architecture.md).
  auto log = config->bootstrap.accessLog.path.empty()
                 ? nullptr
                 : std::make_shared<const AccessLogFilterFactory>();
  auto metrics = std::make_shared<const MetricsFilterFactory>();
  auto route = std::make_shared<const RouteFilterFactory>(table, governance);
  auto verify =
      auth->inbound.empty() ? nullptr : std::make_shared<const HmacVerifyFilterFactory>(auth);
  auto lane = std::make_shared<const LaneFilterFactory>(table);
  auto concurrency = std::make_shared<const ConcurrencyFilterFactory>(governance);
  auto rateLimit = config->rateLimits.empty()
                       ? nullptr
                       : std::make_shared<const RateLimitFilterFactory>(governance);
  auto breaker = anyBreaker(*config)
                     ? std::make_shared<const CircuitBreakerFilterFactory>(governance)
                     : nullptr;
  auto fault = anyFault(*config) ? std::make_shared<const FaultFilterFactory>() : nullptr;
  auto sign = auth->outbound.empty() ? nullptr : std::make_shared<const SignFilterFactory>(auth);
  auto router = std::make_shared<const RouterFilterFactory>(table, governance);

  for (auto d : {config::Direction::kInbound, config::Direction::kOutbound}) {
    bool inbound = d == config::Direction::kInbound;
    const std::shared_ptr<const proxy::FilterFactory> chain[] = {
        log,       metrics, route, inbound ? verify : nullptr, lane,  concurrency,
        rateLimit, breaker, fault, inbound ? nullptr : sign,   router};
    for (const auto& f : chain) {
      if (f) snapshot->addFilter(d, f);
    }
  }
  return snapshot;
}

config::ConfigErrors FilterChains::prepareFiles(const config::Config& config) {
  config::ConfigErrors errors;
  std::string error;
  for (const auto& h : config.hmacAuths) {
    for (const auto& k : h.keys) {
      if (state_.secrets.load(k.secretFile, error)) continue;
      const config::FieldPosition& at = k.secretAt;
      errors.push_back({at.line ? at.file : h.origin.file, at.line ? at.line : h.origin.line,
                        at.line ? at.column : h.origin.column,
                        at.line ? at.path : std::string("spec.keys"),
                        "HmacAuth " + h.name + ": key " + k.id + ": " + error});
    }
  }
  return errors;
}

std::vector<proxy::MetricFamilyData> FilterChains::metrics() {
  using Labels = std::vector<std::pair<std::string, std::string>>;
  proxy::MetricFamilyData state{
      "tether_circuit_state",
      "Circuit breaker state: 0 closed, 1 open, 2 half_open, 3 recovering (ramping back).",
      false,
      {}};
  proxy::MetricFamilyData transitions{
      "tether_circuit_transitions_total", "Circuit breaker state changes.", true, {}};
  // A perEndpoint rule shows one series per endpoint (label `endpoint`), not its own.
  auto exportBreaker = [&](const CircuitBreaker& b) {
    Labels labels = {{"rule", b.config().name}};
    if (!b.endpoint().empty()) labels.insert(labels.begin(), {"endpoint", b.endpoint()});
    state.samples.push_back({labels, static_cast<double>(static_cast<int>(b.state()))});
    for (int from = 0; from < kBreakerStates; ++from) {
      for (int to = 0; to < kBreakerStates; ++to) {
        uint64_t n = b.transitions(static_cast<BreakerState>(from), static_cast<BreakerState>(to));
        if (n == 0) continue;
        Labels l = labels;
        l.insert(l.end() - 1, {"from", breakerStateName(static_cast<BreakerState>(from))});
        l.push_back({"to", breakerStateName(static_cast<BreakerState>(to))});
        transitions.samples.push_back({l, static_cast<double>(n)});
      }
    }
  };
  for (const auto& b : state_.breakers.live()) {
    if (b->config().perEndpoint) {
      b->forEachEndpoint(
          [&](const std::string&, const CircuitBreaker& one) { exportBreaker(one); });
    } else {
      exportBreaker(*b);
    }
  }
  proxy::MetricFamilyData keys{
      "tether_rate_limit_keys", "Keys with their own bucket, per rule.", false, {}};
  proxy::MetricFamilyData overflow{
      "tether_rate_limit_key_overflow_total",
      "Requests whose key found the key table full and shared the overflow bucket.",
      true,
      {}};
  proxy::MetricFamilyData fallback{
      "tether_rate_limit_fallback_total",
      "Global rate-limit decisions made by the local fallback because Redis was unreachable or "
      "slower than redis.timeout.",
      true,
      {}};
  for (const auto& l : state_.rateLimits.live()) {
    Labels rule = {{"rule", l->config().name}};
    if (l->config().global) fallback.samples.push_back({rule, static_cast<double>(l->fallbacks())});
    keys.samples.push_back({rule, static_cast<double>(l->keys())});
    overflow.samples.push_back({rule, static_cast<double>(l->overflowed())});
  }
  std::vector<proxy::MetricFamilyData> out;
  for (auto* f : {&state, &transitions, &keys, &overflow, &fallback}) out.push_back(std::move(*f));
  return out;
}

}  // namespace tether::filters
