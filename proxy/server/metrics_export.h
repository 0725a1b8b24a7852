#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "proxy/server/filter_runtime.h"
#include "proxy/worker/stats.h"

namespace tether::proxy {

/// Control-plane numbers owned by the control thread.
struct ControlStats {
  uint64_t configVersion = 0;
  std::map<std::string, uint64_t> reloads;  // result -> count
  bool ready = false;
  bool draining = false;
  uint32_t workers = 0;
  bool controlPlaneConfigured = false;
  bool controlPlaneConnected = false;
  std::map<std::string, uint64_t> controlPlaneUpdates;  // ack | nack -> count
  WorkerStats::PairCounts acceptPauses;                 // the admin listener's back-offs
};

/// Folds the merged worker counters, the control numbers and the filters' own families
/// (`extra`) into prometheus-cpp metric families and returns the text exposition format
/// (the names operations.md lists).
std::string renderPrometheus(const WorkerStats& stats, const ControlStats& control,
                             const std::vector<MetricFamilyData>& extra = {});

}  // namespace tether::proxy
