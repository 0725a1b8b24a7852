// tether-cp-load: many simulated sidecars on one event loop, for the control-plane fan-out
// benchmark (perf/bench_control.sh). Each opens the control-plane stream with its own node
// name, ACKs every snapshot it is pushed (without applying it), and counts.
//   tether-cp-load --control-plane 127.0.0.1:15010 --sidecars 2000 [--service sim]

#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "control/channel.h"
#include "proxy/common/json.h"
#include "proxy/common/timer.h"

using tether::control::Channel;

namespace {

class Simulator : public Channel::Handler {
 public:
  Simulator(uv_loop_t* loop, tether::config::Address cp, int n, std::string service)
      : loop_(loop), cp_(std::move(cp)), service_(std::move(service)) {
    channels_.resize(static_cast<size_t>(n));
  }

  void start() {
    isOpen_.assign(channels_.size(), false);
    for (size_t i = 0; i < channels_.size(); ++i) open(i);
  }

  void onOpen(Channel& c) override {
    ++open_;
    size_t i = reinterpret_cast<size_t>(c.user);
    isOpen_[i] = true;
    tether::proxy::JsonWriter j;
    j.beginObject();
    j.key("type").value("hello");
    j.key("node").beginObject();
    j.key("name").value("sim-" + std::to_string(i));
    j.key("service").value(service_);
    j.key("labels").beginObject().endObject();
    j.key("address").value("");
    j.endObject();
    j.key("version").value("");
    j.endObject();
    c.send(j.str());
    if (open_ == channels_.size()) {
      std::printf("all %zu sidecars connected\n", open_);
      std::fflush(stdout);
    }
  }

  void onMessage(Channel& c, const tether::proxy::JsonValue& m) override {
    if (m["type"].str() != "snapshot") return;
    ++snapshots_;
    c.send("{\"type\":\"ack\",\"version\":\"" + m["version"].str() + "\"}");
  }

  void onClosed(Channel& c, const std::string& why) override {
    size_t i = reinterpret_cast<size_t>(c.user);
    if (isOpen_[i]) --open_;
    isOpen_[i] = false;
    if (!stopping_) std::fprintf(stderr, "sim-%zu: %s\n", i, why.c_str());
    channels_[i].reset();  // its last act was calling us
  }

  void stop() {
    stopping_ = true;
    for (auto& c : channels_) {
      if (c) c->close("stopping");
    }
  }

  size_t snapshots() const { return snapshots_; }

 private:
  void open(size_t i) {
    channels_[i] = std::make_unique<Channel>(loop_, Channel::Role::kClient, *this);
    channels_[i]->user = reinterpret_cast<void*>(i);
    channels_[i]->connect(cp_);
  }

  uv_loop_t* loop_;
  tether::config::Address cp_;
  std::string service_;
  std::vector<std::unique_ptr<Channel>> channels_;
  std::vector<bool> isOpen_;
  size_t open_ = 0;
  size_t snapshots_ = 0;
  bool stopping_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  tether::config::Address cp{"127.0.0.1", 15010};
  int n = 2000;
  std::string service = "sim";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string arg = argv[i];
    if (arg == "--control-plane") {
      auto a = tether::config::parseAddress(argv[i + 1]);
      if (!a) return 2;
      cp = *a;
    } else if (arg == "--sidecars") {
      n = std::atoi(argv[i + 1]);
    } else if (arg == "--service") {
      service = argv[i + 1];
    } else {
      std::fprintf(stderr, "usage: tether-cp-load --control-plane ADDR --sidecars N\n");
      return 2;
    }
  }
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t* loop = uv_default_loop();
  Simulator sim(loop, cp, n, service);
  sim.start();
  uv_signal_t sig;
  uv_signal_init(loop, &sig);
  sig.data = &sim;
  uv_signal_start(
      &sig,
      [](uv_signal_t* h, int) {
        static_cast<Simulator*>(h->data)->stop();
        uv_close(reinterpret_cast<uv_handle_t*>(h), nullptr);
      },
      SIGTERM);
  uv_run(loop, UV_RUN_DEFAULT);
  std::printf("stopped after %zu snapshots\n", sim.snapshots());
  return 0;
}
