#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <mutex>
#include <string>

namespace tether::proxy {

/// Runs closures on one loop's thread, posted from any thread. The mutex is taken only
/// on post and drain (snapshot swaps, scrapes, drain), never per request.
class TaskQueue {
 public:
  using Task = std::function<void()>;

  /// Initialises the async handle on `loop`; call on the loop's thread before run.
  explicit TaskQueue(uv_loop_t* loop);
  TaskQueue(const TaskQueue&) = delete;
  TaskQueue& operator=(const TaskQueue&) = delete;
  ~TaskQueue();
  /// Why the queue could not be set up ("" when it was); then every post is dropped.
  const std::string& error() const { return error_; }

  /// Thread-safe. The task runs on the loop's thread; posting after close() drops it.
  void post(Task task);
  /// Closes the async handle (on the loop's thread); pending tasks are dropped.
  void close();

 private:
  void drain();

  uv_async_t* async_;  // freed in its close callback
  std::mutex mu_;
  std::deque<Task> tasks_;
  bool closed_ = false;
  std::string error_;
};

}  // namespace tether::proxy
