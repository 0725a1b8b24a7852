#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include "config/rules.h"
#include "proxy/common/key_table.h"

namespace tether::filters {

enum class BreakerState : int { kClosed = 0, kOpen = 1, kHalfOpen = 2, kRecovering = 3 };
inline constexpr int kBreakerStates = 4;
const char* breakerStateName(BreakerState s);

/// A ratio circuit breaker (Sentinel semantics) shared by every worker:
///
///   CLOSED --ratio trips--> OPEN --openDuration--> HALF_OPEN --all probes pass--> RECOVERING
///     ^                      ^                         |                              |
///     |                      +------ a probe fails ----+                              |
///     |                      +------------- the ratio trips again --------------------+
///     +------------------------ the admitted share reaches 100% ----------------------+
///
/// Statistics are a sliding window of 10 buckets of atomic counters. Accepted inaccuracy:
/// a bucket is reset by the first request of its new period (CAS on its epoch), and an
/// increment racing with that reset on another worker may be lost — a few requests at a
/// bucket boundary, never a stuck breaker. Transitions take a mutex (rare), re-check the
/// state under it, and are logged once each.
class CircuitBreaker {
 public:
  /// `endpoint`: for one endpoint's breaker of a perEndpoint rule, its address (logs).
  explicit CircuitBreaker(config::CircuitBreakerConfig config, std::string endpoint = {});

  /// perEndpoint rules: the breaker of the endpoint `address`, made on first use. The table
  /// is bounded (kMaxEndpoints); past it, endpoints share one breaker (nullptr never).
  std::shared_ptr<CircuitBreaker> forEndpoint(std::string_view address, int64_t nowNs);
  /// perEndpoint rules: f(address, breaker) for every endpoint's breaker.
  template <class F>
  void forEachEndpoint(F f) const {
    if (endpoints_) endpoints_->forEach(f);
  }
  const std::string& endpoint() const { return endpoint_; }

  struct Admission {
    bool allowed = true;
    bool probe = false;  // a half-open probe: report its outcome with probe = true
  };
  /// `random01` is a uniform draw in [0, 1) from the caller's generator (the ramp).
  Admission admit(int64_t nowNs, double random01);
  /// The outcome of an admitted request (a probe's included).
  void record(bool failure, int64_t durationNs, bool probe, int64_t nowNs);

  BreakerState state() const { return static_cast<BreakerState>(state_.load()); }
  uint64_t transitions(BreakerState from, BreakerState to) const {
    return transitions_[static_cast<int>(from)][static_cast<int>(to)].load();
  }
  /// The share of traffic admitted while recovering (1 otherwise).
  double admittedShare(int64_t nowNs) const;
  const config::CircuitBreakerConfig& config() const { return config_; }
  /// Whether an HTTP status / gRPC status counts as a failure for this rule.
  bool isFailureStatus(int status) const;
  bool isFailureGrpcStatus(int grpcStatus) const;

 private:
  // Shared by every worker. The window's buckets are relaxed counters: an outcome recorded
  // while another worker rolls the bucket over may land in either window (one request's
  // worth, accepted). State changes go through mu_ and compare the state first, so two
  // workers never both open (or both close) the breaker; admission reads state_ without the
  // lock and may admit one request per worker that raced the transition.
  struct Bucket {
    std::atomic<int64_t> epoch{-1};
    std::atomic<uint32_t> total{0};
    std::atomic<uint32_t> failures{0};
    std::atomic<uint32_t> slow{0};
  };
  struct Totals {
    uint64_t total = 0, failures = 0, slow = 0;
  };
  static constexpr int kBuckets = 10;

  void addToWindow(bool failure, bool slow, int64_t nowNs);
  Totals windowTotals(int64_t nowNs) const;
  bool tripped(const Totals& t) const;
  void clearWindow();
  /// Moves from `from` to `to` if the breaker is still in `from` (caller holds mu_).
  bool transition(BreakerState from, BreakerState to, int64_t nowNs);
  void open(BreakerState from, int64_t nowNs);

  config::CircuitBreakerConfig config_;
  std::string endpoint_;  // one endpoint's breaker: its address
  static constexpr size_t kMaxEndpoints = 4096;
  std::unique_ptr<proxy::KeyTable<CircuitBreaker>> endpoints_;  // perEndpoint rules
  std::shared_ptr<CircuitBreaker> sharedEndpoint_;              // past kMaxEndpoints
  int64_t bucketNs_;
  Bucket buckets_[kBuckets];
  std::atomic<int> state_{0};
  std::atomic<int64_t> openUntil_{0};
  std::atomic<int64_t> recoveringSince_{0};
  std::atomic<uint32_t> probesStarted_{0};
  std::atomic<uint32_t> probesSucceeded_{0};
  uint32_t timesOpened_ = 0;  // consecutive openings (under mu_): the open time grows
  uint64_t jitter_ = 0x9e3779b97f4a7c15ull;
  std::mutex mu_;
  std::atomic<uint64_t> transitions_[kBreakerStates][kBreakerStates] = {};
};

}  // namespace tether::filters
