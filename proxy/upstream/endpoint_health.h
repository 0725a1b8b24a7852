#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"

namespace tether::proxy {

/// Milliseconds on the steady clock: the time base of every health field.
int64_t steadyNowMs();

/// One endpoint's health, shared by every worker and the control thread. Each field is a
/// relaxed atomic: a worker may act on a value a few microseconds stale (send one more
/// request to an endpoint just ejected, or count one error after a reset). That is
/// accepted; nothing here needs to be exact across threads.
struct EndpointHealth {
  enum Active : int { kUnchecked = 0, kHealthy = 1, kUnhealthy = 2 };
  std::atomic<int> active{kUnchecked};         // written by the active health checker
  std::atomic<uint32_t> consecutiveErrors{0};  // passive outlier detection
  std::atomic<int64_t> ejectedUntilMs{0};      // steadyNowMs() before which it is ejected
  std::atomic<uint32_t> timesEjected{0};

  /// Whether requests may go here at `nowMs`: not failing its health check, not ejected.
  bool available(int64_t nowMs) const {
    return active.load(std::memory_order_relaxed) != kUnhealthy &&
           ejectedUntilMs.load(std::memory_order_relaxed) <= nowMs;
  }
  bool ejected(int64_t nowMs) const {
    return ejectedUntilMs.load(std::memory_order_relaxed) > nowMs;
  }
};

using EndpointHealthPtr = std::shared_ptr<EndpointHealth>;

/// Records one request's outcome for passive outlier detection. After
/// `consecutiveErrors` failures in a row the endpoint is ejected for baseEjectionTime x
/// (times ejected so far + 1), capped at 300 s, unless that would eject more than
/// `maxEjectionPercent` of `peers` (the service's endpoints). Returns true when this call
/// ejected it.
bool recordOutcome(EndpointHealth& endpoint, const std::vector<EndpointHealthPtr>& peers,
                   const config::OutlierDetectionConfig& config, bool failure, int64_t nowMs);

/// Every service endpoint's health, by (service, address). Kept across reloads so an
/// endpoint that stays keeps its state. Only the control thread uses the map itself.
/// Slow start (the seed's graceful start): an endpoint `age` old ramps its weight linearly
/// from 10% to 100% over `window`. Returns the effective weight in hundredths (weight 3
/// at full strength is 300), at least 1.
uint64_t slowStartWeight(uint32_t weight, std::chrono::milliseconds age,
                         std::chrono::milliseconds window);

class HealthRegistry {
 public:
  EndpointHealthPtr endpoint(const std::string& service, const std::string& address);
  /// When this process first saw an endpoint address (slow start). Control thread only.
  std::chrono::steady_clock::time_point firstSeen(const std::string& address);
  /// Forgets endpoints no longer in `config`.
  void retain(const config::Config& config);

 private:
  std::map<std::pair<std::string, std::string>, EndpointHealthPtr> entries_;
  std::map<std::string, std::chrono::steady_clock::time_point, std::less<>> firstSeen_;
};

}  // namespace tether::proxy
