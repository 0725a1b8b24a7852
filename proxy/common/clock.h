#pragma once

#include <chrono>
#include <cstdint>

namespace tether::proxy {

/// Time as filters, engines and request timeouts read it. Each worker owns one (the real
/// clock in production); unit tests put a ManualClock in its place and move time by hand,
/// so retries, deadlines, breaker transitions, rate-limit windows and pacing run with no
/// sleeps.
class Clock {
 public:
  virtual ~Clock() = default;
  /// Monotonic time in nanoseconds (steady_clock's epoch for the real clock).
  virtual int64_t nowNs() const = 0;
  /// Wall-clock seconds since the Unix epoch (signature dates).
  virtual int64_t unixSeconds() const = 0;

  int64_t nowMs() const { return nowNs() / 1'000'000; }
  std::chrono::steady_clock::time_point steadyNow() const {
    return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(nowNs()));
  }
};

/// The process's clocks: steady_clock and system_clock.
class RealClock : public Clock {
 public:
  int64_t nowNs() const override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  int64_t unixSeconds() const override {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  /// One instance serves every worker: it has no state.
  static RealClock& instance() {
    static RealClock clock;
    return clock;
  }
};

/// A clock that moves only when told (tests).
class ManualClock : public Clock {
 public:
  explicit ManualClock(int64_t startNs = 1'000'000'000'000, int64_t unixSeconds = 1'800'000'000)
      : nowNs_(startNs), unix_(unixSeconds) {}
  int64_t nowNs() const override { return nowNs_; }
  int64_t unixSeconds() const override { return unix_ + (nowNs_ - startNs_) / 1'000'000'000; }
  void advance(std::chrono::nanoseconds d) { nowNs_ += d.count(); }

 private:
  int64_t nowNs_;
  const int64_t startNs_ = nowNs_;
  int64_t unix_;
};

}  // namespace tether::proxy
