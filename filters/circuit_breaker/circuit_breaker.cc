#include "filters/circuit_breaker/circuit_breaker.h"

#include <algorithm>

#include "proxy/common/log.h"

namespace tether::filters {

namespace {

int64_t ns(config::Duration d) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

}  // namespace

const char* breakerStateName(BreakerState s) {
  switch (s) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half_open";
    case BreakerState::kRecovering:
      return "recovering";
  }
  return "closed";
}

CircuitBreaker::CircuitBreaker(config::CircuitBreakerConfig config, std::string endpoint)
    : config_(std::move(config)),
      endpoint_(std::move(endpoint)),
      bucketNs_(std::max<int64_t>(1, ns(config_.window) / kBuckets)) {
  if (config_.perEndpoint && endpoint_.empty()) {
    auto make = [this](std::string_view address) {
      config::CircuitBreakerConfig one = config_;
      one.perEndpoint = false;
      return std::make_shared<CircuitBreaker>(std::move(one), std::string(address));
    };
    // A closed breaker is the one worth least: its window is all it loses.
    endpoints_ = std::make_unique<proxy::KeyTable<CircuitBreaker>>(
        kMaxEndpoints, make,
        [](const CircuitBreaker& b, int64_t) { return b.state() == BreakerState::kClosed; });
    sharedEndpoint_ = make("*");
  }
}

std::shared_ptr<CircuitBreaker> CircuitBreaker::forEndpoint(std::string_view address,
                                                            int64_t nowNs) {
  std::shared_ptr<CircuitBreaker> b = endpoints_->find(address, nowNs);
  return b ? b : sharedEndpoint_;
}

bool CircuitBreaker::isFailureStatus(int status) const {
  if (config_.failureStatuses.empty()) return status >= 500;
  return std::find(config_.failureStatuses.begin(), config_.failureStatuses.end(), status) !=
         config_.failureStatuses.end();
}

bool CircuitBreaker::isFailureGrpcStatus(int grpcStatus) const {
  return std::find(config_.failureGrpcStatuses.begin(), config_.failureGrpcStatuses.end(),
                   grpcStatus) != config_.failureGrpcStatuses.end();
}

double CircuitBreaker::admittedShare(int64_t nowNs) const {
  if (state() != BreakerState::kRecovering) return state() == BreakerState::kClosed ? 1 : 0;
  int64_t steps =
      (nowNs - recoveringSince_.load()) / std::max<int64_t>(1, ns(config_.recoveryInterval));
  return std::min(1.0, config_.recoveryStep * static_cast<double>(steps + 1));
}

CircuitBreaker::Admission CircuitBreaker::admit(int64_t nowNs, double random01) {
  switch (state()) {
    case BreakerState::kClosed:
      return {};
    case BreakerState::kOpen: {
      if (nowNs < openUntil_.load()) return Admission{false, false};
      std::lock_guard<std::mutex> lock(mu_);
      if (state() == BreakerState::kOpen && nowNs >= openUntil_.load()) {
        probesStarted_ = 0;
        probesSucceeded_ = 0;
        transition(BreakerState::kOpen, BreakerState::kHalfOpen, nowNs);
      }
      break;
    }
    case BreakerState::kRecovering: {
      double share = admittedShare(nowNs);
      if (share >= 1) {
        std::lock_guard<std::mutex> lock(mu_);
        if (transition(BreakerState::kRecovering, BreakerState::kClosed, nowNs)) timesOpened_ = 0;
        return {};
      }
      return Admission{random01 < share, false};
    }
    case BreakerState::kHalfOpen:
      break;
  }
  if (state() != BreakerState::kHalfOpen) return Admission{state() == BreakerState::kClosed, false};
  // Up to halfOpenProbes requests go through as probes; the rest wait for their verdict.
  if (probesStarted_.fetch_add(1) < config_.halfOpenProbes) return Admission{true, true};
  probesStarted_.fetch_sub(1);
  return Admission{false, false};
}

