#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

#include "proxy/common/timer.h"

namespace tether::proxy {

/// One worker's access-log writer. Lines are appended to a memory buffer and written with
/// uv_fs_write, which runs on libuv's threadpool, so a slow disk never blocks the worker.
/// At most one write is in flight; while it is, lines accumulate up to kMaxBuffered, and
/// beyond that they are dropped and counted rather than held without bound.
class AccessLogWriter {
 public:
  static constexpr size_t kFlushAt = 64 * 1024;
  static constexpr size_t kMaxBuffered = 4 * 1024 * 1024;

  /// `fd` is shared by all workers (opened O_APPEND by the control thread, which closes
  /// it after the workers stop); whole lines per write keep lines from interleaving.
  AccessLogWriter(uv_loop_t* loop, int fd);
  ~AccessLogWriter();
  AccessLogWriter(const AccessLogWriter&) = delete;
  AccessLogWriter& operator=(const AccessLogWriter&) = delete;

  /// Appends one line (without the newline; it is added).
  void append(std::string_view line);
  /// Starts writing what is buffered, if no write is in flight.
  void flush();
  uint64_t dropped() const { return dropped_; }
  uint64_t written() const { return lines_; }

  void onWriteDone(ssize_t result);

 private:
  uv_loop_t* loop_;
  int fd_;
  std::string buffer_;
  struct Write;
  Write* inflight_ = nullptr;  // owned by libuv until its callback
  std::unique_ptr<Timer> timer_;
  uint64_t dropped_ = 0;
  uint64_t lines_ = 0;
  std::shared_ptr<bool> alive_;
};

}  // namespace tether::proxy
