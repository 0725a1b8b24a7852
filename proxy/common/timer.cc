#include "proxy/common/timer.h"

namespace tether::proxy {

namespace {

struct TimerState {
  uv_timer_t handle;
  std::function<void()> onFire;
};

void onTimer(uv_timer_t* handle) {
  auto* state = reinterpret_cast<TimerState*>(handle);
  // Copy: the callback may destroy the Timer, which closes the handle but leaves the state
  // alive until the close callback, so the copy is only a guard for the std::function.
  auto fn = state->onFire;
  fn();
}

void onClosed(uv_handle_t* handle) { delete reinterpret_cast<TimerState*>(handle); }

}  // namespace

Timer::Timer(uv_loop_t* loop, std::function<void()> onFire) {
  auto* state = new TimerState{{}, std::move(onFire)};
  uv_timer_init(loop, &state->handle);
  handle_ = &state->handle;
}

Timer::~Timer() {
  uv_timer_stop(handle_);
  uv_close(reinterpret_cast<uv_handle_t*>(handle_), onClosed);
}

void Timer::start(std::chrono::milliseconds timeout, std::chrono::milliseconds repeat) {
  uv_timer_start(handle_, onTimer, static_cast<uint64_t>(timeout.count()),
                 static_cast<uint64_t>(repeat.count()));
}

void Timer::stop() { uv_timer_stop(handle_); }

bool Timer::active() const {
  return uv_is_active(reinterpret_cast<const uv_handle_t*>(handle_)) != 0;
}

}  // namespace tether::proxy
