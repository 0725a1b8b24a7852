#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "filters/circuit_breaker/circuit_breaker.h"
#include "filters/rate_limit/rate_limiter.h"
#include "proxy/common/key_table.h"

namespace tether::filters {

/// A ConcurrencyLimit rule's counters: in-flight requests per key, shared by all workers
/// (relaxed fetch_add, undone on refusal: racing workers may pass the limit by one request
/// each for an instant).
class ConcurrencyLimiter {
 public:
  using Counter = std::atomic<int64_t>;
  explicit ConcurrencyLimiter(config::ConcurrencyLimitConfig config);
  /// Takes a slot for `key`; the returned counter must be decremented when the request ends.
  /// nullptr when the key is at maxConcurrency.
  std::shared_ptr<Counter> acquire(std::string_view key, int64_t nowNs);
  const config::ConcurrencyLimitConfig& config() const { return config_; }

 private:
  config::ConcurrencyLimitConfig config_;
  std::shared_ptr<Counter> single_;    // key: none
  std::shared_ptr<Counter> overflow_;  // keys beyond maxKeys share this one
  proxy::KeyTable<Counter> table_;
};

/// Requests in flight to one service across every worker (Service `limits`). Relaxed
/// atomics, checked with fetch_add and undone on refusal: workers racing at the limit can
/// pass it by at most one request each, for an instant (the same inaccuracy Envoy's
/// circuit-breaker counters accept); no count is ever lost.
struct ServiceCounters {
  std::atomic<int64_t> active{0};   // admitted, not finished
  std::atomic<int64_t> pending{0};  // waiting for an upstream connection to be established
  std::atomic<int64_t> retries{0};  // requests being retried
  // Connections open to the service (HTTP/1.1 and HTTP/2). Shared with the connections,
  // which give theirs back when they close, whatever snapshot is current by then.
  std::shared_ptr<std::atomic<int64_t>> connections = std::make_shared<std::atomic<int64_t>>(0);
};

struct SharedState;

/// The protections of one snapshot: its RateLimit and CircuitBreaker rules with their
/// state objects, and the per-service counters. State comes from the process's SharedState
/// registries by rule name and content, so it survives every reload that does not change
/// the rule (and a changed rule starts fresh). Immutable once built; shared by all workers.
class Governance {
 public:
  static std::shared_ptr<const Governance> build(const config::Config& config, SharedState& state);

  /// What a request is, for matching rule targets.
  struct Subject {
    config::Direction direction;
    std::string_view service;
    std::string_view route;
    std::string_view path;
  };
  static bool matches(const config::RuleTarget& t, const Subject& s);

  const std::vector<std::shared_ptr<RateLimiter>>& rateLimits() const { return rateLimits_; }
  const std::vector<std::shared_ptr<CircuitBreaker>>& breakers() const { return breakers_; }
  const std::vector<std::shared_ptr<ConcurrencyLimiter>>& concurrencyLimits() const {
    return concurrencyLimits_;
  }
  /// Counters for `service` (nullptr for a service the config does not know).
  ServiceCounters* counters(std::string_view service) const;

 private:
  std::vector<std::shared_ptr<RateLimiter>> rateLimits_;
  std::vector<std::shared_ptr<CircuitBreaker>> breakers_;
  std::vector<std::shared_ptr<ConcurrencyLimiter>> concurrencyLimits_;
  std::map<std::string, std::shared_ptr<ServiceCounters>, std::less<>> counters_;
};

}  // namespace tether::filters
