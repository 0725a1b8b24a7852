#pragma once

#include <uv.h>

#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

namespace tether::proxy {

/// The signals a control loop answers (`tether run`, `tether control-plane`): SIGPIPE is
/// ignored (a write to a closed peer returns EPIPE instead of killing the process) and each
/// watched signal calls one handler on the loop.
class SignalWatch {
 public:
  using Handler = std::function<void(int signum)>;
  SignalWatch() = default;
  SignalWatch(const SignalWatch&) = delete;
  SignalWatch& operator=(const SignalWatch&) = delete;

  /// "" once every signal is watched, or why not (the loop's first signal handle opens a
  /// pipe, which fails when descriptors run out); handles already made stay for close().
  std::string start(uv_loop_t* loop, std::initializer_list<int> signals, Handler handler);
  /// Closes the handles (freed in the loop's next turn). Idempotent.
  void close();

 private:
  Handler handler_;
  std::vector<uv_signal_t*> handles_;
};

}  // namespace tether::proxy
