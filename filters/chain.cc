#include "filters/chain.h"

#include "filters/metrics/metrics_filter.h"
#include "filters/router/router_filter.h"

namespace tether::filters {

proxy::SnapshotPtr buildSnapshot(std::shared_ptr<const config::Config> config,
                                 uint64_t version) {
  auto snapshot = std::make_shared<proxy::Snapshot>(config, version);
  auto table = std::make_shared<const RouteTable>(config);
  auto metrics = std::make_shared<const MetricsFilterFactory>();
  auto router = std::make_shared<const RouterFilterFactory>(table);
  for (auto d : {config::Direction::kInbound, config::Direction::kOutbound}) {
    snapshot->addFilter(d, metrics);
    snapshot->addFilter(d, router);
  }
  return snapshot;
}

}  // namespace tether::filters
