#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "config/config.h"
#include "proxy/common/timer.h"
#include "proxy/upstream/endpoint_health.h"
#include "proxy/upstream/health_probe.h"

namespace tether::proxy {

/// Runs one probe somewhere with connection pools (a worker) and calls back on the
/// control loop; the callback may never come when the process is stopping.
using ProbeRunner = std::function<void(ProbeSpec, std::function<void(ProbeResult)>)>;

/// Active health checks, scheduled on the control loop: every endpoint of a service with a
/// `healthCheck` is probed each interval (±10% jitter, so checks do not march in step);
/// `unhealthyThreshold` failures in a row mark it unhealthy, `healthyThreshold` successes
/// healthy again. The probes themselves run through `runner` with the codecs traffic uses.
/// Results land in the shared EndpointHealth that every worker reads.
class HealthChecker {
 public:
  HealthChecker(uv_loop_t* loop, HealthRegistry& registry, ProbeRunner runner);
  ~HealthChecker();

  /// Starts, keeps or stops checks to match `config` (at start and after each reload).
  /// Checks of endpoints whose settings did not change keep running undisturbed.
  void update(const config::Config& config);

 private:
  struct Target;
  void schedule(Target& t, bool first);
  void probe(Target& t);
  void onResult(Target& t, const ProbeResult& result);

  uv_loop_t* loop_;
  HealthRegistry& registry_;
  ProbeRunner runner_;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<Target>> targets_;
  uint64_t rng_ = 0x2545F4914F6CDD1DULL;
};

/// The probe a service's health check sends to one of its endpoints.
ProbeSpec probeSpec(const config::ServiceConfig& service, const config::EndpointConfig& endpoint);

}  // namespace tether::proxy
