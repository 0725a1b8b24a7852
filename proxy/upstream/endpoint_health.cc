#include "proxy/upstream/endpoint_health.h"

#include <algorithm>
#include <set>

#include "config/config.h"

namespace tether::proxy {

namespace {
constexpr int64_t kMaxEjectionMs = 300'000;
}

int64_t steadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool recordOutcome(EndpointHealth& endpoint, const std::vector<EndpointHealthPtr>& peers,
                   const config::OutlierDetectionConfig& config, bool failure, int64_t nowMs) {
  if (!failure) {
    endpoint.consecutiveErrors.store(0, std::memory_order_relaxed);
    return false;
  }
  uint32_t errors = endpoint.consecutiveErrors.fetch_add(1, std::memory_order_relaxed) + 1;
  if (errors < config.consecutiveErrors || endpoint.ejected(nowMs)) return false;
  size_t ejected = 0;
  for (const auto& p : peers) ejected += p->ejected(nowMs);
  // Never eject past the cap (with 2 endpoints and 50%, one may go, never both), but, as
  // Envoy does, one endpoint may always go, whatever the percentage (10% of 4 endpoints
  // would otherwise never eject any); 0% turns ejection off.
  if (config.maxEjectionPercent == 0) return false;
  size_t cap = std::max<size_t>(1, peers.size() * config.maxEjectionPercent / 100);
  if (ejected + 1 > cap) return false;
  uint32_t times = endpoint.timesEjected.load(std::memory_order_relaxed) + 1;
  int64_t duration = std::min<int64_t>(kMaxEjectionMs, config.baseEjectionTime.count() * times);
  int64_t expected = endpoint.ejectedUntilMs.load(std::memory_order_relaxed);
  // Two workers may cross the threshold together; the compare-exchange lets one eject.
  if (expected > nowMs ||
      !endpoint.ejectedUntilMs.compare_exchange_strong(expected, nowMs + duration)) {
    return false;
  }
  endpoint.timesEjected.store(times, std::memory_order_relaxed);
  endpoint.consecutiveErrors.store(0, std::memory_order_relaxed);
  return true;
}

uint64_t slowStartWeight(uint32_t weight, std::chrono::milliseconds age,
                         std::chrono::milliseconds window) {
  // In hundredths, so the ramp has steps finer than the configured integer weights.
  if (window.count() <= 0 || age >= window) return static_cast<uint64_t>(weight) * 100;
  double factor = 0.1 + 0.9 * static_cast<double>(std::max<int64_t>(0, age.count())) /
                            static_cast<double>(window.count());
  return std::max<uint64_t>(1, static_cast<uint64_t>(weight * 100 * factor));
}

std::chrono::steady_clock::time_point HealthRegistry::firstSeen(const std::string& address) {
  return firstSeen_.emplace(address, std::chrono::steady_clock::now()).first->second;
}

EndpointHealthPtr HealthRegistry::endpoint(const std::string& service, const std::string& address) {
  auto& slot = entries_[{service, address}];
  if (!slot) slot = std::make_shared<EndpointHealth>();
  return slot;
}

void HealthRegistry::retain(const config::Config& config) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    const config::ServiceConfig* s = config.findService(it->first.first);
    bool keep = s && std::any_of(s->endpoints.begin(), s->endpoints.end(),
                                 [&](const auto& e) { return e.addressText == it->first.second; });
    it = keep ? std::next(it) : entries_.erase(it);
  }
  // An address gone from every service starts slow again if it comes back (a new host).
  std::set<std::string, std::less<>> present;
  for (const auto& [name, service] : config.services) {
    for (const auto& e : service.endpoints) present.insert(e.addressText);
  }
  for (auto it = firstSeen_.begin(); it != firstSeen_.end();) {
    it = present.count(it->first) ? std::next(it) : firstSeen_.erase(it);
  }
}

}  // namespace tether::proxy
