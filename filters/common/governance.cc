#include "filters/common/governance.h"

#include "filters/common/shared_state.h"

namespace tether::filters {

ConcurrencyLimiter::ConcurrencyLimiter(config::ConcurrencyLimitConfig config)
    : config_(std::move(config)),
      single_(std::make_shared<Counter>(0)),
      overflow_(std::make_shared<Counter>(0)),
      table_(
          config_.maxKeys, [](std::string_view) { return std::make_shared<Counter>(0); },
          [](const Counter& c, int64_t) { return c.load(std::memory_order_relaxed) == 0; }) {}

std::shared_ptr<ConcurrencyLimiter::Counter> ConcurrencyLimiter::acquire(std::string_view key,
                                                                         int64_t nowNs) {
  std::shared_ptr<Counter> c = single_;
  if (config_.key.kind != config::RateLimitKey::Kind::kNone) {
    c = table_.find(key, nowNs);
    if (!c) c = overflow_;
  }
  if (c->fetch_add(1, std::memory_order_relaxed) >= config_.maxConcurrency) {
    c->fetch_sub(1, std::memory_order_relaxed);
    return nullptr;
  }
  return c;
}

std::shared_ptr<const Governance> Governance::build(const config::Config& config,
                                                    SharedState& state) {
  auto g = std::make_shared<Governance>();
  for (const auto& rl : config.rateLimits) {
    g->rateLimits_.push_back(state.rateLimits.get(
        rl.name + "\n" + rl.hash, [&] { return std::make_shared<RateLimiter>(rl); }));
  }
  for (const auto& cb : config.circuitBreakers) {
    g->breakers_.push_back(state.breakers.get(
        cb.name + "\n" + cb.hash, [&] { return std::make_shared<CircuitBreaker>(cb); }));
  }
  for (const auto& c : config.concurrencyLimits) {
    g->concurrencyLimits_.push_back(state.concurrencyLimits.get(
        c.name + "\n" + c.hash, [&] { return std::make_shared<ConcurrencyLimiter>(c); }));
  }
  for (const auto& [name, service] : config.services) {
    g->counters_[name] =
        state.serviceCounters.get(name, [] { return std::make_shared<ServiceCounters>(); });
  }
  return g;
}

bool Governance::matches(const config::RuleTarget& t, const Subject& s) {
  if (t.direction && *t.direction != s.direction) return false;
  if (!t.service.empty() && t.service != s.service) return false;
  if (!t.route.empty() && t.route != s.route) return false;
  if (!t.pathPrefix.empty() && s.path.substr(0, t.pathPrefix.size()) != t.pathPrefix) {
    return false;
  }
  return true;
}

ServiceCounters* Governance::counters(std::string_view service) const {
  auto it = counters_.find(service);
  return it == counters_.end() ? nullptr : it->second.get();
}

}  // namespace tether::filters
