#pragma once

#include <uv.h>

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
  /// Milliseconds on the same time base, as `loop` last read them: the real clock answers
  /// from the loop's cached time (no system call; request timeouts and endpoint health
  /// need no more), a manual clock with its own time.
  virtual int64_t loopMs(uv_loop_t* loop) const { return nowMs(); }
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
  // uv_now is uv_hrtime (CLOCK_MONOTONIC, as steady_clock) in ms, cached per loop turn.
  int64_t loopMs(uv_loop_t* loop) const override { return static_cast<int64_t>(uv_now(loop)); }
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
