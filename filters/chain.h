#pragma once

#include <memory>
#include <vector>

#include "filters/common/shared_state.h"
#include "proxy/server/filter_runtime.h"
#include "proxy/stream/snapshot.h"

namespace tether::filters {

/// The filters as the control loop sees them: the owner of their shared state, which
/// builds every snapshot's filter chains (chain.cc: the order of the request path) and
/// answers for the files and numbers that state has.
class FilterChains : public proxy::FilterRuntime {
 public:
  /// Compiles the route table once and assembles the chain of each direction (metrics
  /// first, so it sees every reply; router last), each filter only when a rule needs it.
  proxy::SnapshotPtr build(std::shared_ptr<const config::Config> config, uint64_t version,
                           proxy::HealthRegistry& health) override;
  /// Loads every HmacAuth key's secret (errors at the key's secretFile).
  config::ConfigErrors prepareFiles(const config::Config& config) override;
  int reloadChangedFiles() override { return state_.secrets.reloadChanged(); }
  /// Circuit breaker states and transitions, rate-limit keys, overflows and fallbacks.
  std::vector<proxy::MetricFamilyData> metrics() override;

  SharedState& state() { return state_; }

 private:
  SharedState state_;
};

}  // namespace tether::filters
