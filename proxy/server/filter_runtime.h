#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "config/error.h"
#include "proxy/stream/snapshot.h"
#include "proxy/upstream/endpoint_health.h"

namespace tether::proxy {

/// A metric family the filters report about their own state (breakers, rate-limit keys),
/// in plain values: the control loop serializes it with the rest.
struct MetricFamilyData {
  std::string name;
  std::string help;
  bool counter = false;  // else a gauge
  struct Sample {
    std::vector<std::pair<std::string, std::string>> labels;
    double value = 0;
  };
  std::vector<Sample> samples;
};

/// What the executable's filters give the control loop. The proxy library knows no
/// concrete filter: the server owns one of these (filters/chain.h), which holds the
/// filters' shared state, builds every snapshot's filter chains, and answers for the files
/// and numbers that state has.
class FilterRuntime {
 public:
  virtual ~FilterRuntime() = default;
  /// A snapshot of `config` with its filter chains; endpoint health comes from `health`,
  /// which survives reloads.
  virtual SnapshotPtr build(std::shared_ptr<const config::Config> config, uint64_t version,
                            HealthRegistry& health) = 0;
  /// Reads the files the rules name (HMAC secrets); errors carry file:line:col.
  virtual config::ConfigErrors prepareFiles(const config::Config& config) = 0;
  /// Re-reads those files whose modification time moved; returns how many changed.
  virtual int reloadChangedFiles() = 0;
  /// The filters' own metric families, as of now.
  virtual std::vector<MetricFamilyData> metrics() = 0;
};

}  // namespace tether::proxy
