#include "proxy/upstream/health_checker.h"

#include "proxy/common/log.h"

namespace tether::proxy {

struct HealthChecker::Target {
  std::string service;
  config::HealthCheckConfig check;
  ProbeSpec spec;
  EndpointHealthPtr health;
  std::unique_ptr<Timer> timer;
  uint32_t successes = 0;
  uint32_t failures = 0;
};

HealthChecker::HealthChecker(uv_loop_t* loop, HealthRegistry& registry, ProbeRunner runner)
    : loop_(loop), registry_(registry), runner_(std::move(runner)) {}

HealthChecker::~HealthChecker() = default;

ProbeSpec probeSpec(const config::ServiceConfig& service, const config::EndpointConfig& endpoint) {
  const config::HealthCheckConfig& check = *service.healthCheck;
  ProbeSpec spec;
  spec.type = check.type;
  spec.address = endpoint.address;
  spec.key = endpoint.addressText;
  spec.protocol = service.protocol;
  spec.tls = service.tls;
  spec.path = check.path;
  // As Envoy's: the service's name unless the check names a host.
  spec.authority = check.host.empty() ? service.name : check.host;
  spec.grpcService = check.grpcService;
  spec.expectedStatuses = check.expectedStatuses;
  spec.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(check.timeout);
  return spec;
}

void HealthChecker::update(const config::Config& config) {
  std::map<std::pair<std::string, std::string>, std::shared_ptr<Target>> next;
  for (const auto& [name, service] : config.services) {
    if (!service.healthCheck) continue;
    for (const auto& e : service.endpoints) {
      auto key = std::make_pair(name, e.addressText);
      auto it = targets_.find(key);
      if (it != targets_.end() && it->second->check == *service.healthCheck) {
        // The same check keeps its streak; what it goes through (protocol, TLS) follows
        // the service.
        it->second->spec = probeSpec(service, e);
        next[key] = it->second;
        continue;
      }
      auto t = std::make_shared<Target>();
      t->service = name;
      t->check = *service.healthCheck;
      t->spec = probeSpec(service, e);
      t->health = registry_.endpoint(name, e.addressText);
      next[key] = t;
      schedule(*t, true);
    }
  }
  // Targets left out stop here: their timers close with them, and a probe still in flight
  // finds its target gone (weak_ptr) when it answers.
  targets_ = std::move(next);
}

void HealthChecker::schedule(Target& t, bool first) {
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  int64_t interval = t.check.interval.count();
  int64_t jitter = interval / 10;
  int64_t wait = first ? static_cast<int64_t>(rng_ % static_cast<uint64_t>(jitter + 1))
                       : interval - jitter +
                             static_cast<int64_t>(rng_ % static_cast<uint64_t>(2 * jitter + 1));
  if (!t.timer) t.timer = std::make_unique<Timer>(loop_, [this, &t] { probe(t); });
  t.timer->start(std::chrono::milliseconds(wait));
}

void HealthChecker::probe(Target& t) {
  auto it = targets_.find({t.service, t.spec.key});
  if (it == targets_.end()) return;
  std::weak_ptr<Target> weak = it->second;
  runner_(t.spec, [this, weak](ProbeResult result) {
    if (auto target = weak.lock()) onResult(*target, result);
  });
}

void HealthChecker::onResult(Target& t, const ProbeResult& result) {
  bool ok = result.ok;
  int state = t.health->active.load(std::memory_order_relaxed);
  if (ok) {
    t.failures = 0;
    ++t.successes;
    if (state != EndpointHealth::kHealthy &&
        (state == EndpointHealth::kUnchecked || t.successes >= t.check.healthyThreshold)) {
      t.health->active.store(EndpointHealth::kHealthy, std::memory_order_relaxed);
      if (state == EndpointHealth::kUnhealthy) {
        TETHER_LOG(kInfo, "health: " + t.service + " " + t.spec.key + " healthy");
      }
    }
  } else {
    t.successes = 0;
    ++t.failures;
    if (state != EndpointHealth::kUnhealthy && t.failures >= t.check.unhealthyThreshold) {
      t.health->active.store(EndpointHealth::kUnhealthy, std::memory_order_relaxed);
      TETHER_LOG(kWarn, "health: " + t.service + " " + t.spec.key + " unhealthy (" +
                            std::to_string(t.failures) +
                            " failed checks, the last: " + result.detail + ")");
    }
  }
  schedule(t, false);
}

}  // namespace tether::proxy
