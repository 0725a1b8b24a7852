#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "proxy/common/clock.h"
#include "proxy/common/timer.h"

namespace tether::proxy {

class DeadlineQueue;
struct DeadlineList;

/// Receives a Deadline's expiry.
class DeadlineCallback {
 public:
  virtual ~DeadlineCallback() = default;
  virtual void onDeadline() = 0;
};

/// A one-shot timeout embedded in its owner (no allocation). Arming and cancelling are a
/// few pointer writes; see DeadlineQueue for why that is enough.
class Deadline {
 public:
  Deadline() = default;
  ~Deadline() { cancel(); }
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  /// Fires `cb` once after `timeout` unless cancelled or re-armed first.
  void arm(DeadlineQueue& queue, std::chrono::milliseconds timeout, DeadlineCallback& cb);
  void cancel();
  bool armed() const { return list_ != nullptr; }

 private:
  friend class DeadlineQueue;
  struct DeadlineList* list_ = nullptr;
  Deadline* prev_ = nullptr;
  Deadline* next_ = nullptr;
  uint64_t at_ = 0;
  DeadlineCallback* cb_ = nullptr;
  DeadlineQueue* queue_ = nullptr;
};

struct DeadlineList {
  uint64_t duration;
  Deadline* head = nullptr;
  Deadline* tail = nullptr;
};

/// A worker's request timeouts. Deadlines of the same duration expire in the order they
/// were armed, so each duration keeps a FIFO list: arming appends at the tail, cancelling
/// unlinks, and one libuv timer waits for the earliest head. Routes use a handful of
/// distinct timeouts, so this replaces a timer-heap insert and removal per request.
class DeadlineQueue {
 public:
  /// Deadlines are measured on `clock` (the worker's), which must outlive the queue.
  DeadlineQueue(uv_loop_t* loop, const Clock& clock);
  /// Fires every deadline that is due by the clock. The loop's timer calls it; a test with
  /// a ManualClock calls it after moving time.
  void fireExpired();
  /// Shutdown: nothing fires from now on. Arming and cancelling still work, for the
  /// streams that end while their connections close.
  void stop();
  /// Replaces the clock (tests, before any deadline is armed).
  void setClock(const Clock& clock) { clock_ = &clock; }

 private:
  friend class Deadline;
  void add(Deadline& d);
  void remove(Deadline& d);
  void schedule();

  uv_loop_t* loop_;
  const Clock* clock_;
  std::vector<std::unique_ptr<DeadlineList>> lists_;
  Timer timer_;
  uint64_t scheduledAt_ = 0;  // 0: not scheduled
  bool stopped_ = false;
};

}  // namespace tether::proxy
