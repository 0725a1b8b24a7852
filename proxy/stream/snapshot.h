#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "proxy/stream/filter.h"

namespace tether::proxy {

/// Everything a worker needs to handle requests: the validated config plus the filter
/// chains built from it. Immutable; published by the control loop as shared_ptr<const>,
/// and each stream pins the one it started with.
class Snapshot {
 public:
  Snapshot(std::shared_ptr<const config::Config> config, uint64_t version)
      : config_(std::move(config)), version_(version) {}

  const config::Config& config() const { return *config_; }
  std::shared_ptr<const config::Config> configPtr() const { return config_; }
  uint64_t version() const { return version_; }

  /// The filter chain for a direction, in request order; the router is last.
  const std::vector<std::shared_ptr<const FilterFactory>>& chain(config::Direction d) const {
    return d == config::Direction::kInbound ? inbound_ : outbound_;
  }
  /// Per-worker filter states keyed below this belong to older snapshots (Worker).
  uint64_t stateKeyFloor() const { return stateKeyFloor_; }
  void setStateKeyFloor(uint64_t floor) { stateKeyFloor_ = floor; }

  void addFilter(config::Direction d, std::shared_ptr<const FilterFactory> f) {
    (d == config::Direction::kInbound ? inbound_ : outbound_).push_back(std::move(f));
  }

 private:
  std::shared_ptr<const config::Config> config_;
  uint64_t version_;
  uint64_t stateKeyFloor_ = 0;
  std::vector<std::shared_ptr<const FilterFactory>> inbound_;
  std::vector<std::shared_ptr<const FilterFactory>> outbound_;
};

using SnapshotPtr = std::shared_ptr<const Snapshot>;

}  // namespace tether::proxy
