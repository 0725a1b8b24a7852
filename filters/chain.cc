#include "filters/chain.h"

#include <unordered_map>

#include "filters/access_log/access_log_filter.h"
#include "filters/auth/hmac_filter.h"
#include "filters/lane/lane_filter.h"
#include "filters/metrics/metrics_filter.h"
#include "filters/router/router_filter.h"

namespace tether::filters {

proxy::SnapshotPtr buildSnapshot(std::shared_ptr<const config::Config> config, uint64_t version,
                                 proxy::HealthRegistry& health) {
  auto snapshot = std::make_shared<proxy::Snapshot>(config, version);
  // When each endpoint address was first seen by this process, for slow start (kept with
  // the health registry, which /clusters reads too; control thread only).
  auto table = std::make_shared<const RouteTable>(
      config, [&health](const std::string& address) { return health.firstSeen(address); }, &health);
  snapshot->setStateKeyFloor(table->firstStateKey());
  auto metrics = std::make_shared<const MetricsFilterFactory>();
  std::shared_ptr<const AuthRules> auth = AuthRules::build(*config);
  auto router = std::make_shared<const RouterFilterFactory>(
      table, proxy::Governance::build(*config), auth->outbound.empty() ? nullptr : auth);
  auto lane = std::make_shared<const LaneFilterFactory>(table);
  auto verify = std::make_shared<const HmacVerifyFilterFactory>(auth);
  bool accessLog = !config->bootstrap.accessLog.path.empty();
  auto log = std::make_shared<const AccessLogFilterFactory>();
  for (auto d : {config::Direction::kInbound, config::Direction::kOutbound}) {
    if (accessLog) snapshot->addFilter(d, log);
    snapshot->addFilter(d, metrics);
    // Inbound, nothing of an unauthenticated request gets further than this.
    if (d == config::Direction::kInbound && !auth->inbound.empty()) {
      snapshot->addFilter(d, verify);
    }
    snapshot->addFilter(d, lane);
    snapshot->addFilter(d, router);
  }
  return snapshot;
}

}  // namespace tether::filters
