#include "proxy/common/signals.h"

#include <csignal>

namespace tether::proxy {

std::string SignalWatch::start(uv_loop_t* loop, std::initializer_list<int> signals,
                               Handler handler) {
  std::signal(SIGPIPE, SIG_IGN);
  handler_ = std::move(handler);
  for (int signum : signals) {
    auto* s = new uv_signal_t;
    if (int rc = uv_signal_init(loop, s); rc != 0) {
      delete s;
      return std::string("cannot watch signals: ") + uv_strerror(rc);
    }
    s->data = this;
    handles_.push_back(s);
    int rc = uv_signal_start(
        s, [](uv_signal_t* h, int sig) { static_cast<SignalWatch*>(h->data)->handler_(sig); },
        signum);
    if (rc != 0) return std::string("cannot watch signals: ") + uv_strerror(rc);
  }
  return "";
}

void SignalWatch::close() {
  for (auto* s : handles_) {
    uv_close(reinterpret_cast<uv_handle_t*>(s),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_signal_t*>(h); });
  }
  handles_.clear();
}

}  // namespace tether::proxy
