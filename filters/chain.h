#pragma once

#include <memory>

#include "proxy/stream/snapshot.h"
#include "proxy/upstream/endpoint_health.h"

namespace tether::filters {

/// Builds a snapshot from a validated config: compiles the route table once and assembles
/// the filter chain of each direction (metrics first, so it sees every reply; router last).
proxy::SnapshotPtr buildSnapshot(std::shared_ptr<const config::Config> config, uint64_t version,
                                 proxy::HealthRegistry& health);

}  // namespace tether::filters
