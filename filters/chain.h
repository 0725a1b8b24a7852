#pragma once

#include <memory>

#include "proxy/policy/shared_state.h"
#include "proxy/stream/snapshot.h"

namespace tether::filters {

/// Builds a snapshot from a validated config: compiles the route table once and assembles
/// the filter chain of each direction (metrics first, so it sees every reply; router last).
proxy::SnapshotPtr buildSnapshot(std::shared_ptr<const config::Config> config, uint64_t version,
                                 proxy::SharedState& state);

}  // namespace tether::filters
