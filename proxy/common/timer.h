#pragma once

#include <uv.h>

#include <chrono>
#include <functional>

namespace tether::proxy {

/// A one-shot or repeating libuv timer owned by a C++ object. The uv handle lives on the
/// heap and is freed in its close callback, so the owner may be destroyed at any time
/// (even from inside the timer's own callback).
class Timer {
 public:
  Timer(uv_loop_t* loop, std::function<void()> onFire);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void start(std::chrono::milliseconds timeout, std::chrono::milliseconds repeat = {});
  void stop();
  bool active() const;

 private:
  uv_timer_t* handle_;
};

}  // namespace tether::proxy
