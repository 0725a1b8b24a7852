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

proxy::SnapshotPtr buildSnapshot(std::shared_ptr<const config::Config> config, uint64_t version,
                                 proxy::SharedState& state) {
  auto snapshot = std::make_shared<proxy::Snapshot>(config, version);
  // When each endpoint address was first seen by this process, for slow start (kept with
  // the health registry, which /clusters reads too; control thread only).
  proxy::HealthRegistry& health = state.health;
  auto table = std::make_shared<const RouteTable>(
      config, [&health](const std::string& address) { return health.firstSeen(address); }, &health);
  snapshot->setStateKeyFloor(table->firstStateKey());
  std::shared_ptr<const proxy::Governance> governance = proxy::Governance::build(*config, state);
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

}  // namespace tether::filters