void CircuitBreaker::record(bool failure, int64_t durationNs, bool probe, int64_t nowNs) {
  bool slow = durationNs > ns(config_.slowCallThreshold);
  if (probe) {
    bool bad = config_.strategy == config::BreakerStrategy::kSlowRatio ? slow : failure;
    std::lock_guard<std::mutex> lock(mu_);
    if (state() != BreakerState::kHalfOpen) return;
    if (bad) {
      open(BreakerState::kHalfOpen, nowNs);
    } else if (++probesSucceeded_ >= config_.halfOpenProbes) {
      clearWindow();
      recoveringSince_ = nowNs;
      // A step of 100% means no ramp: straight back to closed.
      if (config_.recoveryStep >= 1) {
        transition(BreakerState::kHalfOpen, BreakerState::kClosed, nowNs);
        timesOpened_ = 0;
      } else {
        transition(BreakerState::kHalfOpen, BreakerState::kRecovering, nowNs);
      }
    }
    return;
  }
  BreakerState s = state();
  if (s != BreakerState::kClosed && s != BreakerState::kRecovering) return;
  addToWindow(failure, slow, nowNs);
  // Checked on every outcome: a success can complete the minimum number of requests.
  if (!tripped(windowTotals(nowNs))) return;
  std::lock_guard<std::mutex> lock(mu_);
  s = state();
  if (s == BreakerState::kClosed || s == BreakerState::kRecovering) open(s, nowNs);
}

void CircuitBreaker::open(BreakerState from, int64_t nowNs) {
  // Each opening in a row lasts longer (x2, capped), with +-20% jitter so breakers opened
  // together do not probe together.
  ++timesOpened_;
  int64_t base = ns(config_.openDuration);
  int64_t d = base << std::min<uint32_t>(timesOpened_ - 1, 20);
  d = std::min(d, ns(config_.maxOpenDuration));
  jitter_ ^= jitter_ << 13;
  jitter_ ^= jitter_ >> 7;
  jitter_ ^= jitter_ << 17;
  double factor = 0.8 + 0.4 * static_cast<double>(jitter_ % 10000) / 10000.0;
  if (timesOpened_ > 1) d = static_cast<int64_t>(static_cast<double>(d) * factor);
  openUntil_ = nowNs + d;
  clearWindow();
  transition(from, BreakerState::kOpen, nowNs);
}

bool CircuitBreaker::transition(BreakerState from, BreakerState to, int64_t) {
  if (state() != from) return false;
  state_.store(static_cast<int>(to));
  transitions_[static_cast<int>(from)][static_cast<int>(to)].fetch_add(1);
  TETHER_LOG(kInfo, "circuit breaker " + config_.name +
                        (endpoint_.empty() ? "" : " endpoint " + endpoint_) + ": " +
                        breakerStateName(from) + " -> " + breakerStateName(to));
  return true;
}

void CircuitBreaker::addToWindow(bool failure, bool slow, int64_t nowNs) {
  int64_t epoch = nowNs / bucketNs_;
  Bucket& b = buckets_[epoch % kBuckets];
  int64_t e = b.epoch.load(std::memory_order_relaxed);
  if (e != epoch && b.epoch.compare_exchange_strong(e, epoch)) {
    b.total = 0;
    b.failures = 0;
    b.slow = 0;
  }
  b.total.fetch_add(1, std::memory_order_relaxed);
  if (failure) b.failures.fetch_add(1, std::memory_order_relaxed);
  if (slow) b.slow.fetch_add(1, std::memory_order_relaxed);
}

CircuitBreaker::Totals CircuitBreaker::windowTotals(int64_t nowNs) const {
  int64_t epoch = nowNs / bucketNs_;
  Totals t;
  for (const Bucket& b : buckets_) {
    int64_t e = b.epoch.load(std::memory_order_relaxed);
    if (e <= epoch - kBuckets || e > epoch) continue;
    t.total += b.total.load(std::memory_order_relaxed);
    t.failures += b.failures.load(std::memory_order_relaxed);
    t.slow += b.slow.load(std::memory_order_relaxed);
  }
  return t;
}

bool CircuitBreaker::tripped(const Totals& t) const {
  if (t.total < config_.minRequests) return false;
  if (config_.strategy == config::BreakerStrategy::kErrorCount) {
    return static_cast<double>(t.failures) >= config_.threshold;
  }
  uint64_t bad = config_.strategy == config::BreakerStrategy::kSlowRatio ? t.slow : t.failures;
  return static_cast<double>(bad) >= config_.threshold * static_cast<double>(t.total);
}

void CircuitBreaker::clearWindow() {
  for (Bucket& b : buckets_) b.epoch = -1;
}

}  // namespace tether::filters
